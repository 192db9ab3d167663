"""Higher standardised channel moments as style statistics: skewness, kurtosis and the joint moments 1..K.

Per channel ``c`` over the ``M = H*W`` positions, with population moments (``1/M``, as
``scipy.stats.skew`` / ``kurtosis`` with ``bias=True``): ``mu_c = mean F_c``, ``sigma_c = sqrt(var_c + eps)``
and the standardised ``j``-th moment ``m_j = mean((F_c - mu_c)^j) / sigma_c^j``. Matching moments beyond
the second is the "moment matching" view of texture (Portilla & Simoncelli 2000 match marginal skewness and
kurtosis of subbands; Kalischek, Wegner & Schindler, "In the light of feature distributions: moment
matching for neural style transfer", CVPR 2021, match channel moments 1..K of CNN features). The loss of
each is the mean (or sum) over channels of the squared difference to the target, per image.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nstcore.stats._base import Reduction, StatisticsError
from nstcore.stats.moments import _WithStd
from nstcore.stats.registry import register_statistic

__all__ = ["Kurtosis", "Moments", "Skewness", "standardized_moments"]


def standardized_moments(flat: Tensor, orders: range, eps: float) -> Tensor:
    """``[B, C, M]`` -> ``[B, C, len(orders)]``: order 1 the mean, 2 the standard deviation ``sqrt(var + eps)``,
    ``j >= 3`` the standardised moment ``mean((x - mu)^j) / sigma^j``."""
    mu = flat.mean(dim=2, keepdim=True)
    centred = flat - mu
    sigma = torch.sqrt((centred * centred).mean(dim=2) + eps)
    out = []
    for j in orders:
        if j == 1:
            out.append(mu.squeeze(2))
        elif j == 2:
            out.append(sigma)
        else:
            out.append(centred.pow(j).mean(dim=2) / sigma.pow(j))
    return torch.stack(out, dim=2)


@register_statistic
class Skewness(_WithStd):
    """Channel skewness ``mean((F_c - mu_c)^3) / sigma_c^3`` (``scipy.stats.skew``, population moments)."""

    name = "skewness"

    def _pool(self, flat: Tensor) -> Tensor:
        return standardized_moments(flat, range(3, 4), self.eps)[..., 0]


@register_statistic
class Kurtosis(_WithStd):
    """Channel excess kurtosis ``mean((F_c - mu_c)^4) / sigma_c^4 - 3`` (Fisher's definition, as
    ``scipy.stats.kurtosis``; 0 for a Gaussian)."""

    name = "kurtosis"

    def _pool(self, flat: Tensor) -> Tensor:
        return standardized_moments(flat, range(4, 5), self.eps)[..., 0] - 3.0


@register_statistic
class Moments(_WithStd):
    """The moments 1..``k`` of every channel matched jointly (``moments:K`` on the command line): target
    ``[B, C * k]`` = per channel mean, standard deviation, then the standardised moments 3..k
    (kurtosis as the plain 4th standardised moment, not excess). Kalischek et al., CVPR 2021."""

    name = "moments"
    positional = "k"

    def __init__(self, *, k: int = 4, eps: float = 1e-5, reduction: Reduction = "mean") -> None:
        super().__init__(eps=eps, reduction=reduction)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 8:
            raise StatisticsError(f"Moments: k must be an integer from 1 to 8 (moments 1..k), got {k!r}.")
        self.k = k

    def config(self) -> dict[str, object]:
        return {"k": self.k, **super().config()}

    def _pool(self, flat: Tensor) -> Tensor:
        return standardized_moments(flat, range(1, self.k + 1), self.eps).flatten(1)
