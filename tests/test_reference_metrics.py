"""The stimuli's shared yardstick (issue 21, nstcore.reference_metrics) against float64 numpy definitions on
the features of a seeded random VGG-19: relative Gram and mean/std errors, the sliced Wasserstein distance
by sorted projections, content error and SSIM limits; per image (one image never changes another's value)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nstcore.backbones import create_backbone
from nstcore.reference_metrics import reference_layers, reference_metrics
from nstcore.stats.sliced_wasserstein import random_directions


@pytest.fixture(scope="module")
def vgg():
    return create_backbone("vgg19", weights="random", seed=0)


def _features(model, images, layers):
    with torch.no_grad():
        out = model(model.normalize(images), layers)
    return {k: v.double().reshape(v.shape[0], v.shape[1], -1).numpy() for k, v in out.items()}


def _quantiles(sorted_values: np.ndarray, m: int) -> np.ndarray:
    n = sorted_values.shape[-1]
    if n == m:
        return sorted_values
    return np.interp((np.arange(m) + 0.5) * n / m - 0.5, np.arange(n), sorted_values)


def test_reference_metrics_equal_their_float64_definitions(vgg):
    torch.manual_seed(0)
    x, c = torch.rand(2, 3, 40, 40), torch.rand(2, 3, 40, 40)
    s = torch.rand(2, 3, 48, 48)  # another size: the distributions are compared, not the sample counts
    style_layers, content_layers = ("relu1_1", "relu2_1"), ("relu2_2",)
    got = reference_metrics(vgg, x, c, s, style_layers=style_layers, content_layers=content_layers,
                            projections=8, seed=5)
    fx, fc, fs = (_features(vgg, t, [*style_layers, *content_layers]) for t in (x, c, s))
    for b in range(2):
        gram, ms, sw = [], [], []
        for i, layer in enumerate(style_layers):
            a, t = fx[layer][b], fs[layer][b]
            ga, gt = a @ a.T / a.shape[1], t @ t.T / t.shape[1]
            gram.append(((ga - gt) ** 2).sum() / (gt ** 2).sum())
            ma = np.concatenate([a.mean(1), a.std(1)])
            mt = np.concatenate([t.mean(1), t.std(1)])
            ms.append(((ma - mt) ** 2).sum() / (mt ** 2).sum())
            v = random_directions(a.shape[0], 8, generator=torch.Generator().manual_seed(5 + i),
                                  dtype=torch.float64, device=torch.device("cpu")).numpy()
            pa = np.sort(v @ a, axis=1)
            pt = np.stack([_quantiles(row, a.shape[1]) for row in np.sort(v @ t, axis=1)])
            sw.append(((pa - pt) ** 2).mean() / (pt ** 2).mean())
        ce = ((fx["relu2_2"][b] - fc["relu2_2"][b]) ** 2).sum() / (fc["relu2_2"][b] ** 2).sum()
        assert got["ref_gram"][b].item() == pytest.approx(np.mean(gram), rel=1e-4)
        assert got["ref_mean_std"][b].item() == pytest.approx(np.mean(ms), rel=1e-4)
        assert got["ref_sliced_wasserstein"][b].item() == pytest.approx(np.mean(sw), rel=1e-4)
        assert got["content_error"][b].item() == pytest.approx(ce, rel=1e-4)


def test_reference_metrics_limits_and_per_image(vgg):
    torch.manual_seed(1)
    style_layers, content_layers = reference_layers(vgg)
    x, s = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    same = reference_metrics(vgg, s, s, s, style_layers=style_layers, content_layers=content_layers)
    for name in ("ref_gram", "ref_mean_std", "ref_sliced_wasserstein", "content_error"):
        assert same[name].abs().max().item() < 1e-9, name
    assert torch.allclose(same["content_ssim"], torch.ones(2, dtype=torch.float64))
    # per image: the first image's values alone equal its values in a batch of two
    both = reference_metrics(vgg, x, x, s, style_layers=("relu1_1",), content_layers=content_layers)
    first = reference_metrics(vgg, x[:1], x[:1], s[:1], style_layers=("relu1_1",), content_layers=content_layers)
    for name, values in first.items():
        assert values[0].item() == pytest.approx(both[name][0].item(), rel=1e-6), name
