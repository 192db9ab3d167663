"""Gram clusters (issue 22 part 2): channels that co-activate across an image set, from the stored Grams.

Reference: synthetic feature maps whose channels 0-9 follow one random pattern and 10-31 another (each
with its own noise); the normalised Gram G_ij / sqrt(G_ii G_jj) is computed here in float64 straight from
the features (the definition), independently of how the store keeps Grams (upper triangles, float32)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.db import connect
from tests.views_helpers import write_manifest, write_part

REPO = Path(__file__).resolve().parents[1]
C, M, IMAGES = 32, 400, 6


def _features(rng: np.random.Generator) -> np.ndarray:
    a, b = rng.random(M), rng.random(M)
    f = np.empty((C, M))
    f[:10] = a + 0.1 * rng.random((10, M))
    f[10:] = b + 0.1 * rng.random((22, M))
    return f


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    rows, reference = [], np.zeros((C, C))
    for i in range(IMAGES):
        f = _features(rng)
        g = f @ f.T / M
        d = np.sqrt(np.diag(g))
        reference += g / np.outer(d, d) / IMAGES
        rows.append(dict(image_id=f"{i:064x}", image=f"img{i}.png", backbone="efficientnet_lite0", layer="stem",
                         weights_sha256="w", weights_tag="imagenet", dataset="textures", channels=C,
                         gram=g[np.triu_indices(C)].astype(np.float32).tolist()))
    write_part(tmp_path, "grams", "g1", rows)
    write_manifest(tmp_path, "g1", "2026-01-01T00:00:00Z", command="grams")
    return tmp_path, reference


def test_clusters_are_the_co_activating_channels_and_objectives_resolve_to_them(store):
    from pipelines.ops.visualize import visualize_config

    root, reference = store
    out = subprocess.run([sys.executable, "-m", "pipelines.cli", "gram-clusters", "--backbone", "efficientnet_lite0",
                          "--layer", "stem", "--clusters", "2", "--store", str(root)], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = connect(root).execute("SELECT cluster, channel, cluster_size, within_correlation, n_images FROM gram_clusters "
                                 "ORDER BY channel").fetchall()
    assert [r[0] for r in rows] == [1] * 10 + [0] * 22  # cluster 0 is the larger one
    assert {r[4] for r in rows} == {IMAGES}
    big = np.arange(10, 32)
    expected = (reference[np.ix_(big, big)].sum() - 22) / (22 * 21)
    assert rows[10][3] == pytest.approx(expected, abs=1e-5)  # float32 Grams vs the float64 definition
    config = visualize_config(backbone="efficientnet_lite0", store_root=str(root),
                              objectives=["gram-cluster:stem:1", "cluster-correlation:stem:1"])
    assert config.objectives == ("channels:stem:" + ",".join(map(str, range(10))),
                                 "channels-correlation:stem:" + ",".join(map(str, range(10))))


def test_too_many_clusters_or_no_grams_is_one_line(store, tmp_path):
    root, _ = store
    for args, message in ((["--layer", "stem", "--clusters", "40"], "has 32 channels; choose 1..32"),
                          (["--layer", "stage1", "--clusters", "2"], "no Grams of efficientnet_lite0 layer 'stage1'")):
        out = subprocess.run([sys.executable, "-m", "pipelines.cli", "gram-clusters", "--backbone",
                              "efficientnet_lite0", *args, "--store", str(root)], capture_output=True, text=True,
                             cwd=REPO, timeout=300)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
