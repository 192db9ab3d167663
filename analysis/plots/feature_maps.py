"""Feature maps (issue 22): one image beside its strongest channel maps at a layer - which channels fire where
on a cue-conflict stimulus (``texprobe featuremaps IMAGE --layer L --store S``; table ``feature_maps``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

from analysis.plots._common import NoDataError, PlotContext, new_figure, read_store_image, rows

NAME = "feature-maps"
TITLE = "Feature maps"
DESCRIPTION = ("One image (left, as the network saw it) and its channels at a layer with the highest mean "
               "activation, strongest first, on one colour scale (texprobe featuremaps --store; table "
               "feature_maps): where each channel fires. The latest featuremaps run per layer.")
COLS = 8
MAX_LAYERS = 3

__all__ = ["NAME", "TITLE", "DESCRIPTION", "draw_feature_maps", "render"]


def draw_feature_maps(fig: Figure, picture: Any, maps: Sequence[Any], channels: Sequence[int],
                      means: Sequence[float], *, title: str, grid: Any = None) -> None:
    """The input over two columns, then the maps (``[h, w]`` arrays) ``COLS`` per row, titled with channel
    and mean, one shared colour scale (0 .. the largest activation shown)."""
    import numpy as np

    cols = min(COLS, max(1, len(maps)))
    nrows = max(1, (len(maps) + cols - 1) // cols)
    sub = grid if grid is not None else fig.add_gridspec(nrows, cols + 2)
    ax = fig.add_subplot(sub[:, :2])
    ax.imshow(picture)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    top = max((float(np.max(m)) for m in maps), default=1.0)
    for k, (m, channel, mean) in enumerate(zip(maps, channels, means)):
        cell = fig.add_subplot(sub[k // cols, 2 + k % cols])
        cell.imshow(m, cmap="magma", vmin=0.0, vmax=max(top, 1e-6))
        cell.set_title(f"ch {channel}  mean {mean:.2f}", fontsize=7)
        cell.axis("off")


def render(ctx: PlotContext) -> Figure:
    import numpy as np

    found = rows(ctx.con, f"""
        WITH latest AS (
            SELECT f.backbone, f.layer, arg_max(f.run_id, r.started_at) AS run_id
            FROM feature_maps AS f LEFT JOIN run_times AS r USING (run_id)
            GROUP BY f.backbone, f.layer ORDER BY max(r.started_at) DESC NULLS LAST LIMIT {MAX_LAYERS})
        SELECT f.* FROM feature_maps AS f SEMI JOIN latest AS l USING (run_id, backbone, layer)
        ORDER BY f.layer_index, f.run_id, f.rank""")
    if not found:
        raise NoDataError("no feature maps (run `texprobe featuremaps IMAGE --layer L --store STORE`)")
    groups = list(dict.fromkeys((r["run_id"], r["layer"]) for r in found))
    per = {g: [r for r in found if (r["run_id"], r["layer"]) == g][:2 * COLS] for g in groups}
    heights = [max(1, (len(v) + COLS - 1) // COLS) for v in per.values()]
    fig = new_figure(width=2.0 * (COLS + 2), height=2.0 * sum(heights) + 0.4 * len(groups))
    outer = fig.add_gridspec(len(groups), 1, height_ratios=heights)
    for i, (key, shown) in enumerate(per.items()):
        first = shown[0]
        picture = read_store_image(ctx.store, first["input_path"])
        maps = [np.asarray(r["map"], dtype=np.float32).reshape(r["height"], r["width"]) for r in shown]
        inner = outer[i].subgridspec(heights[i], COLS + 2)
        draw_feature_maps(fig, picture if picture is not None else np.zeros((8, 8, 3)), maps,
                          [r["channel"] for r in shown], [r["mean"] for r in shown],
                          title=f"{first['image']}\n{first['backbone']} {first['layer']}", grid=inner)
    return fig
