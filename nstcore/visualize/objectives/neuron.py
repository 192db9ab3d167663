"""``neuron:LAYER:C``: channel C at the centre position (Olah et al. 2017, the "neuron" objective)."""

from __future__ import annotations

from torch import Tensor

from nstcore.visualize.objectives.channel import Channel


class Neuron(Channel):
    kind = "neuron"

    def value(self, features: Tensor) -> Tensor:
        h, w = features.shape[2:]
        return features[:, self.channel, h // 2, w // 2]
