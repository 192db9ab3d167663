"""Objectives over a set of channels (a Gram cluster: channels that co-activate across a texture set):

* ``channels:LAYER:C1,C2,...`` - the mean activation of the channels together;
* ``channels-correlation:LAYER:C1,C2,...`` - the mean normalised Gram entry among them,
  ``G_ij / sqrt(G_ii G_jj)`` with ``G = F F^T / M`` (Gatys et al. 2015), i != j: the image whose texture
  is "these channels firing together" - the Gram view of what a texture is to the layer.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nstcore.visualize.objectives.base import Objective, ObjectiveError, channel_arg


class ChannelsMean(Objective):
    kind = "channels"

    def __init__(self, layer: str, channels: tuple[int, ...]) -> None:
        super().__init__(layer)
        if not channels:
            raise ObjectiveError(f"{self.kind}:{layer}: give at least one channel")
        self._channels = tuple(channels)

    @property
    def channels(self) -> tuple[int, ...]:
        return self._channels

    @classmethod
    def from_spec(cls, layer: str, arg: str, *, spec: str) -> "ChannelsMean":
        return cls(layer, tuple(channel_arg(a, spec=spec) for a in arg.split(",") if a.strip()))

    def value(self, features: Tensor) -> Tensor:
        return features[:, list(self._channels)].mean(dim=(1, 2, 3))


class ClusterCorrelation(ChannelsMean):
    kind = "channels-correlation"

    def __init__(self, layer: str, channels: tuple[int, ...], *, eps: float = 1e-8) -> None:
        super().__init__(layer, channels)
        if len(self._channels) < 2:
            raise ObjectiveError(f"{self.kind}:{layer}: a correlation needs at least two channels")
        self.eps = eps

    def value(self, features: Tensor) -> Tensor:
        f = features[:, list(self._channels)].flatten(2)
        gram = f @ f.transpose(1, 2) / f.shape[2]
        d = torch.diagonal(gram, dim1=1, dim2=2)
        corr = gram / torch.sqrt(d[:, :, None] * d[:, None, :] + self.eps)
        k = corr.shape[1]
        return (corr.sum(dim=(1, 2)) - torch.diagonal(corr, dim1=1, dim2=2).sum(dim=1)) / (k * (k - 1))
