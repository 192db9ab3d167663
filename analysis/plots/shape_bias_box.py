"""Box plot of the per-category shape bias of each decision maker (model-vs-human's boxplot).

One box per decision maker over its 16 category shape biases. For the pooled humans each category's
value is, by default, model-vs-human's: the mean over subjects of each subject's own shape bias in that
category (``mean_of_subjects`` of the ``shape_bias_by_category_subjects`` view); option
``category_definition='pooled'`` takes the subjects' trials pooled instead. Boxes in the observer's
colour (humans red), sorted by overall shape bias; the overall value is marked with a dot.
"""

from __future__ import annotations

import math

from matplotlib.figure import Figure

from analysis.plots._common import PlotContext, new_figure, observer_color
from analysis.plots.observers import plotted_observers

NAME = "shape-bias-box"
TITLE = "Per-category shape bias per observer (box plot)"
DESCRIPTION = ("Distribution over shape categories of each decision maker's shape bias; the dot is the "
               "overall (pooled) shape bias. Humans: each category's value is the mean over subjects of "
               "each subject's shape bias in it (model-vs-human's definition, mean_of_subjects); the pooled "
               "definition is in the view shape_bias_by_category_subjects.")
DEFINITIONS = ("mean_of_subjects", "pooled")

__all__ = ["NAME", "TITLE", "DESCRIPTION", "DEFINITIONS", "render"]


def _human_category_values(ctx: PlotContext, dataset: str | None, definition: str) -> dict[str, float] | None:
    """The pooled humans' per-category values in ``definition`` (None: the view has none)."""
    if definition not in DEFINITIONS:
        raise ValueError(f"category_definition {definition!r}: use one of {', '.join(DEFINITIONS)}")
    if "shape_bias_by_category_subjects" not in {r[0] for r in ctx.con.execute(
            "SELECT view_name FROM duckdb_views()").fetchall()}:
        return None
    data = ctx.con.execute(
        f"SELECT shape_category, {definition} FROM shape_bias_by_category_subjects "
        f"WHERE dataset IS NOT DISTINCT FROM ? AND {definition} IS NOT NULL", [dataset]).fetchall()
    return {c: float(v) for c, v in data} or None


def render(ctx: PlotContext) -> Figure:
    dataset, observers = plotted_observers(ctx)
    definition = ctx.options.get("category_definition", "mean_of_subjects")
    human_values = _human_category_values(ctx, dataset, definition)
    colors = {}
    model_i = 0
    for obs in observers:
        colors[obs.label] = observer_color(obs.label, obs.kind, model_i)
        model_i += obs.kind != "human"
    observers = sorted(observers, key=lambda o: o.shape_bias)

    def values(o) -> list[float]:
        if o.label == "humans" and o.kind == "human" and human_values is not None:
            return [human_values[c] for c in o.by_category if c in human_values]
        return [v for v in (o.category_shape_bias(c) for c in o.by_category) if not math.isnan(v)]

    data = [values(o) for o in observers]
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
