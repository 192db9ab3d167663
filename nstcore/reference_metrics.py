"""One yardstick for every stimulus, whatever statistic generated it (issue 21: a dislocator sweep compares
Gram, mean/std, sliced Wasserstein, ... transfers whose own losses have incomparable scales).

For an output ``x`` of a (content ``c``, style ``s``) pair, at a FIXED reference layer set (the backbone's
default style layers and content layer, not the layers the transfer matched), per image ``[B]``:

* ``ref_gram``: mean over style layers of ``||G(x) - G(s)||_F^2 / ||G(s)||_F^2``, ``G = F F^T / M``
  (Gatys, Ecker & Bethge 2015; relative, so each layer counts equally whatever its activation scale);
* ``ref_mean_std``: the same relative error of the per-channel means and standard deviations stacked
  (Huang & Belongie 2017, AdaIN's statistics);
* ``ref_sliced_wasserstein``: mean over style layers of ``SW_2^2(F_x, F_s) / SW_2^2(0, F_s)`` with
  ``projections`` fixed directions (seeded), the denominator being the style's mean squared projection
  (Heitz et al. 2021; exact 1-D optimal transport by sorting, quantiles resampled where sizes differ);
* ``content_error``: ``||phi(x) - phi(c)||^2 / ||phi(c)||^2`` at the content layers, averaged
  (Mahendran & Vedaldi 2015);
* ``content_ssim``: SSIM of ``x`` to ``c`` on RGB (Wang et al. 2004).

Everything is accumulated in float64 on features computed without gradients.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from nstcore.backbones import FeatureExtractor
from nstcore.metrics import normalized_feature_error, ssim
from nstcore.stats.sliced_wasserstein import random_directions, sort_last, sorted_quantiles

__all__ = ["REFERENCE_METRICS", "reference_layers", "reference_metrics"]

#: The per-image values :func:`reference_metrics` returns (the ``stimuli`` table's columns of that name).
REFERENCE_METRICS = ("ref_gram", "ref_mean_std", "ref_sliced_wasserstein", "content_error", "content_ssim")


def reference_layers(model: FeatureExtractor) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(style layers, content layers) of the yardstick: the backbone's default transfer layers."""
    info = model.feature_info
    return tuple(info.default_layers("style")), tuple(info.default_layers("content"))


def _flat64(features: Tensor) -> Tensor:
    b, c, h, w = features.shape
    return features.detach().reshape(b, c, h * w).to(torch.float64)


def _relative(a: Tensor, b: Tensor) -> Tensor:
    """``||a - b||^2 / ||b||^2`` per image over all but dim 0 (nan where ``b`` is all zero)."""
    num = (a - b).flatten(1).square().sum(1)
    den = b.flatten(1).square().sum(1)
    return torch.where(den > 0, num / den, torch.full_like(den, float("nan")))


def _gram(f: Tensor) -> Tensor:
    return f @ f.transpose(1, 2) / f.shape[2]


def _mean_std(f: Tensor) -> Tensor:
    return torch.cat([f.mean(2), f.std(2, unbiased=False)], dim=1)


def _sliced_wasserstein(fx: Tensor, fs: Tensor, directions: Tensor) -> Tensor:
    mine = sort_last(torch.einsum("pc,bcm->bpm", directions, fx))
    theirs = sorted_quantiles(sort_last(torch.einsum("pc,bcm->bpm", directions, fs)), fx.shape[2])
    num = (mine - theirs).square().mean(dim=(1, 2))
    den = theirs.square().mean(dim=(1, 2))
    return torch.where(den > 0, num / den, torch.full_like(den, float("nan")))


@torch.no_grad()
def reference_metrics(model: FeatureExtractor, outputs: Tensor, contents: Tensor, styles: Tensor, *,
                      style_layers: Sequence[str], content_layers: Sequence[str], projections: int = 64,
                      seed: int = 0) -> dict[str, Tensor]:
    """The module's metrics of ``outputs`` ``[B, 3, H, W]`` against ``contents`` (same shape) and ``styles``
    ``[B, 3, h, w]`` (the style batch the transfer matched), all in ``[0, 1]``; each value ``[B]`` float64."""
    layers = list(dict.fromkeys([*style_layers, *content_layers]))
    feats = {}
    for name, images in (("x", outputs), ("c", contents), ("s", styles)):
        param = next(model.parameters(), None)
        images = images.to(device=param.device if param is not None else images.device,
                           dtype=param.dtype if param is not None else images.dtype)
        feats[name] = model(model.normalize(images), layers)
    gram, mean_std, sw = [], [], []
    for i, layer in enumerate(style_layers):
        fx, fs = _flat64(feats["x"][layer]), _flat64(feats["s"][layer])
        gram.append(_relative(_gram(fx), _gram(fs)))
        mean_std.append(_relative(_mean_std(fx), _mean_std(fs)))
        generator = torch.Generator().manual_seed(seed + i)
        v = random_directions(fx.shape[1], projections, generator=generator, dtype=torch.float64, device=fx.device)
        sw.append(_sliced_wasserstein(fx, fs, v))
    content = [normalized_feature_error(feats["x"][layer].detach().double(), feats["c"][layer].double())
               for layer in content_layers]
    return {
        "ref_gram": torch.stack(gram).mean(0).cpu(),
        "ref_mean_std": torch.stack(mean_std).mean(0).cpu(),
        "ref_sliced_wasserstein": torch.stack(sw).mean(0).cpu(),
        "content_error": torch.stack(content).mean(0).cpu(),
        "content_ssim": ssim(outputs.double().cpu(), contents.double().cpu()),
    }
