"""Channel-moment style statistics: means, means of squares / absolute values, standard deviations and
AdaIN's mean+std (Li et al. 2017; Huang & Belongie 2017)."""

from __future__ import annotations

import abc

import torch
from torch import Tensor

from nstcore.stats._base import (
    Reduction,
    StatisticsError,
    _check_features,
    _check_reduction,
    _distance_to_target,
    _flat,
    _no_autocast,
)
from nstcore.stats.registry import StyleStatistic, register_statistic

__all__ = ["Mean", "MeanAbs", "MeanSq", "MeanStd", "Std"]


class _ChannelMoments(StyleStatistic):
    """Statistics that pool each channel over positions into a ``[B, K]`` vector.

    ``loss = mean_k (s_k - t_k)^2`` for ``reduction='mean'``, the sum for ``'sum'``.
    """

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        _check_reduction(reduction, where=type(self).__name__)
        self.reduction = reduction

    def config(self) -> dict[str, object]:
        return {"reduction": self.reduction}

    @abc.abstractmethod
    def _pool(self, flat: Tensor) -> Tensor:
        """``[B, C, M]`` (accumulation dtype) -> ``[B, K]``."""

    def target(self, features: Tensor) -> Tensor:
        _check_features(features, where=f"{type(self).__name__}.target")
        with _no_autocast(features.device):
            return self._pool(_flat(features))

    def loss(self, features: Tensor, target: Tensor) -> Tensor:
        return _distance_to_target(self.target(features), target, self.reduction, where=f"{type(self).__name__}.loss",
                                   described="statistics of shape",
                                   advice="build the target with .target() on the same layer")


@register_statistic
class Mean(_ChannelMoments):
    """Channel means ``mu_c = (1/M) sum_m F_cm`` (Li et al. 2017, linear-kernel MMD representation)."""

    name = "mean"

    def _pool(self, flat: Tensor) -> Tensor:
        return flat.mean(dim=2)


@register_statistic
class MeanSq(_ChannelMoments):
    """Channel means of squares ``(1/M) sum_m F_cm^2`` (the diagonal of the ``'hw'`` Gram)."""

    name = "mean_sq"

    def _pool(self, flat: Tensor) -> Tensor:
        return (flat * flat).mean(dim=2)


@register_statistic
class MeanAbs(_ChannelMoments):
    """Channel means of absolute values ``(1/M) sum_m |F_cm|``."""

    name = "mean_abs"

    def _pool(self, flat: Tensor) -> Tensor:
        return flat.abs().mean(dim=2)


def _channel_std(flat: Tensor, eps: float) -> Tensor:
    """Population standard deviation per channel, ``sqrt(var + eps)`` (as in AdaIN's code)."""
    centred = flat - flat.mean(dim=2, keepdim=True)
    return torch.sqrt((centred * centred).mean(dim=2) + eps)


class _WithStd(_ChannelMoments):
    """Moments that include channel standard deviations, with their ``eps`` option."""

    def __init__(self, *, eps: float = 1e-5, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        if not eps >= 0.0:
            raise StatisticsError(f"{type(self).__name__}: eps must be >= 0, got {eps!r}.")
        self.eps = float(eps)

    def config(self) -> dict[str, object]:
        return {"eps": self.eps, "reduction": self.reduction}


@register_statistic
class Std(_WithStd):
    """Channel standard deviations ``sqrt((1/M) sum_m (F_cm - mu_c)^2 + eps)`` (population variance).

    ``eps`` keeps the gradient finite on constant channels (AdaIN uses 1e-5).
    """

    name = "std"

    def _pool(self, flat: Tensor) -> Tensor:
        return _channel_std(flat, self.eps)


@register_statistic
class MeanStd(_WithStd):
    """AdaIN statistics (Huang & Belongie 2017): target ``[B, 2C]`` = channel means then stds.

    ``reduction='sum'`` gives the paper's ``||mu - mu_t||^2 + ||sigma - sigma_t||^2``;
    ``reduction='mean'`` (default) divides that by ``2C``. ``std`` as in :class:`Std`.
    """

    name = "mean_std"

    def _pool(self, flat: Tensor) -> Tensor:
        return torch.cat([flat.mean(dim=2), _channel_std(flat, self.eps)], dim=1)
