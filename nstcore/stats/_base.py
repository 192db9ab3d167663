"""Shared pieces of :mod:`nstcore.stats`: option types, errors and the tensor helpers every statistic uses."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch
from torch import Tensor

from nstcore.errors import NstcoreError

Normalization = Literal["hw", "chw", "none"]
Reduction = Literal["mean", "sum"]
NORMALIZATIONS: tuple[str, ...] = ("hw", "chw", "none")


class StatisticsError(NstcoreError):
    """Base class of the errors raised by :mod:`nstcore.stats`."""


class FeatureShapeError(StatisticsError):
    """A feature map, Gram matrix or target does not have the expected shape or dtype."""


class UnknownStatisticError(StatisticsError, LookupError):
    """A statistic name is not in the :data:`STATISTICS` registry."""


@contextlib.contextmanager
def _no_autocast(device: torch.device) -> Iterator[None]:
    """Disable autocast for ``device``'s type (a no-op where that type has no autocast)."""
    if torch.amp.is_autocast_available(device.type):
        with torch.autocast(device_type=device.type, enabled=False):
            yield
    else:
        yield


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; every other dtype is accumulated in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_features(features: Tensor, *, where: str) -> None:
    if not isinstance(features, Tensor):
        raise FeatureShapeError(f"{where}: expected a torch.Tensor, got {type(features).__name__}.")
    if features.dim() != 4:
        raise FeatureShapeError(
            f"{where}: expected features of shape [B, C, H, W], got shape {tuple(features.shape)}; "
            "add a batch dimension with features.unsqueeze(0) for a single image."
        )
    if not features.is_floating_point():
        raise FeatureShapeError(f"{where}: expected a floating-point tensor, got {features.dtype}.")
    if features.numel() == 0:
        raise FeatureShapeError(f"{where}: features of shape {tuple(features.shape)} are empty.")


def _check_normalization(normalization: str, *, where: str) -> None:
    if normalization not in NORMALIZATIONS:
        raise StatisticsError(
            f"{where}: unknown normalization {normalization!r}; choose one of {NORMALIZATIONS}."
        )


def _flat(features: Tensor) -> Tensor:
    """``[B, C, H, W]`` -> ``[B, C, H*W]`` in the accumulation dtype."""
    b, c, h, w = features.shape
    return features.reshape(b, c, h * w).to(_accumulation_dtype(features.dtype))


def _match_batch(target: Tensor, batch: int, *, where: str) -> Tensor:
    """Broadcast a batch-1 target over ``batch`` images; refuse any other mismatch."""
    if target.shape[0] == batch:
        return target
    if target.shape[0] == 1:
        return target.expand(batch, *target.shape[1:])
    raise FeatureShapeError(
        f"{where}: target batch size {target.shape[0]} does not match features batch size {batch}; "
        "pass one target per image or a single target (batch size 1) to broadcast."
    )


def _check_reduction(reduction: str, *, where: str) -> None:
    if reduction not in ("mean", "sum"):
        raise StatisticsError(f"{where}: reduction must be 'mean' or 'sum', got {reduction!r}.")


def _squared_distance(a: Tensor, b: Tensor, reduction: Reduction) -> Tensor:
    """Per-image squared difference of ``[B, ...]`` tensors: mean or sum over all but dim 0."""
    diff = (a - b).flatten(1)
    sq = diff * diff
    return sq.mean(dim=1) if reduction == "mean" else sq.sum(dim=1)


def _distance_to_target(stats: Tensor, target: Tensor, reduction: Reduction, *, where: str, described: str,
                        advice: str) -> Tensor:
    """Per-image squared distance of statistics ``stats`` ``[B, ...]`` from ``target`` (same shape, or batch 1
    broadcast); a target of another shape raises :class:`FeatureShapeError` naming ``described`` and ``advice``."""
    if target.shape[1:] != stats.shape[1:]:
        raise FeatureShapeError(
            f"{where}: target shape {tuple(target.shape)} does not fit {described} {tuple(stats.shape)}; {advice}."
        )
    target = _match_batch(target, stats.shape[0], where=where).to(stats.dtype)
    return _squared_distance(stats, target, reduction)
