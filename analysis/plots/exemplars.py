"""Dataset exemplars (Olah et al., Distill 2017, "dataset examples"; Zeiler & Fergus 2014): per channel, the
patches of the images that activate it most (view ``channel_exemplars``), cropped around each peak.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from analysis.plots._common import NoDataError, PlotContext, new_figure, rows

NAME = "exemplars"
TITLE = "Dataset exemplars"
DESCRIPTION = ("Per channel (rows), the patches of the images that activate it most, strongest first "
               "(texprobe exemplars; view channel_exemplars): the input resized as the run saw it, cropped "
               "around the channel's peak; titled with the peak activation.")
MAX_CHANNELS = 8
MAX_RANK = 6

__all__ = ["NAME", "TITLE", "DESCRIPTION", "render"]


def _patch(r: dict):
    """The patch as an array (the input resized as the run saw it: shorter side to the run's size), or
    None when the input file is not on this machine. Pillow only: the report does not import torch."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(r["path"]) as opened:
            img = opened.convert("RGB")
    except Exception:  # noqa: BLE001 - moved or deleted input: the cell says so
        return None
    side = min(r["input_height"] or 0, r["input_width"] or 0)
    if side and min(img.size) != side:
        scale = side / min(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BICUBIC)
    box = (r["box_left"], r["box_top"], r["box_right"], r["box_bottom"])
    return np.asarray(img.crop(box)) if None not in box else np.asarray(img)


def render(ctx: PlotContext) -> Figure:
    found = rows(ctx.con, f"""
        WITH shown AS (
            SELECT DISTINCT backbone, weights_sha256, dataset, layer, layer_index, channel FROM channel_exemplars
            ORDER BY backbone, weights_sha256, dataset, layer_index, channel LIMIT {MAX_CHANNELS})
        SELECT e.* FROM channel_exemplars AS e SEMI JOIN shown AS s
            ON e.backbone = s.backbone AND e.weights_sha256 IS NOT DISTINCT FROM s.weights_sha256
           AND e.dataset IS NOT DISTINCT FROM s.dataset AND e.layer = s.layer AND e.channel = s.channel
        WHERE e.rank <= {MAX_RANK}
        ORDER BY e.backbone, e.layer_index, e.channel, e.rank""")
    if not found:
        raise NoDataError("no exemplars (run `texprobe exemplars IMAGES --layer L`)")
    channels = list(dict.fromkeys((r["backbone"], r["layer"], r["channel"]) for r in found))
    fig = new_figure(width=1.45 * MAX_RANK + 1.6, height=1.55 * len(channels) + 0.3)
    grid = fig.add_gridspec(len(channels), MAX_RANK)
    for i, key in enumerate(channels):
        for r in (r for r in found if (r["backbone"], r["layer"], r["channel"]) == key):
            ax = fig.add_subplot(grid[i, r["rank"] - 1])
            patch = _patch(r)
            if patch is not None:
                ax.imshow(patch)
            else:
                ax.text(0.5, 0.5, (r["image"] or "")[:14] + "\n(not here)", ha="center", va="center", fontsize=6)
            ax.set_title(f"{r['value']:.3g}", fontsize=6.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if r["rank"] == 1:
                ax.set_ylabel(f"{key[1]}\nch {key[2]}", fontsize=7)
    return fig
