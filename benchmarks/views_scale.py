"""Canned views at scale (issue 8 part 5): ``SELECT * FROM shape_bias`` against a bare DuckDB aggregation
of the same rows, side by side, alternating, in one process.

The store: ``n_observers`` x ``n_images`` trials in ONE run (one part per observer, like one classify unit
each), every column of the trials schema filled as a classify run fills it (``probs16`` 16 floats, ``top5``,
ranks, sha256 image ids, weights tag + sha256, ``texture_source``), 1/16 of the images without a cue
conflict, plus the run manifest.

* Bare (the reference): ``GROUP BY observer, weights_sha256, dataset`` with the three cue-conflict counts,
  straight from ``read_parquet`` - no deduplication, no interval.
* Ours: ``SELECT * FROM shape_bias`` through :func:`analysis.connect`: identity columns, deduplication
  per (observer, weights_sha256, dataset, image) (skipped for groups written by one run), Wilson interval,
  cluster bootstrap over texture sources, both frac_correct denominators, the pooled humans row; and
  the same without the bootstrap columns (``SELECT * EXCLUDE (boot_low, boot_high)``), whose cost is
  1,000 x K draws per observer row (K texture sources; 800 here).

Both are checked to give the same counts first. The 10 M figure in BENCHMARKS.md:
``python -m benchmarks.views_scale --observers 100 --images 100000``; the test suite runs a small size.

    python -m benchmarks.views_scale [--observers 20] [--images 5000] [--repeats 5] [--out results.json]
                                     [--store DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from analysis import CATEGORIES, connect

__all__ = ["classify_run_folder", "make_store", "bare_query", "measure", "main"]


def classify_run_folder(root: Path, run_id: str) -> Path:
    """The trials folder of a finished classify run ``run_id`` under ``root`` (with its manifest), created."""
    folder = root / "tables" / "trials" / f"run_id={run_id}"
    folder.mkdir(parents=True, exist_ok=True)
    (root / "runs").mkdir(parents=True, exist_ok=True)
    (root / "runs" / f"{run_id}.json").write_text(json.dumps(
        {"run_id": run_id, "command": "classify", "status": "finished", "started_at": "2026-01-01T00:00:00Z"}))
    return folder


def make_store(root: Path, *, n_observers: int, n_images: int, run_id: str = "20260101T000000Z-bench0") -> Path:
    """Write the benchmark store under ``root`` (see module doc) and return it."""
    folder = classify_run_folder(root, run_id)
    cats = "[" + ", ".join(f"'{c}'" for c in CATEGORIES) + "]"
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    for o in range(n_observers):
        con.execute(f"""
            COPY (
                SELECT '{run_id}' AS run_id, 'texprobe' AS source, NULL::VARCHAR AS source_file,
                       'cue-conflict' AS dataset, 'net{o:03d}' AS observer, 'model' AS observer_kind,
                       {cats}[1 + i % 16] || (i // 256) || '-' || {cats}[1 + (i // 16) % 16] || (i // 16 % 50)
                           || '.png' AS image,
                       sha256(CAST(i AS VARCHAR)) AS image_id,
                       {cats}[1 + i % 16] AS shape_category, {cats}[1 + (i // 16) % 16] AS texture_category,
                       {cats}[1 + (i // 16) % 16] || (i // 16 % 50) AS texture_source,
                       i % 16 <> (i // 16) % 16 AS conflict,
                       {cats}[1 + CAST(hash({o}, i) % 16 AS INTEGER)] AS decision,
                       [CAST(random() AS FLOAT) FOR x IN range(16)] AS probs16,
                       [CAST(hash({o}, i, x) % 1000 AS INTEGER) FOR x IN range(5)] AS top5,
                       CAST(hash({o}, i) % 1000 AS INTEGER) AS shape_rank,
                       CAST(hash(i, {o}) % 1000 AS INTEGER) AS texture_rank,
                       'imagenet' AS weights_tag, sha256('w{o}') AS weights_sha256,
                       NULL::INTEGER AS session, NULL::INTEGER AS trial, NULL::DOUBLE AS rt,
                       'unit-' || {o} AS unit_id
                FROM range({n_images}) AS r(i)
            ) TO '{folder}/net{o:03d}.parquet' (FORMAT parquet)""")
    con.close()
    return root


def bare_query(store: Path) -> str:
    """The reference aggregation over the same rows."""
    return f"""
        SELECT observer, weights_sha256, dataset,
               count(*) FILTER (WHERE conflict) AS n_conflict,
               count(*) FILTER (WHERE conflict AND decision = shape_category) AS shape_hits,
               count(*) FILTER (WHERE conflict AND decision = texture_category) AS texture_hits
        FROM read_parquet('{store}/tables/trials/*/*.parquet')
        GROUP BY observer, weights_sha256, dataset"""


def _time(con: duckdb.DuckDBPyConnection, query: str) -> tuple[float, list]:
    start = time.perf_counter()
    rows = con.execute(query).fetchall()
    return time.perf_counter() - start, rows


def measure(store: Path, *, repeats: int = 5) -> dict:
    """Alternate bare and view ``repeats`` times; medians and their ratio (after a warm-up of each)."""
    con = connect(store)
    bare, view = bare_query(store), "SELECT * FROM shape_bias"
    _, bare_rows = _time(con, bare)
    _, view_rows = _time(con, view)
    cols = con.sql(view).columns
    got = sorted((r[cols.index("observer")], r[cols.index("n_conflict")], r[cols.index("shape_hits")],
                  r[cols.index("texture_hits")]) for r in view_rows)
    want = sorted((r[0], r[3], r[4], r[5]) for r in bare_rows)
    if got != want:
        raise AssertionError("shape_bias and the bare aggregation disagree on the counts")
    no_boot = "SELECT * EXCLUDE (boot_low, boot_high) FROM shape_bias"
    _time(con, no_boot)
    t_bare, t_view, t_no_boot = [], [], []
    for _ in range(repeats):
        t_bare.append(_time(con, bare)[0])
        t_view.append(_time(con, view)[0])
        t_no_boot.append(_time(con, no_boot)[0])
    con.close()
    med_bare, med_view, med_no_boot = (statistics.median(t) for t in (t_bare, t_view, t_no_boot))
    return {"bare_s": t_bare, "view_s": t_view, "view_no_bootstrap_s": t_no_boot, "bare_median_s": med_bare,
            "view_median_s": med_view, "view_no_bootstrap_median_s": med_no_boot, "ratio": med_view / med_bare,
            "ratio_no_bootstrap": med_no_boot / med_bare}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observers", type=int, default=20)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    parser.add_argument("--store", type=Path, default=None,
                        help="reuse (or create once) the benchmark store here instead of a temporary one")
    args = parser.parse_args(argv)
    if args.store is not None:
        if not (args.store / "tables" / "trials").is_dir():
            make_store(args.store, n_observers=args.observers, n_images=args.images)
        result = measure(args.store, repeats=args.repeats)
    else:
        with tempfile.TemporaryDirectory(prefix="texprobe-views-scale-") as tmp:
            store = make_store(Path(tmp), n_observers=args.observers, n_images=args.images)
            result = measure(store, repeats=args.repeats)
    result.update(n_observers=args.observers, n_images=args.images, n_rows=args.observers * args.images,
                  duckdb=duckdb.__version__, machine=platform.machine(), python=platform.python_version())
    print(f"{result['n_rows']:,} trials: bare {result['bare_median_s']:.3f} s, shape_bias "
          f"{result['view_median_s']:.3f} s (ratio {result['ratio']:.2f}), without the bootstrap columns "
          f"{result['view_no_bootstrap_median_s']:.3f} s (ratio {result['ratio_no_bootstrap']:.2f})")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
