"""Feature visualisation: what a layer's channels, neurons and channel clusters respond to.

Activation maximisation (Erhan et al. 2009; Olah, Mordvintsev & Schubert, "Feature Visualization",
Distill 2017; DeepDream, Mordvintsev et al. 2015): an input image is optimised to maximise an objective
on a network's activations, with an image parameterisation (:mod:`~nstcore.visualize.params`: pixels, or
a spatial-frequency-scaled, colour-decorrelated Fourier basis) and random robustness transforms
(:mod:`~nstcore.visualize.transforms`). :func:`~nstcore.visualize.render.render` optimises B objectives in
one batch, each image with its own optimiser state (one objective never influences another).
Objectives are plug-ins (:mod:`~nstcore.visualize.objectives`: one file each, one registry line);
:func:`~nstcore.visualize.precision.with_precision` runs the network in bf16 and/or channels_last.
"""

from __future__ import annotations

from nstcore.visualize.objectives import OBJECTIVES, Objective, parse_objective
from nstcore.visualize.precision import with_precision
from nstcore.visualize.render import RenderResult, render

__all__ = ["OBJECTIVES", "Objective", "RenderResult", "parse_objective", "render", "with_precision"]
