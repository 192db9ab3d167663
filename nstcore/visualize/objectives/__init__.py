"""Visualisation objectives: ``kind:LAYER[:ARG]`` specs -> :class:`Objective` (one file per kind)."""

from __future__ import annotations

from nstcore.visualize.objectives.base import Objective, ObjectiveError
from nstcore.visualize.objectives.channel import Channel
from nstcore.visualize.objectives.clusters import ChannelsMean, ClusterCorrelation
from nstcore.visualize.objectives.direction import Direction
from nstcore.visualize.objectives.layer import Layer
from nstcore.visualize.objectives.neuron import Neuron

#: kind -> class; the command line's ``kind:LAYER:ARG`` names.
OBJECTIVES: dict[str, type[Objective]] = {
    "channel": Channel,
    "neuron": Neuron,
    "layer": Layer,
    "direction": Direction,
    "channels": ChannelsMean,
    "channels-correlation": ClusterCorrelation,
}

__all__ = ["OBJECTIVES", "Objective", "ObjectiveError", "parse_objective"]


def parse_objective(spec: str) -> Objective:
    """``'channel:stage5:12'`` -> ``Channel('stage5', 12)``; a clear error naming the spec otherwise."""
    kind, _, rest = spec.partition(":")
    if kind not in OBJECTIVES or not rest:
        raise ObjectiveError(f"objective {spec!r}: use KIND:LAYER[:ARG] with KIND one of {', '.join(OBJECTIVES)}")
    layer, _, arg = rest.partition(":")
    return OBJECTIVES[kind].from_spec(layer, arg, spec=spec)
