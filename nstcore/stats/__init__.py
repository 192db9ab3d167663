"""Spatial-pooling style statistics: Gram matrices, channel moments and MMD, as plug-ins.

A *style loss* is a representation plus a distance (the idea behind pystiche's loss classes). Every
:class:`StyleStatistic` has

* ``target(features)`` -> ``[B, ...]`` float32: what to match (a Gram matrix, channel moments, or a
  sample of feature vectors for MMD), computed from the style image's features;
* ``loss(features, target)`` -> ``[B]`` float32: one loss per image, differentiable in ``features``.
  Nothing is summed over the batch. A target with batch size 1 is broadcast over the batch.

References
----------
* Gatys, Ecker & Bethge (2015) "Texture synthesis using convolutional neural networks", and (2016)
  "Image style transfer using convolutional neural networks": Gram matrix ``G = F F^T`` and the layer
  loss ``E_l = 1/(4 N^2 M^2) sum (G - A)^2`` with unnormalised Grams (N channels, M = H*W positions).
* Li, Wang, Liu & Hou (2017) "Demystifying neural style transfer": matching Grams is minimising the
  MMD with the kernel ``k(x, y) = (x^T y)^2``; linear and Gaussian kernels as alternatives.
* Huang & Belongie (2017) "Arbitrary style transfer in real-time with adaptive instance
  normalization": matching channel means and standard deviations.
* Gretton et al. (2012) "A kernel two-sample test": the biased MMD^2 estimator and the median heuristic.
* Kalischek, Wegner & Schindler (2021) "In the light of feature distributions: moment matching for neural
  style transfer": channel moments beyond the second (skewness, kurtosis, moments 1..K).
* Heitz, Vacher, Coeurjolly & Newson (2021) "A Sliced Wasserstein Loss for Neural Texture Synthesis".

Precision: low-precision inputs (fp16 / bf16) are upcast to float32 before any reduction, inside
``torch.autocast(enabled=False)``; float64 inputs stay float64 (for gradcheck). All other inputs give
float32 results.

Layout: :mod:`~nstcore.stats.registry` (the interface and the registry by name),
:mod:`~nstcore.stats.gram`, :mod:`~nstcore.stats.moments`, :mod:`~nstcore.stats.higher_moments`,
:mod:`~nstcore.stats.correlation`, :mod:`~nstcore.stats.sliced_wasserstein`, :mod:`~nstcore.stats.mmd` (one concept each;
importing this package registers every built-in statistic). New statistics: subclass
:class:`StyleStatistic` and decorate with :func:`register_statistic`.
"""

from __future__ import annotations

from nstcore.stats._base import (
    NORMALIZATIONS,
    FeatureShapeError,
    Normalization,
    Reduction,
    StatisticsError,
    UnknownStatisticError,
)
from nstcore.stats.correlation import Correlation, Covariance
from nstcore.stats.gram import Gram, gram_from_upper_triangle, gram_matrix, gram_upper_triangle
from nstcore.stats.higher_moments import Kurtosis, Moments, Skewness
from nstcore.stats.mmd import MMDGaussian, MMDLinear, MMDPoly
from nstcore.stats.moments import Mean, MeanAbs, MeanSq, MeanStd, Std
from nstcore.stats.registry import (STATISTICS, StyleStatistic, describe_statistics, get_statistic, list_statistics,
                                    parse_statistic, register_statistic, statistic_from_spec,
                                    statistic_options)
from nstcore.stats.sliced_wasserstein import SlicedWasserstein

__all__ = [
    "NORMALIZATIONS",
    "STATISTICS",
    "Correlation",
    "Covariance",
    "Kurtosis",
    "Moments",
    "Skewness",
    "SlicedWasserstein",
    "describe_statistics",
    "parse_statistic",
    "statistic_from_spec",
    "statistic_options",
    "FeatureShapeError",
    "Gram",
    "Mean",
    "MeanAbs",
    "MeanSq",
    "MeanStd",
    "MMDGaussian",
    "MMDLinear",
    "MMDPoly",
    "StatisticsError",
    "Std",
    "StyleStatistic",
    "UnknownStatisticError",
    "get_statistic",
    "gram_from_upper_triangle",
    "gram_matrix",
    "gram_upper_triangle",
    "list_statistics",
    "register_statistic",
]
