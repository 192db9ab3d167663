"""Gram matrices ``G = F F^T / n`` (Gatys et al. 2015, 2016): batched computation, the stored upper
triangle, and the :class:`Gram` style statistic."""

from __future__ import annotations

import torch
from torch import Tensor

from nstcore.long_bmm import long_bmm
from nstcore.stats._base import (
    FeatureShapeError,
    Normalization,
    Reduction,
    _check_features,
    _check_normalization,
    _check_reduction,
    _distance_to_target,
    _flat,
    _no_autocast,
)
from nstcore.stats.registry import StyleStatistic, register_statistic

__all__ = ["Gram", "gram_from_upper_triangle", "gram_matrix", "gram_upper_triangle"]


def gram_matrix(features: Tensor, *, normalization: Normalization = "hw") -> Tensor:
    """Batched Gram matrix ``G = F F^T / n`` of features ``[B, C, H, W]`` -> ``[B, C, C]``.

    ``F`` is the ``[C, H*W]`` matrix of one image (Gatys et al. 2015). ``n`` is ``H*W`` for
    ``normalization='hw'`` (as in Gatys' reference code), ``C*H*W`` for ``'chw'``, 1 for ``'none'``.
    One batched product (:func:`nstcore.long_bmm.long_bmm`), accumulated in float32 (float64 for float64 input), with
    autocast disabled so that a bf16/fp16 forward pass still gives a float32 Gram. The result is
    exactly symmetric.
    """
    _check_features(features, where="gram_matrix")
    _check_normalization(normalization, where="gram_matrix")
    _, c, h, w = features.shape
    with _no_autocast(features.device):
        flat = _flat(features)
        gram = long_bmm(flat, flat.transpose(1, 2))
        # bmm need not round G_ij and G_ji identically; make it exactly symmetric (cost O(C^2)) so that
        # the stored upper triangle is lossless and eigvalsh sees the same matrix as the losses.
        gram = 0.5 * (gram + gram.transpose(1, 2))
    if normalization == "hw":
        gram = gram / (h * w)
    elif normalization == "chw":
        gram = gram / (c * h * w)
    return gram


def _triu_indices(channels: int, device: torch.device) -> tuple[Tensor, Tensor]:
    rows, cols = torch.triu_indices(channels, channels, device=device)
    return rows, cols


def gram_upper_triangle(gram: Tensor) -> Tensor:
    """Row-major upper triangle (diagonal included) of Gram matrices ``[..., C, C]`` -> ``[..., C(C+1)/2]``.

    The order is ``G[0,0], G[0,1], ..., G[0,C-1], G[1,1], ...``; the result is float32 (the storage
    format of the ``grams`` table). Symmetry of ``gram`` is assumed, not checked.
    """
    if gram.dim() < 2 or gram.shape[-1] != gram.shape[-2]:
        raise FeatureShapeError(
            f"gram_upper_triangle: expected square matrices [..., C, C], got shape {tuple(gram.shape)}."
        )
    rows, cols = _triu_indices(gram.shape[-1], gram.device)
    return gram[..., rows, cols].to(torch.float32)


def gram_from_upper_triangle(values: Tensor, channels: int) -> Tensor:
    """Inverse of :func:`gram_upper_triangle`: ``[..., C(C+1)/2]`` -> symmetric ``[..., C, C]`` (exact)."""
    if channels < 1:
        raise FeatureShapeError(f"gram_from_upper_triangle: channels must be >= 1, got {channels}.")
    expected = channels * (channels + 1) // 2
    if values.dim() < 1 or values.shape[-1] != expected:
        raise FeatureShapeError(
            f"gram_from_upper_triangle: {channels} channels need {expected} values in the last "
            f"dimension, got shape {tuple(values.shape)}."
        )
    rows, cols = _triu_indices(channels, values.device)
    gram = values.new_zeros(*values.shape[:-1], channels, channels)
    gram[..., rows, cols] = values
    gram[..., cols, rows] = values
    return gram


@register_statistic
class Gram(StyleStatistic):
    """Gram-matrix matching (Gatys et al. 2016).

    ``loss = mean_{ij} (G_ij - A_ij)^2`` for ``reduction='mean'`` (``sum`` for ``'sum'``) with ``G``, ``A``
    normalised as named. Relation to Gatys' ``E_l = 1/(4 N^2 M^2) sum (G - A)^2`` (unnormalised Grams,
    ``N = C``, ``M = H*W``): ``'hw'`` + ``'mean'`` gives exactly ``4 E_l``; ``'chw'`` + ``'mean'`` gives
    ``4 E_l / C^2``; ``'none'`` + ``'sum'`` gives ``4 N^2 M^2 E_l``.
    """

    name = "gram"

    def __init__(self, *, normalization: Normalization = "hw", reduction: Reduction = "mean") -> None:
        _check_normalization(normalization, where="Gram")
        _check_reduction(reduction, where="Gram")
        self.normalization = normalization
        self.reduction = reduction

    def config(self) -> dict[str, object]:
        return {"normalization": self.normalization, "reduction": self.reduction}

    def target(self, features: Tensor) -> Tensor:
        return gram_matrix(features, normalization=self.normalization)

    def loss(self, features: Tensor, target: Tensor) -> Tensor:
        return _distance_to_target(self.target(features), target, self.reduction, where="Gram.loss",
                                   described="features with Gram shape",
                                   advice="build the target from the same layer with Gram.target()")
