"""`texprobe gram-clusters`: a layer's channels clustered by co-activation over an image set's Grams
(:mod:`analysis.gram_clusters`), stored as a run of table ``gram_clusters``; and the lookup that turns
``gram-cluster:LAYER:K`` / ``cluster-correlation:LAYER:K`` objectives into the cluster's channels."""

from __future__ import annotations

import sys
from typing import Any

from pipelines.store import Store, new_manifest, new_run_id, utc_now_iso

__all__ = ["cluster_channels_command", "cluster_members"]


def cluster_channels_command(*, store: Store, backbone: str, layer: str, clusters: int, dataset: str | None = None,
                             weights_sha256: str | None = None) -> tuple[str, Any]:
    """Compute and store the clusters; ``(run_id, table)``. Nothing is written when there are no Grams."""
    from analysis.db import connect
    from analysis.gram_clusters import compute_clusters, gram_cluster_table

    result = compute_clusters(connect(store.root), backbone=backbone, layer=layer, k=clusters, dataset=dataset,
                              weights_sha256=weights_sha256)
    run_id = new_run_id()
    config = {"backbone": backbone, "layer": layer, "clusters": clusters, "dataset": dataset,
              "weights_sha256": result.weights_sha256}
    manifest = new_manifest(run_id, command="gram-clusters", argv=sys.argv, config=config)
    table = gram_cluster_table(result, run_id)
    store.write_table("gram_clusters", run_id, table, part="clusters")
    manifest.update(status="finished", finished_at=utc_now_iso(), counts={"gram_clusters": table.num_rows,
                                                                          "images": result.n_images})
    store.write_manifest(run_id, manifest)
    return run_id, table


def cluster_members(store_root: str, *, backbone: str, layer: str, cluster: int) -> list[int]:
    """The channels of ``cluster`` in the latest ``gram_clusters`` run of ``backbone``'s ``layer``."""
    from analysis.db import connect
    from nstcore.visualize.objectives import ObjectiveError

    con = connect(store_root)
    rows = con.execute("""
        WITH latest AS (
            SELECT c.run_id FROM gram_clusters AS c LEFT JOIN run_times AS r USING (run_id)
            WHERE c.backbone = ? AND c.layer = ?
            ORDER BY r.started_at DESC NULLS LAST, c.run_id DESC LIMIT 1)
        SELECT channel, n_clusters FROM gram_clusters WHERE run_id = (SELECT run_id FROM latest)
            AND backbone = ? AND layer = ? AND cluster = ? ORDER BY channel""",
                       [backbone, layer, backbone, layer, cluster]).fetchall()
    if not rows:
        raise ObjectiveError(f"no Gram cluster {cluster} of {backbone} layer {layer!r} in store {store_root}: run "
                             f"`texprobe gram-clusters --backbone {backbone} --layer {layer} --clusters K` first "
                             "(clusters are numbered from 0, the largest)")
    return [int(r[0]) for r in rows]
