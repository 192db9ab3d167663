"""nstcore.reconstruct: per-layer content reconstructions and texture synthesis (random VGG-19)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nstcore  # noqa: F401  (shim before torchvision)
from skimage import data

from nstcore.backbones import create_backbone
from nstcore.errors import UnknownLayerError
from nstcore.reconstruct import (
    ReconstructionError,
    reconstruct_content,
    reconstruction_series,
    synthesize_texture,
)


@pytest.fixture(scope="module")
def vgg():
    # max pooling: with random weights, avg pooling keeps conv3_1 reconstructions too good to rank robustly
    return create_backbone("vgg19", weights="random", seed=0, pooling="max")


def _photo(array: np.ndarray, size: int) -> torch.Tensor:
    x = torch.from_numpy(array).permute(2, 0, 1).float().div(255)[None]
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


@pytest.fixture(scope="module")
def photos64():
    return torch.cat([_photo(data.chelsea(), 64), _photo(data.astronaut(), 64)])


def _psnr64(x: torch.Tensor, ref: torch.Tensor) -> np.ndarray:
    mse = ((x.double() - ref.double()) ** 2).flatten(1).mean(1).numpy()
    return 10 * np.log10(1.0 / mse)


def test_conv1_1_reconstruction_near_perfect_at_64px(vgg, photos64):
    r = reconstruct_content(vgg, photos64, layer="conv1_1", steps=25, seed=0)
    psnr = _psnr64(r.images, photos64)  # float64 reference, not nstcore.metrics
    assert np.all(psnr > 30.0), psnr
    np.testing.assert_allclose(r.psnr.numpy(), psnr, rtol=1e-4)
    assert np.all(r.ssim.numpy() > 0.99)


def test_pixel_fidelity_falls_with_depth(vgg, photos64):
    """conv1_1 > conv3_1 > conv5_1 (max pooling, 15 L-BFGS steps, 48 px; held for weight seeds 0, 1, 2
    with margins of >= 80 dB and >= 2.3 dB)."""
    imgs = F.interpolate(photos64, size=(48, 48), mode="bilinear", antialias=True, align_corners=False)
    results = reconstruction_series(vgg, imgs, kind="content", layer_sets=["conv1_1", "conv3_1", "conv5_1"],
                                    steps=15, seed=0)
    assert [r.layers for r in results] == [("conv1_1",), ("conv3_1",), ("conv5_1",)]
    psnrs = [_psnr64(r.images, imgs) for r in results]
    assert np.all(psnrs[0] > psnrs[1] + 5) and np.all(psnrs[1] > psnrs[2] + 1), psnrs


def test_feature_error_and_records(vgg, photos64):
    r = reconstruct_content(vgg, photos64[:1, :, :32, :32].contiguous(), layer="conv2_1", steps=10, seed=1)
    # independent reference: the extractor's own features, float64 ratio
    with torch.no_grad():
        fx = vgg(vgg.normalize(r.images), ["conv2_1"])["conv2_1"].double()
        f0 = vgg(vgg.normalize(photos64[:1, :, :32, :32]), ["conv2_1"])["conv2_1"].double()
    ref = ((fx - f0) ** 2).sum() / (f0**2).sum()
    np.testing.assert_allclose(r.feature_error.item(), ref.item(), rtol=1e-4)
    assert r.feature_error.item() < 0.5  # the optimisation did something from noise
    (row,) = r.records()
    assert row["kind"] == "content" and row["layers"] == ["conv2_1"] and row["steps"] == 10
    assert set(row) >= {"feature_error", "pixel_mse", "psnr", "ssim"}


def test_texture_synthesis_matches_grams_growing_sets(vgg, photos64):
    img = photos64[:1, :, :32, :32].contiguous()
    series = reconstruction_series(vgg, img, kind="texture", steps=1, seed=0)
    # Gatys, Ecker & Bethge 2015, Fig. 1: conv1_1, pool1, pool2, pool3, pool4 (post-ReLU in Caffe)
    assert [r.layers for r in series] == [
        ("relu1_1",),
        ("relu1_1", "pool1"),
        ("relu1_1", "pool1", "pool2"),
        ("relu1_1", "pool1", "pool2", "pool3"),
        ("relu1_1", "pool1", "pool2", "pool3", "pool4"),
    ]
    start = synthesize_texture(vgg, img, layers=["conv1_1", "conv2_1"], steps=1, seed=0)
    done = synthesize_texture(vgg, img, layers=["conv1_1", "conv2_1"], steps=15, seed=0)
    assert done.kind == "texture"
    assert done.feature_error.item() < 0.01 * start.feature_error.item()  # ~4000x measured
    # a texture, not a copy: the pixels stay far from the original
    assert done.psnr.item() < 20.0


def _channel_mean_std(features: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and std over positions, float64 (the definition; not nstcore.stats)."""
    f = features.double().flatten(2)
    return torch.cat([f.mean(2), f.std(2, unbiased=False)], dim=1)


