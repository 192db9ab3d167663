"""Box plot of the per-category shape bias of each decision maker (model-vs-human's boxplot).

One box per decision maker over its 16 category shape biases; for the humans the box is over the
category values of the pooled subjects. Boxes in the observer's colour (humans red), sorted by
overall shape bias; the overall value is marked with a dot.
"""

from __future__ import annotations

import math

from matplotlib.figure import Figure

from analysis.plots._common import PlotContext, new_figure, observer_color
from analysis.plots.observers import plotted_observers

NAME = "shape-bias-box"
TITLE = "Per-category shape bias per observer (box plot)"
DESCRIPTION = ("Distribution over shape categories of each decision maker's shape bias; the dot is the "
               "overall (pooled) shape bias.")

__all__ = ["NAME", "TITLE", "DESCRIPTION", "render"]


def render(ctx: PlotContext) -> Figure:
    _, observers = plotted_observers(ctx)
    colors = {}
    model_i = 0
    for obs in observers:
        colors[obs.label] = observer_color(obs.label, obs.kind, model_i)
        model_i += obs.kind != "human"
    observers = sorted(observers, key=lambda o: o.shape_bias)
    data = [[v for v in (o.category_shape_bias(c) for c in o.by_category) if not math.isnan(v)]
            for o in observers]
    fig = new_figure(width=max(5.0, 0.55 * len(observers) + 2.5), height=4.6)
    ax = fig.add_subplot()
    box = ax.boxplot(data, patch_artist=True, showfliers=False, widths=0.6)
    for patch, median, obs in zip(box["boxes"], box["medians"], observers):
        patch.set(facecolor=colors[obs.label], alpha=0.55, edgecolor=colors[obs.label])
        median.set_gid(f"median:{obs.label}")
    ax.scatter(range(1, len(observers) + 1), [o.shape_bias for o in observers], color="black", s=14,
               zorder=3, label="overall")
    ax.set_xticks(range(1, len(observers) + 1), [o.label for o in observers], rotation=60, ha="right",
                  fontsize=8)
    for tick, obs in zip(ax.get_xticklabels(), observers):
        tick.set_color(colors[obs.label])
    ax.set_ylim(0, 1)
    ax.set_ylabel("shape bias")
    ax.axhline(0.5, color="gray", linestyle="dotted", linewidth=0.8)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return fig
