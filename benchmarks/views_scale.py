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

__all__ = ["classify_run_folder", "make_store", "bare_query", "bare_category_query", "measure", "main"]


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


def bare_category_query(store: Path) -> str:
    """The reference aggregation of ``shape_bias_by_category``: the same counts per shape category."""
    return f"""
        SELECT observer, weights_sha256, dataset, shape_category,
               count(*) FILTER (WHERE conflict) AS n_conflict,
               count(*) FILTER (WHERE conflict AND decision = shape_category) AS shape_hits,
               count(*) FILTER (WHERE conflict AND decision = texture_category) AS texture_hits
        FROM read_parquet('{store}/tables/trials/*/*.parquet')
        GROUP BY observer, weights_sha256, dataset, shape_category"""


def settle(store: Path) -> float:
    """Record every run's ``trial_counts`` as a run's settle task does (once); the seconds it took."""
    from analysis.trial_counts import record_trial_counts
    from pipelines.store import Store

    st = Store(str(store))
    started = time.perf_counter()
    for run_id in st.table_runs("trials"):
        if run_id not in st.table_runs("trial_counts"):
            record_trial_counts(st, run_id)
    return time.perf_counter() - started


def _check(con: duckdb.DuckDBPyConnection, view: str, bare: str, *, by_category: bool) -> None:
    keys = ["observer", "shape_category"] if by_category else ["observer"]
    cols = con.sql(view).columns
    got = sorted(tuple(r[cols.index(k)] for k in [*keys, "n_conflict", "shape_hits", "texture_hits"])
                 for r in con.execute(view).fetchall())
    want = sorted(((r[0], r[3]) if by_category else (r[0],)) + tuple(r[-3:]) for r in con.execute(bare).fetchall())
    if got != want:
        raise AssertionError(f"{view} and the bare aggregation disagree on the counts")


def measure(store: Path, *, repeats: int = 5) -> dict:
    """Alternate the bare aggregations and the views ``repeats`` times, the views both as a settled run
    leaves them (its ``trial_counts``) and counted from the trials (``summaries=False``: a run in progress,
    or a store written before trial_counts); medians and their ratios (after a warm-up of each)."""
    settle_s = settle(store)
    settled, raw = connect(store), connect(store, summaries=False)
    bare, bare_cat = bare_query(store), bare_category_query(store)
    view, view_cat = "SELECT * FROM shape_bias", "SELECT * FROM shape_bias_by_category"
    no_boot = "SELECT * EXCLUDE (boot_low, boot_high) FROM shape_bias"
    for con in (settled, raw):
        _check(con, view, bare, by_category=False)
        _check(con, view_cat, bare_cat, by_category=True)
    runs = {"bare": (settled, bare), "bare_by_category": (settled, bare_cat),
            "shape_bias": (settled, view), "shape_bias_by_category": (settled, view_cat),
            "shape_bias_from_trials": (raw, view), "shape_bias_by_category_from_trials": (raw, view_cat),
            "shape_bias_no_bootstrap_from_trials": (raw, no_boot)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for con, query in runs.values():
        _time(con, query)
    for _ in range(repeats):
        for name, (con, query) in runs.items():
            times[name].append(_time(con, query)[0])
    settled.close()
    raw.close()
    med = {name: statistics.median(t) for name, t in times.items()}
    ratios = {name: med[name] / med["bare_by_category" if "by_category" in name else "bare"]
              for name in med if not name.startswith("bare")}
    return {"seconds": times, "median_s": med, "ratio_to_bare": ratios, "settle_s": settle_s,
            # the names earlier results used
            "bare_median_s": med["bare"], "view_median_s": med["shape_bias"], "ratio": ratios["shape_bias"]}


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
    med = result["median_s"]
    print(f"{result['n_rows']:,} trials (settled in {result['settle_s']:.2f} s): bare {med['bare']:.3f} s, "
          f"by category {med['bare_by_category']:.3f} s")
    for name, ratio in result["ratio_to_bare"].items():
        print(f"  {name:40s} {med[name]:.3f} s  {ratio:.2f}x bare")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