def test_texture_synthesis_with_another_statistic_matches_that_statistic(vgg, photos64):
    """Issue 21: reconstruct --kind texture --statistic mean_std matches channel means and deviations (AdaIN's
    statistic), checked against their float64 definition; feature_error stays the Gram error (the shared
    yardstick), and a content reconstruction refuses a statistic."""
    from nstcore.stats import statistic_from_spec

    img = photos64[:1, :, :32, :32].contiguous()
    layers = ["conv1_1", "conv2_1"]
    target = vgg(vgg.normalize(img), layers)
    start = synthesize_texture(vgg, img, layers=layers, steps=1, seed=0, statistic=statistic_from_spec("mean_std"))
    done = synthesize_texture(vgg, img, layers=layers, steps=30, seed=0, statistic=statistic_from_spec("mean_std"))
    for result, factor in ((start, None), (done, 0.02)):
        got = vgg(vgg.normalize(result.images.float()), layers)
        errors = [float((_channel_mean_std(got[l]) - _channel_mean_std(target[l])).square().mean()
                        / _channel_mean_std(target[l]).square().mean()) for l in layers]
        if factor is None:
            before = errors
        else:
            assert all(e < factor * b for e, b in zip(errors, before)), (errors, before)
    gram = synthesize_texture(vgg, img, layers=layers, steps=30, seed=0)
    assert done.feature_error.item() > gram.feature_error.item()  # the Gram error: what mean/std leaves out
    with pytest.raises(ReconstructionError, match="texture synthesis"):
        reconstruction_series(vgg, img, kind="content", layer_sets=["conv1_1"], steps=1,
                              statistic=statistic_from_spec("mean_std"))


def test_batched_equals_single_and_seeded():
    """precision='float64': B=3 gives exactly the images and errors of the B=1 runs (issue 9 part 6)."""
    net = create_backbone("vgg19", weights="random", seed=0)
    imgs = torch.rand(3, 3, 24, 24, generator=torch.Generator().manual_seed(2))
    batched = reconstruct_content(net, imgs, layer="conv2_1", steps=8, seed=5, precision="float64")
    assert batched.images.dtype == torch.float64 and batched.precision == "float64"
    for b in range(3):
        single = reconstruct_content(net, imgs[b : b + 1], layer="conv2_1", steps=8, seed=5, precision="float64")
        assert torch.equal(single.images[0], batched.images[b])
        assert torch.equal(single.feature_error[0], batched.feature_error[b])
    pair = synthesize_texture(net, imgs[:2], layers=["conv1_1", "pool1"], steps=5, seed=5, precision="float64")
    one = synthesize_texture(net, imgs[1:2], layers=["conv1_1", "pool1"], steps=5, seed=5, precision="float64")
    assert torch.equal(pair.images[1], one.images[0])
    again = reconstruct_content(net, imgs, layer="conv2_1", steps=8, seed=5, precision="float64")
    other = reconstruct_content(net, imgs, layer="conv2_1", steps=8, seed=6, precision="float64")
    assert torch.equal(again.images, batched.images)
    assert not torch.allclose(other.images, batched.images)
    f32 = [reconstruct_content(net, imgs, layer="conv2_1", steps=8, seed=5) for _ in range(2)]
    assert f32[0].images.dtype == torch.float32 and torch.equal(f32[0].images, f32[1].images)


def test_bad_inputs(vgg):
    img = torch.rand(1, 3, 16, 16)
    with pytest.raises(ReconstructionError, match=r"\[B, 3, H, W\]"):
        reconstruct_content(vgg, torch.rand(1, 1, 16, 16), layer="conv1_1", steps=1)
    with pytest.raises(ReconstructionError, match="unsqueeze"):
        synthesize_texture(vgg, torch.rand(3, 16, 16), layers=["conv1_1"], steps=1)
    with pytest.raises(UnknownLayerError, match="conv1_1"):
        reconstruct_content(vgg, img, layer="conv9_1", steps=1)
    with pytest.raises(ReconstructionError, match="one layer each"):
        reconstruction_series(vgg, img, kind="content", layer_sets=[["conv1_1", "conv2_1"]], steps=1)
    with pytest.raises(ReconstructionError, match="kind"):
        reconstruction_series(vgg, img, kind="style", steps=1)  # type: ignore[arg-type]
    with pytest.raises(ReconstructionError, match=r"\[0, 1\]"):
        reconstruct_content(vgg, img * 255, layer="conv1_1", steps=1)


def test_a_statistic_without_texture_synthesis_is_one_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    image = sorted((repo / "data" / "cue-conflict").rglob("*.png"))[0]
    for args, message in ((["--statistic", "mean_std"], "add --kind texture"),
                          (["--kind", "texture", "--statistic", "nonesuch"], "unknown statistic 'nonesuch'")):
        out = subprocess.run([sys.executable, "-m", "pipelines.cli", "reconstruct", str(image), "--backbone", "vgg19",
                              "--weights", "random", *args, "--store", str(tmp_path / "s")], capture_output=True,
                             text=True, cwd=repo, timeout=300)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr
        assert not (tmp_path / "s").exists()
