"""``channel:LAYER:C``: the spatial mean of channel C (Olah et al. 2017, the "channel" objective)."""

from __future__ import annotations

from torch import Tensor

from nstcore.visualize.objectives.base import Objective, channel_arg


class Channel(Objective):
    kind = "channel"

    def __init__(self, layer: str, channel: int) -> None:
        super().__init__(layer)
        self.channel = channel

    @property
    def channels(self) -> tuple[int, ...]:
        return (self.channel,)

    @classmethod
    def from_spec(cls, layer: str, arg: str, *, spec: str) -> "Channel":
        return cls(layer, channel_arg(arg, spec=spec))

    def value(self, features: Tensor) -> Tensor:
        return features[:, self.channel].mean(dim=(1, 2))
