"""Gram clusters (issue 22): a layer's channels that co-activate across a texture set (``texprobe
gram-clusters``), each cluster shown by what maximises it - its channels' mean activation (``gram-cluster``)
and the normalised Gram entries among them (``cluster-correlation``, ``texprobe visualize``) - beside the
dataset patches that activate its channels most (``texprobe exemplars``).
"""

from __future__ import annotations

from matplotlib.figure import Figure

from analysis.plots._common import NoDataError, PlotContext, new_figure, read_store_image, rows
from analysis.plots.exemplars import _patch

NAME = "gram-clusters"
TITLE = "Gram clusters: what co-activating channels see"
DESCRIPTION = ("Per layer (latest texprobe gram-clusters run) and cluster (0 = the largest; its within-cluster "
               "mean normalised Gram entry r), the images that maximise the cluster's mean activation and its "
               "within-cluster correlation (texprobe visualize gram-cluster:L:K / cluster-correlation:L:K), "
               "then the top dataset patch of its strongest channels (texprobe exemplars). Empty cells: not "
               "computed yet.")
MAX_LAYERS = 2
MAX_CLUSTERS = 3
PATCHES = 4
KINDS = (("channels", "mean activation"), ("channels-correlation", "correlation"))

__all__ = ["NAME", "TITLE", "DESCRIPTION", "render"]


def _clusters(ctx: PlotContext) -> list[dict]:
    return rows(ctx.con, f"""
        WITH latest AS (
            SELECT g.backbone, g.layer, arg_max(g.run_id, r.started_at) AS run_id
            FROM gram_clusters AS g LEFT JOIN run_times AS r USING (run_id)
            GROUP BY g.backbone, g.layer ORDER BY max(r.started_at) DESC NULLS LAST LIMIT {MAX_LAYERS})
        SELECT g.backbone, g.weights_sha256, g.layer, g.cluster, list(g.channel ORDER BY g.channel) AS channels,
               any_value(g.within_correlation) AS r
        FROM gram_clusters AS g SEMI JOIN latest AS l USING (run_id, backbone, layer)
        WHERE g.cluster < {MAX_CLUSTERS}
        GROUP BY ALL ORDER BY g.backbone, g.layer, g.cluster""")


def _visualizations(ctx: PlotContext, c: dict) -> dict[str, dict]:
    """kind -> the latest visualisation of exactly the cluster's channels."""
    found = rows(ctx.con, """
        SELECT v.kind, v.path, v.value_start, v.value_end
        FROM visualizations AS v LEFT JOIN run_times AS r USING (run_id)
        WHERE v.backbone = ? AND v.layer = ? AND v.kind IN ('channels', 'channels-correlation')
          AND list_sort(v.channels) = ?::INTEGER[] AND v.path IS NOT NULL
        ORDER BY r.started_at DESC NULLS LAST, v.run_id DESC""", [c["backbone"], c["layer"], c["channels"]])
    out: dict[str, dict] = {}
    for v in found:
        out.setdefault(v["kind"], v)
    return out


def _patches(ctx: PlotContext, c: dict) -> list[dict]:
    return rows(ctx.con, f"""
        SELECT * FROM channel_exemplars
        WHERE backbone = ? AND layer = ? AND rank = 1 AND list_contains(?::INTEGER[], channel)
        ORDER BY value DESC LIMIT {PATCHES}""", [c["backbone"], c["layer"], c["channels"]])


def render(ctx: PlotContext) -> Figure:
    clusters = _clusters(ctx)
    if not clusters:
        raise NoDataError("no Gram clusters (run `texprobe gram-clusters --layer L` on a store with Grams)")
    ncols = len(KINDS) + PATCHES
    fig = new_figure(width=1.6 * ncols + 0.6, height=1.75 * len(clusters) + 0.3)
    grid = fig.add_gridspec(len(clusters), ncols)
    for i, c in enumerate(clusters):
        shown = _visualizations(ctx, c)
        for j, (kind, label) in enumerate(KINDS):
            ax = fig.add_subplot(grid[i, j])
            v = shown.get(kind)
            img = read_store_image(ctx.store, v["path"]) if v else None
            if img is not None:
                ax.imshow(img)
                ax.set_xlabel(f"{v['value_start']:.3g} → {v['value_end']:.3g}", fontsize=6)
            else:
                ax.text(0.5, 0.5, "not\nvisualised", ha="center", va="center", fontsize=6)
            ax.set_title(label, fontsize=6.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"{c['layer']} cluster {c['cluster']}\n{len(c['channels'])} ch, r={c['r']:.2f}",
                              fontsize=6.5)
        for k, p in enumerate(_patches(ctx, c)):
            ax = fig.add_subplot(grid[i, len(KINDS) + k])
            patch = _patch(p)
            if patch is not None:
                ax.imshow(patch)
            ax.set_title(f"ch {p['channel']}  {p['value']:.3g}", fontsize=6)
            ax.set_xticks([])
            ax.set_yticks([])
    return fig
