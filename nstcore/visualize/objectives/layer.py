"""``layer:LAYER``: DeepDream's objective, the mean squared activation of the whole layer (Mordvintsev,
Olah & Tyka 2015)."""

from __future__ import annotations

from torch import Tensor

from nstcore.visualize.objectives.base import Objective


class Layer(Objective):
    kind = "layer"

    def value(self, features: Tensor) -> Tensor:
        return features.pow(2).mean(dim=(1, 2, 3))
