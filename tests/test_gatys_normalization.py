"""Gatys' weight normalisation (Gatys, Ecker & Bethge 2015, sec. 2) of VGG weights over an image set.

Reference: torchvision's VGG-19 module in float64, run on the original weights and on the normalised
ones (loaded under torchvision's own names, not through nstcore): after normalisation every ReLU
channel's mean activation over the image set is 1, every normalised activation is the original one
divided by that channel's original mean (a positive rescaling, exact up to float64 rounding), and the
logits do not change.
"""

from __future__ import annotations

import nstcore  # noqa: F401  (torchvision shim)
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from skimage import data

from nstcore.backbones import create_backbone, gatys_normalize, save_normalized_weights
from nstcore.errors import UnsupportedOptionError
from vgg_fixtures import random_torchvision_vgg19


def _photos(size: int) -> torch.Tensor:
    imgs = [data.chelsea(), data.astronaut(), data.coffee(), data.rocket()]
    out = [F.interpolate(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float().div(255)[None],
                         size=(size, size), mode="bilinear", antialias=True, align_corners=False) for a in imgs]
    return torch.cat(out).clamp(0, 1)


def _relu_outputs(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    outs, h = [], x
    for m in model.features:
        h = m(h)
        if isinstance(m, torch.nn.ReLU):
            outs.append(h.clone())
    return outs


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path, ref = random_torchvision_vgg19(tmp_path_factory.mktemp("w"), seed=7)
    net = create_backbone("vgg19", weights=str(path))
    images = _photos(64)
    result = gatys_normalize(net, [images[:3], images[3:]])  # two batches: means pooled over all images
    return ref.double(), net, images, result, path


def test_normalised_relu_channels_have_mean_one_and_are_rescaled_originals(setup):
    ref, _, images, result, _ = setup
    norm = torchvision.models.vgg19().double().eval()
    norm.load_state_dict(result.state_dict, strict=True)
    x = ((images.double() - torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1))
         / torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1))
    with torch.no_grad():
        before, after = _relu_outputs(ref, x), _relu_outputs(norm, x)
        logits_before, logits_after = ref(x), norm(x)
    assert len(before) == 16
    for a, b in zip(before, after):
        m = a.mean(dim=(0, 2, 3))  # the original channel means, computed here independently
        alive = m > 0
        assert alive.float().mean() > 0.9
        torch.testing.assert_close(b.mean(dim=(0, 2, 3))[alive], torch.ones(int(alive.sum()), dtype=torch.float64),
                                   rtol=1e-10, atol=0)
        scale = torch.where(alive, m, torch.ones_like(m)).view(1, -1, 1, 1)
        # float64 through up to 16 convolutions: rounding reaches ~1e-12 absolute where a unit-mean channel
        # crosses zero (seen 1.6e-12 on one machine); a wrong rescale would be off by O(1)
        torch.testing.assert_close(b, a / scale, rtol=1e-10, atol=1e-10)
    assert sum(result.dead.values()) == sum(int((a.mean(dim=(0, 2, 3)) <= 0).sum()) for a in before)
    torch.testing.assert_close(logits_after, logits_before, rtol=1e-10, atol=1e-12)
    assert torch.equal(logits_after.argmax(1), logits_before.argmax(1))
    # the rescaling is far from the identity: the test cannot pass by leaving the weights alone
    first = before[0].mean(dim=(0, 2, 3))
    assert float((first - 1).abs().max()) > 0.05


def test_saved_file_loads_with_its_preprocessing_and_flag(setup, tmp_path):
    _, net, images, result, _ = setup
    out = save_normalized_weights(result, tmp_path / "vgg19-normalized.pth")
    loaded = create_backbone("vgg19", weights=str(out))
    assert loaded.weights_normalized and loaded.preprocessing.name == "imagenet"
    assert loaded.weights_format == "torchvision" and loaded.has_classifier
    with torch.no_grad():
        feats = loaded(loaded.normalize(images), ["relu1_1", "relu3_1", "relu5_1"])
        for layer, f in feats.items():
            m = f.double().mean(dim=(0, 2, 3))
            np.testing.assert_allclose(m[m > 0].numpy(), 1.0, rtol=1e-4)
        assert torch.equal(loaded.logits(loaded.normalize(images)).argmax(1), net.logits(net.normalize(images)).argmax(1))


def test_gatys_layout_round_trip_keeps_caffe_preprocessing(tmp_path):
    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        ref = torchvision.models.vgg19()
    convs = [m for m in ref.features if isinstance(m, torch.nn.Conv2d)]
    names = [f"conv{b}_{c}" for b, n in enumerate((2, 2, 4, 4, 4), 1) for c in range(1, n + 1)]
    sd = {}
    for name, m in zip(names, convs):
        sd[f"{name}.weight"] = m.weight.detach() / 60.0  # Caffe-scale filters for 0..255 inputs
        sd[f"{name}.bias"] = torch.rand(m.out_channels, generator=g)
    torch.save(sd, tmp_path / "vgg_conv.pth")
    net = create_backbone("vgg19", weights=str(tmp_path / "vgg_conv.pth"))
    images = _photos(32)
    result = gatys_normalize(net, [images])
    assert set(result.state_dict) == set(sd)
    out = save_normalized_weights(result, tmp_path / "vgg_conv-renorm.pth")
    loaded = create_backbone("vgg19", weights=str(out))
    assert loaded.preprocessing.name == "caffe" and loaded.weights_format == "gatys-vgg_conv"
    with torch.no_grad():
        m = loaded(loaded.normalize(images), ["relu4_2"])["relu4_2"].double().mean(dim=(0, 2, 3))
    np.testing.assert_allclose(m[m > 0].numpy(), 1.0, rtol=1e-4)
    with pytest.raises(UnsupportedOptionError, match="VGG"):
        gatys_normalize(create_backbone("resnet50", weights="random"), [images])
    with pytest.raises(UnsupportedOptionError, match="trim"):
        gatys_normalize(net.trimmed(["relu3_1"]), [images])
    with pytest.raises(UnsupportedOptionError, match="empty"):
        gatys_normalize(net, [])
