"""Identical image bytes under two names within one run (issue 20 part 4): found once, when the run settles.

Two files with the same bytes are one stimulus: the views count each ``image_id`` once per observer and run.
Finding them at query time costs every query a distinct count over all trials (it tripled `shape_bias` at
2 M rows); finding them once per run costs one aggregation over that run's trials, which the settle task
(:mod:`pipelines.layout_tasks`) runs after compaction and stores as the run's ``duplicate_images`` rows.
The views then send only the (observer, weights, dataset) groups listed there through the deduplicating
window (``analysis/sql/05_trial_outcomes.sql``); the trials keep every name.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

__all__ = ["find_duplicates", "record_duplicates"]


def find_duplicates(store: Any, run_id: str) -> pa.Table:
    """The run's images held by more than one trial of one (observer, weights_sha256, dataset), as
    ``duplicate_images`` rows. Streamed through DuckDB over an Arrow dataset of the run's trials parts
    (works for S3 stores without a DuckDB extension; memory holds the groups, not the rows)."""
    import duckdb
    import pyarrow.dataset as pads

    from analysis.schemas import DUPLICATE_IMAGES
    from analysis.storage.run_parts import read_run_folder

    folder = read_run_folder(store.location, store.table_dir("trials", run_id), with_index=False)
    paths = [f"{folder.directory}/{item.name}" for item in folder.visible]
    if not paths:
        return DUPLICATE_IMAGES.empty_table()
    trials = pads.dataset(paths, filesystem=store.fs, format="parquet")
    columns = ["observer", "weights_sha256", "dataset", "image_id", "image"]
    present = [c for c in columns if c in trials.schema.names]
    if len(present) < len(columns):
        return DUPLICATE_IMAGES.empty_table()
    con = duckdb.connect()
    con.register("run_trials", trials.scanner(columns=columns))
    found = con.sql("""
        SELECT observer, weights_sha256, dataset, image_id, count(*) AS n_trials, list(image ORDER BY image) AS images
        FROM run_trials WHERE image_id IS NOT NULL
        GROUP BY observer, weights_sha256, dataset, image_id HAVING count(*) > 1
        ORDER BY observer, weights_sha256, dataset, image_id""").to_arrow_table()
    con.close()
    rows = found.append_column("run_id", pa.array([run_id] * found.num_rows, pa.string()))
    return rows.select(DUPLICATE_IMAGES.names).cast(DUPLICATE_IMAGES)


def record_duplicates(store: Any, run_id: str) -> int:
    """Find the run's duplicates and store them (one part, replaced when the run settles again); how many."""
    if run_id not in store.table_runs("trials"):
        return 0
    found = find_duplicates(store, run_id)
    if found.num_rows or run_id in store.table_runs("duplicate_images"):
        store.write_table("duplicate_images", run_id, found, part="run")
    return found.num_rows
