"""The shape-bias matrix plot (Geirhos et al., ICLR 2019, Fig. 4; model-vs-human's matrixplot).

x: fraction of 'texture' decisions (1 - shape bias), 0 to 1; the mirrored top axis reads the same
positions as the fraction of 'shape' decisions. One row per shape category, ordered by the humans'
shape bias (most shape-biased category at the bottom, as in the paper; by the mean over all
decision makers when no human data is present). Per decision maker: a marker per category and a
vertical line at its overall value. Humans (pooled subjects): red rgb(165, 30, 55) diamonds.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from analysis.plots._common import PlotContext, new_figure, observer_color, observer_marker
from analysis.plots.observers import ObserverBias, plotted_observers

NAME = "shape-bias-matrix"
TITLE = "Shape bias by category (matrix plot)"
DESCRIPTION = (
    "Fraction of texture decisions (bottom axis) = 1 - shape bias; top axis: fraction of shape decisions. "
    "One row per shape category, ordered by the humans' shape bias; markers per category, vertical "
    "lines at each decision maker's overall shape bias (Geirhos et al. 2019, Fig. 4). Humans: red diamonds."
)

__all__ = ["NAME", "TITLE", "DESCRIPTION", "category_order", "render"]


def category_order(observers: list[ObserverBias]) -> tuple[list[str], str]:
    """Categories bottom to top, and what ordered them ('humans' or 'mean of all')."""
    cats = sorted({c for o in observers for c in o.by_category})
    humans = [o for o in observers if o.kind == "human"]
    basis = humans if humans else observers
    def key(cat: str) -> tuple[int, float, str]:
        vals = [o.category_shape_bias(cat) for o in basis]
        vals = [v for v in vals if not math.isnan(v)]
        # highest shape bias = lowest texture fraction first (bottom); categories without data last
        return (0, 1.0 - float(np.mean(vals)), cat) if vals else (1, 0.0, cat)
    return sorted(cats, key=key), ("humans" if humans else "mean of all decision makers")


def render(ctx: PlotContext) -> Figure:
    """The matrix plot for ``ctx.options['dataset']`` (default: :func:`pick_dataset`)."""
    dataset, observers = plotted_observers(ctx)
    cats, basis = category_order(observers)
    n = len(cats)
    fig = new_figure(width=8.5, height=max(4.0, 0.42 * n + 2.2))
    ax = fig.add_subplot()
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, n - 0.5)
    top = ax.secondary_xaxis("top", functions=(lambda x: 1 - x, lambda x: 1 - x))
    ticks = np.round(np.arange(0, 1.01, 0.1), 1)
    ax.set_xticks(ticks)
    top.set_xticks(ticks)
    ax.set_xlabel("Fraction of 'texture' decisions")
    top.set_xlabel("Fraction of 'shape' decisions")
    ax.set_yticks(range(n), cats)
    ax.set_ylabel(f"Shape categories (ordered by {basis})")
    ax.tick_params(axis="y", length=0)
    for i in range(n - 1):
        ax.axhline(i + 0.5, color="gray", linestyle="dotted", alpha=0.4, linewidth=0.8)
    model_i = 0
    for obs in observers:
        idx = 0 if obs.kind == "human" else model_i
        if obs.kind != "human":
            model_i += 1
        color = observer_color(obs.label, obs.kind, idx)
        marker = observer_marker(obs.label, obs.kind, idx)
        avg = 1.0 - obs.shape_bias
        line = ax.plot([avg, avg], [-0.5, n - 0.5], color=color, linewidth=1.2, zorder=2)[0]
        line.set_gid(f"overall:{obs.label}")
        xs = [1.0 - obs.category_shape_bias(c) for c in cats]
        pts = ax.scatter(xs, range(n), color=color, marker=marker, s=55, zorder=3, clip_on=False,
                         edgecolors=(0.3, 0.3, 0.3, 0.3), linewidths=0.3,
                         label=f"{obs.label} ({obs.shape_bias:.2f})")
        pts.set_gid(f"categories:{obs.label}")
    if dataset:
        fig.suptitle(f"dataset: {dataset}", fontsize=9)
    ax.legend(title="shape bias", loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8,
              title_fontsize=9, frameon=False)
    return fig
