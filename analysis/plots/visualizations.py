"""Feature visualisations (Olah et al., Distill 2017): the images that maximise channels, neurons, layers and
Gram clusters (``texprobe visualize``), each titled with its objective and the objective's rise.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from analysis.plots._common import NoDataError, PlotContext, new_figure, read_store_image, rows

NAME = "visualizations"
TITLE = "What the channels see"
DESCRIPTION = ("Activation maximisation (texprobe visualize), latest run first: each image maximises the objective "
               "in its title (channel / neuron / layer / Gram cluster); below it the objective at the start "
               "(noise or the --from image) and at the end.")
MAX_IMAGES = 16
COLS = 8

__all__ = ["NAME", "TITLE", "DESCRIPTION", "render"]


def render(ctx: PlotContext) -> Figure:
    found = rows(ctx.con, f"""
        SELECT v.objective, v.backbone, v.value_start, v.value_end, v.path, v.greyscale, v.param
        FROM visualizations AS v LEFT JOIN run_times AS r USING (run_id)
        WHERE v.path IS NOT NULL
        ORDER BY r.started_at DESC NULLS LAST, v.run_id DESC, v.layer_index, v.seed LIMIT {MAX_IMAGES}""")
    if not found:
        raise NoDataError("no visualizations (run `texprobe visualize channel:LAYER:C ...`)")
    cols = min(COLS, len(found))
    nrows = (len(found) + cols - 1) // cols
    fig = new_figure(width=1.8 * cols + 0.4, height=2.15 * nrows + 0.3)
    for k, r in enumerate(found):
        ax = fig.add_subplot(nrows, cols, k + 1)
        img = read_store_image(ctx.store, r["path"])
        if img is not None:
            ax.imshow(img)
        else:
            ax.text(0.5, 0.5, "image\nmissing", ha="center", va="center", fontsize=7)
        label = r["objective"] if len(r["objective"]) <= 26 else r["objective"][:24] + "…"
        ax.set_title(f"{r['backbone']}\n{label}", fontsize=6.5)
        ax.set_xlabel(f"{r['value_start']:.3g} → {r['value_end']:.3g}", fontsize=6.5)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
