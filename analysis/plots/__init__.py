"""Figures of the texprobe report, one module per figure (matplotlib, Agg canvas, no pyplot).

Every module has ``NAME`` (the ``texprobe plot NAME`` argument), ``TITLE``, ``DESCRIPTION`` and
``render(ctx: PlotContext) -> Figure``; ``render`` raises :class:`NoDataError` when its views are
empty. :func:`write_plot` is ``texprobe plot NAME --out FILE.png|svg|pdf``.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from analysis.errors import AnalysisError
from analysis.plots import (
    dislocators,
    error_consistency,
    exemplars,
    feature_maps,
    gram_clusters,
    gram_heatmaps,
    layer_stats,
    loss_curves,
    reconstructions,
    shape_bias_box,
    shape_bias_matrix,
    study_over_time,
    texture_discriminability,
    visualizations,
)
from analysis.plots._common import NoDataError, PlotContext, figure_bytes, save_figure

__all__ = ["PLOTS", "NoDataError", "PlotContext", "UnknownPlotError", "figure_bytes", "get_plot",
           "plot_names", "write_plot"]

_MODULES: tuple[ModuleType, ...] = (
    shape_bias_matrix, shape_bias_box, error_consistency, layer_stats, texture_discriminability,
    reconstructions, loss_curves, gram_heatmaps, visualizations, exemplars, gram_clusters, feature_maps, dislocators,
    study_over_time,
)
#: Figure modules by ``NAME``, in report order.
PLOTS: dict[str, ModuleType] = {m.NAME: m for m in _MODULES}


class UnknownPlotError(AnalysisError, KeyError):
    """A figure name that no module has."""

    def __str__(self) -> str:
        return self.args[0]


def plot_names() -> list[str]:
    """Names of every figure, in report order."""
    return list(PLOTS)


def get_plot(name: str) -> ModuleType:
    """The figure module called ``name``; :class:`UnknownPlotError` naming the known ones otherwise."""
    try:
        return PLOTS[name]
    except KeyError:
        raise UnknownPlotError(f"unknown figure {name!r}; known figures: {', '.join(PLOTS)}") from None


def write_plot(name: str, *, store: str | os.PathLike, out: str | os.PathLike, study: str | None = None,
               dataset: str | None = None) -> Path:
    """Render figure ``name`` from ``store``'s views into ``out`` (.png, .svg or .pdf)."""
    from analysis.db import connect

    module = get_plot(name)
    suffix = Path(out).suffix.lower().lstrip(".")
    if suffix not in ("png", "svg", "pdf"):
        raise AnalysisError(f"--out {out}: name the file .png, .svg or .pdf (got {Path(out).suffix or 'no suffix'!r})")
    con = connect(store)
    try:
        options = {"dataset": dataset} if dataset else {}
        fig = module.render(PlotContext(con=con, store=os.fspath(store), study=study, options=options))
    finally:
        con.close()
    return save_figure(fig, out)
