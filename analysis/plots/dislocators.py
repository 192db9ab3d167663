"""Which statistic makes a texture (issue 21): shape bias of the stimuli a ``[sweep]`` study generated, by
style statistic x style-layer set, one panel per classifier (view ``dislocator_effect``).

Bars: shape / (shape + texture) decisions on the cue-conflict stimuli of each condition (Geirhos et al.,
ICLR 2019); whiskers: the 95% cluster-bootstrap interval over texture sources. A low bar means the
classifier followed the texture the statistic transferred; a statistic that loses the spatial arrangement
(mean/std) leaves more of the content's shape. Conditions with several style weights are shown per weight.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from analysis.plots._common import MODEL_COLORS, NoDataError, PlotContext, new_figure, rows

NAME = "dislocator-effect"
TITLE = "Which statistic makes a texture"
DESCRIPTION = ("Shape bias of generated cue-conflict stimuli by style statistic (bars) and style-layer set "
               "(groups), one panel per classifier, with 95% cluster-bootstrap intervals over texture sources "
               "(view dislocator_effect; texprobe study run with a [sweep]).")
MAX_PANELS = 4

__all__ = ["NAME", "TITLE", "DESCRIPTION", "render", "short_layers"]


def short_layers(layers: str) -> str:
    """'conv1_1,conv2_1,conv3_1' -> 'conv1_1…conv3_1 (3)' (one layer: itself)."""
    names = layers.split(",") if layers else []
    return names[0] if len(names) == 1 else f"{names[0]}…{names[-1]} ({len(names)})" if names else "-"


def render(ctx: PlotContext) -> Figure:
    found = rows(ctx.con, """
        SELECT classifier, statistic, style_layers, style_weight, shape_bias, boot_low, boot_high, n_conflict
        FROM dislocator_effect WHERE n_conflict > 0 ORDER BY classifier, style_layers, statistic, style_weight""")
    if not found:
        raise NoDataError("no generated stimuli judged by a classifier (run a study with a [sweep] block)")
    classifiers = list(dict.fromkeys(r["classifier"] for r in found))[:MAX_PANELS]
    weights = {r["style_weight"] for r in found}
    def series(r: dict) -> str:
        return r["statistic"] if len(weights) == 1 else f"{r['statistic']} w={r['style_weight']:g}"
    names = list(dict.fromkeys(series(r) for r in found))
    groups = list(dict.fromkeys(r["style_layers"] for r in found))
    width = 0.8 / len(names)
    fig = new_figure(width=max(4.5, 1.2 + len(groups) * len(names) * 0.45) * min(2, len(classifiers)),
                     height=3.6 * ((len(classifiers) + 1) // 2))
    cols = min(2, len(classifiers))
    for p, classifier in enumerate(classifiers):
        ax = fig.add_subplot((len(classifiers) + 1) // 2, cols, p + 1)
        for k, name in enumerate(names):
            mine = {r["style_layers"]: r for r in found if r["classifier"] == classifier and series(r) == name}
            xs = [g + (k - (len(names) - 1) / 2) * width for g in range(len(groups)) if groups[g] in mine]
            data = [mine[groups[g]] for g in range(len(groups)) if groups[g] in mine]
            if not data:
                continue
            heights = [r["shape_bias"] or 0.0 for r in data]
            low = [h - (r["boot_low"] if r["boot_low"] is not None else h) for h, r in zip(heights, data)]
            high = [(r["boot_high"] if r["boot_high"] is not None else h) - h for h, r in zip(heights, data)]
            ax.bar(xs, heights, width=width * 0.92, color=MODEL_COLORS[k % len(MODEL_COLORS)], label=name,
                   yerr=[low, high], capsize=2, error_kw={"linewidth": 0.8}, gid=f"bars:{classifier}:{name}")
        ax.set_xticks(range(len(groups)), [short_layers(g) for g in groups], fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel("shape bias")
        ax.set_title(classifier, fontsize=9)
        ax.axhline(0.5, color="gray", linestyle="dotted", linewidth=0.8)
        if p == 0:
            ax.legend(fontsize=7, frameon=False, loc="upper right")
    return fig
