"""layer_style_stats and reconstruction_quality against an independent Python computation on random rows
from three runs (re-runs of some images; the latest run by manifest time wins) - issue 13 part 1."""

from __future__ import annotations

import random
import statistics
from collections import defaultdict

import pytest

from analysis import connect
from tests.views_helpers import fetch_dicts, write_manifest, write_part

RUNS = {"20990101T000000Z-aaaaaa": "2026-01-01T00:00:00Z", "20260102T000000Z-bbbbbb": "2026-01-02T00:00:00Z",
        "20260103T000000Z-cccccc": "2026-01-03T00:00:00Z"}
ORDER = {run: i for i, run in enumerate(RUNS)}  # manifest order


def _latest(rows: list[dict], key) -> list[dict]:
    best: dict = {}
    for r in rows:
        k = key(r)
        if k not in best or ORDER[r["run_id"]] > ORDER[best[k]["run_id"]]:
            best[k] = r
    return list(best.values())


def _groups_against_view(rows: list[dict], key: tuple[str, ...], con, view: str) -> list[tuple[dict, list[dict]]]:
    """The latest rows per ``key`` columns grouped per (weights_tag, layer), each group with the view's row
    for it; the view must have exactly these groups."""
    groups = defaultdict(list)
    for r in _latest(rows, lambda r: tuple(r[column] for column in key)):
        groups[(r["weights_tag"], r["layer"])].append(r)
    got = {(r["weights_tag"], r["layer"]): r for r in fetch_dicts(con, f"SELECT * FROM {view}")}
    assert set(got) == set(groups)
    return [(got[group], members) for group, members in groups.items()]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = random.Random(99)
    root = tmp_path_factory.mktemp("store")
    stats, recs = [], []
    for run in RUNS:
        write_manifest(root, run, RUNS[run], "grams")
        run_stats, run_recs = [], []
        for sha, tag in (("wa", "imagenet"), ("wr", "random")):
            for image in rng.sample(range(12), 8):
                for index, layer in enumerate(("stem", "stage1", "stage2")):
                    run_stats.append(dict(run_id=run, image_id=f"img{image}", backbone="lite0", weights_tag=tag,
                                          weights_sha256=sha, dataset="cue-conflict", layer=layer, layer_index=index,
                                          normalization="hw", channels=8 * (index + 1), trace=rng.uniform(0, 100),
                                          fro_norm=rng.uniform(0, 10), effective_rank=rng.uniform(1, 8),
                                          sparsity=rng.random(), texture_category=rng.choice(["dog", "cat"])))
                    run_recs.append(dict(run_id=run, image_id=f"img{image}", backbone="lite0", weights_tag=tag,
                                         weights_sha256=sha, dataset="cue-conflict", kind="content", layer=layer,
                                         layer_index=index, psnr=rng.uniform(5, 30), ssim=rng.random(),
                                         shape_category="cat", decision=rng.choice(["cat", "dog"])))
        write_part(root, "layer_stats", run, [{k: v for k, v in r.items() if k != "run_id"} for r in run_stats])
        write_part(root, "reconstructions", run, [{k: v for k, v in r.items() if k != "run_id"} for r in run_recs])
        stats += run_stats
        recs += run_recs
    return stats, recs, connect(root)


def test_layer_style_stats_against_python(store):
    stats, _, con = store
    key = ("weights_sha256", "image_id", "layer")
    for row, rows in _groups_against_view(stats, key, con, "layer_style_stats"):
        assert row["n_images"] == len(rows)
        for column in ("trace", "fro_norm", "effective_rank", "sparsity"):
            values = [r[column] for r in rows]
            assert row[f"{column}_mean"] == pytest.approx(statistics.fmean(values), rel=1e-12)
            assert row[f"{column}_std"] == pytest.approx(statistics.stdev(values), rel=1e-9)
        assert row["effective_rank_frac_mean"] == pytest.approx(
            statistics.fmean(r["effective_rank"] / r["channels"] for r in rows), rel=1e-12)


def test_reconstruction_quality_against_python(store):
    _, recs, con = store
    key = ("weights_sha256", "image_id", "kind", "layer")
    for row, rows in _groups_against_view(recs, key, con, "reconstruction_quality"):
        assert row["n"] == len(rows)
        assert row["psnr"] == pytest.approx(statistics.fmean(r["psnr"] for r in rows), rel=1e-12)
        assert row["ssim"] == pytest.approx(statistics.fmean(r["ssim"] for r in rows), rel=1e-12)
        assert row["shape_recognised"] == pytest.approx(sum(r["decision"] == "cat" for r in rows) / len(rows))
