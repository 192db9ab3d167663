"""The store at Stylized-ImageNet scale (issue 19): query cost against the number of parts, before and after
compaction, side by side in one process.

1.28 M trial rows of ONE classify run are written the way classify writes them (one Parquet part per work
unit through the store's own encoder: zstd, page checksums, table metadata; every trials column filled,
``texture_source`` set, a finished run manifest) as 20, 2,000 and 20,000 parts. For each store:

* ``plain``: ``analysis.connect`` + ``SELECT * FROM shape_bias`` as an older store is read (no part index:
  every footer opened);
* ``index only``: the same after the part index is recorded, the views counting from the trials
  (``summaries=False``: a run still in progress);
* ``settled``: what a finished ``--no-compact`` run leaves: the part index and the run's ``trial_counts``;
* ``compacted``: what every finished run leaves by default (compacted files, index, ``trial_counts``);
* ``bare``: a bare DuckDB aggregation of the same counts over a ``read_parquet`` glob (the floor);
* bytes on disk before and after compaction, and the compaction's own time.

    python -m benchmarks.store_scale [--rows 1280000] [--parts 20,2000,20000] [--out results.json]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from benchmarks._results import write_results
from benchmarks.views_scale import classify_run_folder

from analysis import CATEGORIES, connect
from analysis.schemas import TABLES
from analysis.storage.tables import encode_part
from analysis.storage.validate import conform_table

__all__ = ["make_store", "measure_store", "main"]

RUN = "20260101T000000Z-bench0"


def make_store(root: Path, *, n_rows: int, n_parts: int) -> Path:
    """``n_rows`` trials of one run as ``n_parts`` unit parts under ``root`` (see the module doc)."""
    folder = classify_run_folder(root, RUN)
    cats = "[" + ", ".join(f"'{c}'" for c in CATEGORIES) + "]"
    con = duckdb.connect()
    rows = con.sql(f"""
        SELECT 'texprobe' AS source, 'cue-conflict' AS dataset, 'efficientnet_lite0' AS observer,
               'model' AS observer_kind,
               {cats}[1 + i % 16] || (i // 256) || '-' || {cats}[1 + (i // 16) % 16] || (i // 16 % 50) || '.png'
                   AS image,
               sha256(CAST(i AS VARCHAR)) AS image_id, {cats}[1 + i % 16] AS shape_category,
               {cats}[1 + (i // 16) % 16] AS texture_category, {cats}[1 + (i // 16) % 16] || (i // 16 % 50)
                   AS texture_source,
               i % 16 <> (i // 16) % 16 AS conflict, {cats}[1 + CAST(hash(i) % 16 AS INTEGER)] AS decision,
               [CAST(random() AS FLOAT) FOR x IN range(16)] AS probs16,
               [CAST(hash(i, x) % 1000 AS INTEGER) FOR x IN range(5)] AS top5,
               CAST(hash(i) % 1000 AS INTEGER) + 1 AS shape_rank, CAST(hash(i, 7) % 1000 AS INTEGER) + 1 AS texture_rank,
               'imagenet' AS weights_tag, sha256('weights') AS weights_sha256,
               'unit-' || lpad(CAST(i * {n_parts} // {n_rows} AS VARCHAR), 6, '0') AS unit_id
        FROM range({n_rows}) AS r(i)""").to_arrow_table()
    con.close()
    table = conform_table("trials", rows, TABLES["trials"], run_id=RUN)
    per = n_rows // n_parts
    for p in range(n_parts):
        (folder / f"unit-{p:06d}.parquet").write_bytes(encode_part("trials", table.slice(p * per, per)))
    return root


def _bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "tables").rglob("*") if p.is_file())


def _connect_and_query(root: Path, *, summaries: bool = True) -> tuple[float, float, list]:
    start = time.perf_counter()
    con = connect(root, summaries=summaries)
    connected = time.perf_counter()
    rows = con.execute("SELECT observer, n_conflict, shape_hits, texture_hits FROM shape_bias").fetchall()
    done = time.perf_counter()
    con.close()
    return connected - start, done - connected, rows


def _bare(root: Path) -> tuple[float, list]:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    start = time.perf_counter()
    rows = con.execute(f"""
        SELECT observer, count(*) FILTER (WHERE conflict),
               count(*) FILTER (WHERE conflict AND decision = shape_category),
               count(*) FILTER (WHERE conflict AND decision = texture_category)
        FROM read_parquet('{root}/tables/trials/*/*.parquet') GROUP BY observer""").fetchall()
    seconds = time.perf_counter() - start
    con.close()
    return seconds, rows


def _best(fn, repeats: int):
    """The fastest of ``repeats`` calls of ``fn`` (which returns its seconds first, its rows last)."""
    return min((fn() for _ in range(repeats)), key=lambda result: sum(result[:-1]))


def measure_store(root: Path, *, repeats: int = 2) -> dict:
    """Plain, indexed and compacted connect + shape_bias of the store at ``root``, and the bare floor."""
    from pipelines.layout_tasks import settle_layout
    from pipelines.store import Store

    out: dict = {"bytes_before": _bytes(root)}
    bare_s, bare_rows = _best(lambda: _bare(root), repeats)
    c, q, rows = _best(lambda: _connect_and_query(root), repeats)
    if sorted(tuple(r) for r in rows) != sorted(tuple(r) for r in bare_rows):
        raise AssertionError("shape_bias and the bare aggregation disagree on the counts")
    out.update(bare_s=bare_s, plain_connect_s=c, plain_query_s=q)
    store = Store(str(root))
    start = time.perf_counter()
    store.index_parts(RUN, ["trials"])
    out["index_s"] = time.perf_counter() - start
    c, q, _ = _best(lambda: _connect_and_query(root, summaries=False), repeats)
    out.update(indexed_trials_connect_s=c, indexed_trials_query_s=q)
    start = time.perf_counter()
    settle_layout(str(root), RUN, ["trials"], compact=False)  # what a --no-compact run leaves: index + counts
    out["settle_s"] = time.perf_counter() - start
    c, q, rows = _best(lambda: _connect_and_query(root), repeats)
    if sorted(tuple(r) for r in rows) != sorted(tuple(r) for r in bare_rows):
        raise AssertionError("shape_bias from the run's trial_counts disagrees with the bare aggregation")
    out.update(indexed_connect_s=c, indexed_query_s=q)
    start = time.perf_counter()
    settle_layout(str(root), RUN, ["trials"], compact=True)  # what a finished run leaves by default
    out.update(compact_s=time.perf_counter() - start, files_after=len(store.footers("trials", RUN)),
               bytes_after=_bytes(root))
    c, q, rows = _best(lambda: _connect_and_query(root), repeats)
    if sorted(tuple(r) for r in rows) != sorted(tuple(r) for r in bare_rows):
        raise AssertionError("shape_bias changed with compaction")
    out.update(compacted_connect_s=c, compacted_query_s=q, bare_compacted_s=_best(lambda: _bare(root), repeats)[0])
    for kind in ("plain", "indexed_trials", "indexed", "compacted"):
        out[f"{kind}_total_s"] = out[f"{kind}_connect_s"] + out[f"{kind}_query_s"]
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_280_000)
    parser.add_argument("--parts", default="20,2000,20000", help="comma-separated part counts")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result: dict = {"rows": args.rows, "stores": {}, "duckdb": duckdb.__version__, "machine": platform.machine(),
                    "python": platform.python_version()}
    with tempfile.TemporaryDirectory(prefix="texprobe-store-scale-") as tmp:
        for n_parts in (int(p) for p in args.parts.split(",")):
            root = make_store(Path(tmp) / f"p{n_parts}", n_rows=args.rows, n_parts=n_parts)
            result["stores"][n_parts] = measure_store(root, repeats=args.repeats)
            shutil.rmtree(root)
    first = result["stores"][min(result["stores"])]
    print(f"{args.rows:,} trials of one run; connect + SELECT * FROM shape_bias (s), ratio to the "
          f"{min(result['stores']):,}-part store")
    print(f"{'parts':>7} {'plain':>12} {'index only':>12} {'settled':>12} {'compacted':>12} {'bare scan':>10} "
          f"{'compact s':>10} {'MB before':>10} {'MB after':>9}")
    for n_parts, r in result["stores"].items():
        cells = [f"{r[f'{k}_total_s']:.2f} ({r[f'{k}_total_s'] / first['plain_total_s']:.1f}x)"
                 for k in ("plain", "indexed_trials", "indexed", "compacted")]
        print(f"{n_parts:>7,} {cells[0]:>12} {cells[1]:>12} {cells[2]:>12} {cells[3]:>12} {r['bare_s']:>10.2f} "
              f"{r['compact_s']:>10.1f} {r['bytes_before'] / 1e6:>10.1f} {r['bytes_after'] / 1e6:>9.1f}")
    if args.out:
        write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
