"""Gram clusters (issue 22 part 2): channels of a layer that fire together across a texture set.

From the ``grams`` rows of an image set (one Gram G = F Fᵀ / M per image and layer, Gatys et al. 2015),
each image's Gram is normalised to a correlation, ``R_ij = G_ij / sqrt(G_ii G_jj)`` (the uncentred cosine of
channels i and j over positions: scale-free, so loud channels do not dominate), and the correlations are
averaged over the images. Channels are then clustered by average-linkage agglomerative clustering of the
distance ``1 - R̄`` (scipy.cluster.hierarchy; Sokal & Michener's UPGMA), cut into ``k`` clusters. A cluster
is what ``gram-cluster:LAYER:K`` (mean activation of its channels) and ``cluster-correlation:LAYER:K`` (mean
normalised Gram entry among its channels) visualise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["ClusterResult", "cluster_channels", "mean_correlation", "gram_cluster_table", "upper_to_full"]

METHOD = "average-linkage(1 - mean normalised Gram)"


def upper_to_full(upper: np.ndarray, channels: int) -> np.ndarray:
    """A Gram's stored upper triangle (row-major, diagonal included) -> the symmetric ``[C, C]`` matrix."""
    full = np.zeros((channels, channels), dtype=np.float64)
    rows, cols = np.triu_indices(channels)
    full[rows, cols] = upper
    full[cols, rows] = upper
    return full


def mean_correlation(grams: list[np.ndarray], channels: int) -> np.ndarray:
    """The mean over images of each Gram normalised to ``G_ij / sqrt(G_ii G_jj)`` (a silent channel's
    row is 0, its diagonal 1)."""
    total = np.zeros((channels, channels), dtype=np.float64)
    for upper in grams:
        g = upper_to_full(np.asarray(upper, dtype=np.float64), channels)
        d = np.sqrt(np.clip(np.diag(g), 0.0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(np.outer(d, d) > 0, g / np.outer(d, d), 0.0)
        np.fill_diagonal(r, 1.0)
        total += r
    return total / max(1, len(grams))


def cluster_channels(correlation: np.ndarray, k: int) -> np.ndarray:
    """Cluster labels ``0..k-1`` per channel (cluster 0 the largest, ties by lowest channel)."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    channels = correlation.shape[0]
    if not 1 <= k <= channels:
        raise ValueError(f"{k} clusters of {channels} channels: choose 1..{channels}")
    distance = np.clip(1.0 - (correlation + correlation.T) / 2.0, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    labels = fcluster(linkage(squareform(distance, checks=False), method="average"), t=k, criterion="maxclust")
    order = sorted(set(labels), key=lambda c: (-int((labels == c).sum()), int(np.flatnonzero(labels == c)[0])))
    return np.array([order.index(c) for c in labels], dtype=np.int32)


@dataclass(frozen=True)
class ClusterResult:
    backbone: str
    weights_sha256: str | None
    layer: str
    dataset: str | None
    n_images: int
    labels: np.ndarray
    correlation: np.ndarray


def compute_clusters(con: Any, *, backbone: str, layer: str, k: int, dataset: str | None = None,
                     weights_sha256: str | None = None) -> ClusterResult:
    """Cluster ``layer``'s channels from the Grams in the store behind DuckDB connection ``con`` (the
    latest run per image, as every view); a clear error when there are none."""
    from analysis.errors import AnalysisError

    where = ["backbone = ?", "layer = ?"]
    params: list[Any] = [backbone, layer]
    for column, val in (("dataset", dataset), ("weights_sha256", weights_sha256)):
        if val is not None:
            where.append(f"{column} = ?")
            params.append(val)
    rows = con.execute(f"""
        SELECT weights_sha256, channels, gram FROM (
            SELECT g.*, row_number() OVER (PARTITION BY weights_sha256, dataset, image_id
                                           ORDER BY r.started_at DESC NULLS LAST, g.run_id DESC) AS _rank
            FROM grams AS g LEFT JOIN run_times AS r USING (run_id) WHERE {' AND '.join(where)})
        WHERE _rank = 1""", params).fetchall()
    if not rows:
        raise AnalysisError(f"no Grams of {backbone} layer {layer!r}" + (f" in dataset {dataset!r}" if dataset else "")
                            + ": run `texprobe grams IMAGES --backbone ... --layers ...` first")
    shas = sorted({r[0] for r in rows}, key=str)
    if len(shas) > 1:
        raise AnalysisError(f"Grams of {backbone} {layer!r} from {len(shas)} weights ({', '.join(map(str, shas))}): "
                            "pick one with --weights-sha256")
    channels = int(rows[0][1])
    if not 1 <= k <= channels:
        raise AnalysisError(f"--clusters {k}: {backbone} {layer!r} has {channels} channels; choose 1..{channels}")
    corr = mean_correlation([np.asarray(r[2], dtype=np.float64) for r in rows], channels)
    return ClusterResult(backbone, shas[0], layer, dataset, len(rows), cluster_channels(corr, k), corr)


def gram_cluster_table(result: ClusterResult, run_id: str) -> pa.Table:
    """``gram_clusters`` rows: one per channel, with its cluster and the cluster's mean within-correlation."""
    from analysis.schemas import GRAM_CLUSTERS

    rows = []
    k = int(result.labels.max()) + 1
    for cluster in range(k):
        members = np.flatnonzero(result.labels == cluster)
        block = result.correlation[np.ix_(members, members)]
        within = float((block.sum() - np.trace(block)) / (len(members) * (len(members) - 1))) if len(members) > 1 else None
        for channel in members:
            rows.append({"run_id": run_id, "backbone": result.backbone, "weights_sha256": result.weights_sha256,
                         "layer": result.layer, "dataset": result.dataset, "method": METHOD, "n_clusters": k,
                         "cluster": cluster, "channel": int(channel), "cluster_size": len(members),
                         "within_correlation": within, "n_images": result.n_images})
    return pa.Table.from_pylist(rows, schema=GRAM_CLUSTERS)
