"""``direction:LAYER:FILE.npy``: the spatial mean of the activations projected on a direction ``d`` (a
``[C]`` vector; Olah et al. 2017, "direction"): ``mean_hw <f_hw, d>``."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from nstcore.visualize.objectives.base import Objective, ObjectiveError


class Direction(Objective):
    kind = "direction"

    def __init__(self, layer: str, direction: np.ndarray) -> None:
        super().__init__(layer)
        self.direction = np.asarray(direction, dtype=np.float64).reshape(-1)

    @classmethod
    def from_spec(cls, layer: str, arg: str, *, spec: str) -> "Direction":
        try:
            return cls(layer, np.load(arg))
        except (OSError, ValueError) as exc:
            raise ObjectiveError(f"objective {spec!r}: cannot read the direction {arg!r} ({exc}); save a [C] "
                                 "vector with numpy.save") from None

    def check(self, channels: int) -> None:
        if self.direction.size != channels:
            raise ObjectiveError(f"{self}: the direction has {self.direction.size} values, layer {self.layer!r} has "
                                 f"{channels} channels")

    def value(self, features: Tensor) -> Tensor:
        d = torch.as_tensor(self.direction, dtype=features.dtype, device=features.device)
        return torch.einsum("bchw,c->b", features, d) / (features.shape[2] * features.shape[3])
