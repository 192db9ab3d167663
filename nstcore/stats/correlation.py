"""Centred second-order statistics: the channel covariance and the channel correlation matrix.

With ``mu_c`` the channel means over the ``M = H*W`` positions and ``X = F - mu``:
``cov = X X^T / M`` (the centred Gram, ``'hw'`` normalisation) and ``corr_ij = cov_ij / sqrt(cov_ii cov_jj +
eps)``. With :class:`~nstcore.stats.gram.Gram` they make "Gram vs covariance vs correlation" one flag:
the Gram keeps the means and scales (Gatys et al. 2015), the covariance drops the means (as the
covariance-matching losses of Li et al. 2017 and the whitening transforms of Li et al. 2017, "Universal
style transfer via feature transforms"), the correlation also drops the channel scales. Loss: mean (or
sum) of the squared entry differences to the target, per image.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nstcore.stats._base import Reduction
from nstcore.stats.moments import _WithStd
from nstcore.stats.registry import register_statistic

__all__ = ["Correlation", "Covariance", "channel_covariance"]


def channel_covariance(flat: Tensor) -> Tensor:
    """``[B, C, M]`` -> ``[B, C, C]`` population covariance of the channels over the positions."""
    centred = flat - flat.mean(dim=2, keepdim=True)
    return centred @ centred.transpose(1, 2) / flat.shape[2]


class _Centred(_WithStd):
    """Channel matrices of the centred features, pooled like the channel moments (same loss, options)."""

    def __init__(self, *, eps: float = 1e-8, reduction: Reduction = "mean") -> None:
        super().__init__(eps=eps, reduction=reduction)

    def _matrix(self, cov: Tensor) -> Tensor:
        return cov

    def _pool(self, flat: Tensor) -> Tensor:
        return self._matrix(channel_covariance(flat))


@register_statistic
class Covariance(_Centred):
    """Channel covariance ``X X^T / M`` (the centred Gram)."""

    name = "cov"


@register_statistic
class Correlation(_Centred):
    """Channel correlation ``cov_ij / sqrt(cov_ii cov_jj + eps)`` (the centred, normalised Gram)."""

    name = "corr"

    def _matrix(self, cov: Tensor) -> Tensor:
        d = torch.diagonal(cov, dim1=1, dim2=2)
        return cov / torch.sqrt(d[:, :, None] * d[:, None, :] + self.eps)
