"""A statistic's representation of a layer as one fixed-size vector per image, for probes that compare
images by it (texture discriminability per statistic, ``texprobe grams --statistic``).

The vector is the statistic's ``target`` flattened: a Gram or covariance matrix, channel means and standard
deviations, standardised moments. Statistics whose target keeps the feature vectors themselves (sliced
Wasserstein: every position; MMD: a sample of positions) have no such summary: its size would depend on the
image size; :func:`has_fixed_size_summary` tells them apart by probing two feature-map sizes.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from nstcore.stats._base import StatisticsError
from nstcore.stats.registry import StyleStatistic

__all__ = ["has_fixed_size_summary", "summary_vectors"]


def has_fixed_size_summary(statistic: StyleStatistic) -> bool:
    """Whether ``statistic.target`` has the same size for feature maps of different sizes (probed once per
    statistic class and options)."""
    return _probe(type(statistic), tuple(sorted(statistic.config().items())))


@functools.lru_cache(maxsize=64)
def _probe(cls: type, options: tuple) -> bool:
    statistic = cls(**dict(options))
    g = torch.Generator().manual_seed(0)
    small = statistic.target(torch.rand(1, 4, 5, 5, generator=g) + 0.1)
    large = statistic.target(torch.rand(1, 4, 6, 7, generator=g) + 0.1)
    return small.shape == large.shape


def summary_vectors(statistic: StyleStatistic, features: Tensor) -> Tensor:
    """``[B, C, H, W]`` features -> ``[B, K]`` float32 summaries (the flattened target, no gradient)."""
    if not has_fixed_size_summary(statistic):
        raise StatisticsError(
            f"statistic {statistic.name!r} keeps the feature vectors themselves (its target grows with the image), "
            "so it has no fixed-size summary of a layer; use gram, cov, corr, mean, std, mean_std, skewness, "
            "kurtosis or moments:K here.")
    with torch.no_grad():
        return statistic.target(features.detach()).reshape(features.shape[0], -1).float()
