"""The sliced Wasserstein distance between feature distributions as a style statistic.

Heitz, Vacher, Coeurjolly & Newson, "A Sliced Wasserstein Loss for Neural Texture Synthesis", CVPR 2021:
a layer's texture is the distribution of its ``C``-dimensional feature vectors over the ``M = H*W``
positions. Project both feature sets on ``P`` random unit directions ``v_p``; in one dimension optimal
transport is exact by sorting, so

    SW_2^2(F, T) = (1/P) sum_p W_2^2(v_p^T F, v_p^T T),    W_2^2(a, b) = (1/M) sum_m (a_(m) - b_(m))^2

with ``a_(m)`` the sorted projected values. It matches the whole marginal distribution along every
direction (means, variances, all higher moments and their dependencies), not just second-order statistics,
and is invariant to permuting positions. Differentiable almost everywhere (the gradient of a sort is the
permutation).

* ``projections``: ``P``, default the channel count ``C`` (as in the paper);
* ``seed``: ``None`` (default, as the paper) draws new directions at every call from torch's global
  generator (seed it for reproducible runs); an integer fixes the directions for a given ``C``.
* The target keeps the style image's feature vectors ``[B, C, M_t]``; when ``M_t != M`` (another image size)
  the sorted target projections are resampled to ``M`` quantiles by linear interpolation (the empirical
  quantile function), so the distance compares distributions, not sample counts.

The loss is per image ``[B]``; the directions are shared by the batch's images (each image's loss depends
only on its own features).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from nstcore.stats._base import FeatureShapeError, StatisticsError, _check_features, _flat, _match_batch, _no_autocast
from nstcore.stats.registry import StyleStatistic, register_statistic

__all__ = ["SlicedWasserstein", "random_directions", "sort_last", "sorted_quantiles"]


def _numpy_sorts(x: Tensor) -> bool:
    """numpy sorts CPU float arrays with SIMD kernels: measured 9x (values) and 2.5x (argsort) faster than
    ``torch.sort`` for ``[2, 64, 65536]`` float32 (BENCHMARKS.md); other devices keep ``torch.sort``."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


def _sorted_values(x: Tensor) -> Tensor:
    """``x`` sorted along its last dim, no gradient (a target's projections)."""
    if _numpy_sorts(x):
        return torch.from_numpy(np.sort(x.detach().contiguous().numpy(), axis=-1))
    return torch.sort(x.detach(), dim=-1).values


class _SortLast(torch.autograd.Function):
    """Sort along the last dim; the gradient goes back through the permutation (what ``torch.sort``'s does)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        if _numpy_sorts(x):
            order = torch.from_numpy(np.argsort(x.detach().contiguous().numpy(), axis=-1))
            out = x.gather(-1, order)
        else:
            out, order = torch.sort(x, dim=-1)
        ctx.save_for_backward(order)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (order,) = ctx.saved_tensors
        return torch.zeros_like(grad).scatter_(-1, order, grad)


def sort_last(x: Tensor) -> Tensor:
    """``x`` sorted along its last dim, differentiable (:class:`_SortLast`); without grad, the values only."""
    return _SortLast.apply(x) if x.requires_grad else _sorted_values(x)


def random_directions(channels: int, projections: int, *, generator: torch.Generator | None, dtype: torch.dtype,
                      device: torch.device) -> Tensor:
    """``[P, C]`` unit vectors, uniformly distributed on the sphere (normalised Gaussian draws)."""
    v = torch.randn(projections, channels, generator=generator, dtype=torch.float64)
    v = v / v.norm(dim=1, keepdim=True)
    return v.to(device=device, dtype=dtype)


def sorted_quantiles(sorted_values: Tensor, m: int) -> Tensor:
    """``[..., N]`` sorted values -> their ``m`` empirical quantiles at ``(i + 0.5) / m`` (linear interpolation
    of the order statistics at ``(k + 0.5) / N``); the values themselves when ``N == m``."""
    n = sorted_values.shape[-1]
    if n == m:
        return sorted_values
    pos = ((torch.arange(m, dtype=torch.float64, device=sorted_values.device) + 0.5) * n / m - 0.5).clamp(0, n - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=n - 1)
    w = (pos - lo).to(sorted_values.dtype)
    return sorted_values[..., lo] * (1 - w) + sorted_values[..., hi] * w


@register_statistic
class SlicedWasserstein(StyleStatistic):
    """Sliced Wasserstein distance ``SW_2^2`` between the feature vectors of image and target (module doc)."""

    name = "sliced_wasserstein"
    positional = "projections"

    def __init__(self, *, projections: int | None = None, seed: int | None = None) -> None:
        if projections is not None and (isinstance(projections, bool) or not isinstance(projections, int)
                                        or projections < 1):
            raise StatisticsError(f"SlicedWasserstein: projections must be a positive integer (or None: the "
                                  f"channel count), got {projections!r}.")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise StatisticsError(f"SlicedWasserstein: seed must be an integer or None, got {seed!r}.")
        self.projections, self.seed = projections, seed
        self._sorted_targets: dict[tuple, Tensor] = {}  # fixed directions: the targets' sorted projections

    def config(self) -> dict[str, object]:
        return {"projections": self.projections, "seed": self.seed}

    def target(self, features: Tensor) -> Tensor:
        _check_features(features, where="SlicedWasserstein.target")
        with _no_autocast(features.device):
            return _flat(features)

    def directions(self, channels: int, *, dtype: torch.dtype, device: torch.device) -> Tensor:
        """The ``[P, C]`` directions of one call (fixed by ``seed``, else fresh draws)."""
        generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None
        return random_directions(channels, self.projections or channels, generator=generator, dtype=dtype,
                                 device=device)

    def loss(self, features: Tensor, target: Tensor) -> Tensor:
        _check_features(features, where="SlicedWasserstein.loss")
        with _no_autocast(features.device):
            flat = _flat(features)
            b, c, m = flat.shape
            if target.dim() != 3 or target.shape[1] != c:
                raise FeatureShapeError(
                    f"SlicedWasserstein.loss: target shape {tuple(target.shape)} does not fit features with {c} "
                    "channels; build the target with .target() on the same layer.")
            target = _match_batch(target, b, where="SlicedWasserstein.loss").to(flat.dtype)
            v = self.directions(c, dtype=flat.dtype, device=flat.device)
            mine = sort_last(torch.einsum("pc,bcm->bpm", v, flat))
            theirs = sorted_quantiles(self._sorted_target(v, target), m)
            return ((mine - theirs) ** 2).mean(dim=(1, 2))

    def _sorted_target(self, v: Tensor, target: Tensor) -> Tensor:
        """The target's sorted projections; with fixed directions (``seed``) computed once per target tensor
        (an optimisation evaluates the same targets hundreds of times) and reused while it is unchanged."""
        if self.seed is None or target.requires_grad:
            return sort_last(torch.einsum("pc,bcm->bpm", v, target))
        key = (target.data_ptr(), target._version, tuple(target.shape), target.dtype, target.device, v.shape[0])
        if key not in self._sorted_targets:
            if len(self._sorted_targets) >= 64:
                self._sorted_targets.clear()
            self._sorted_targets[key] = sort_last(torch.einsum("pc,bcm->bpm", v, target))
        return self._sorted_targets[key]
