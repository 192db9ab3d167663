"""The objective interface: a layer and a per-image value of its activations (higher is better)."""

from __future__ import annotations

import abc
from typing import ClassVar

from torch import Tensor

from nstcore.errors import NstcoreError


class ObjectiveError(NstcoreError, ValueError):
    """An objective spec or argument that cannot work (names the spec and what to write)."""


class Objective(abc.ABC):
    """What to maximise on one layer's activations ``[B, C, H, W]`` -> ``[B]`` (one value per image)."""

    kind: ClassVar[str]

    def __init__(self, layer: str) -> None:
        self.layer = layer

    @abc.abstractmethod
    def value(self, features: Tensor) -> Tensor:
        """Per-image objective ``[B]`` (differentiable)."""

    @property
    def channels(self) -> tuple[int, ...]:
        """The channels the objective reads (empty: all)."""
        return ()

    def check(self, channels: int) -> None:
        """Refuse channel indices outside a layer of ``channels`` channels."""
        bad = [c for c in self.channels if not 0 <= c < channels]
        if bad:
            raise ObjectiveError(f"{self}: layer {self.layer!r} has {channels} channels (0..{channels - 1}); got {bad}")

    @classmethod
    def from_spec(cls, layer: str, arg: str, *, spec: str) -> "Objective":
        if arg:
            raise ObjectiveError(f"objective {spec!r}: {cls.kind} takes no argument after the layer")
        return cls(layer)

    def __repr__(self) -> str:
        return f"{self.kind}:{self.layer}" + (f":{','.join(map(str, self.channels))}" if self.channels else "")


def channel_arg(arg: str, *, spec: str) -> int:
    try:
        value = int(arg)
    except ValueError:
        raise ObjectiveError(f"objective {spec!r}: the channel must be an integer, got {arg!r}") from None
    if value < 0:
        raise ObjectiveError(f"objective {spec!r}: the channel must be >= 0")
    return value
