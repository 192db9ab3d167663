"""`texprobe import-mvh`: published per-trial CSVs into the store's `trials` table."""

from __future__ import annotations

import sys
from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from analysis.mvh_import import read_trial_csvs
from analysis.trial_counts import settle_trial_counts
from pipelines.store import Store, new_manifest, new_run_id, utc_now_iso


def run_import_mvh(paths: Sequence[str], *, store: Store) -> tuple[str, pa.Table]:
    """Read the CSVs (all of them, before writing anything), then write one part per source file."""
    run_id = new_run_id()
    table = read_trial_csvs(paths, run_id=run_id)  # a bad file fails before the run exists
    manifest = new_manifest(run_id, command="import-mvh", argv=sys.argv, config={"paths": [str(p) for p in paths]})
    store.write_manifest(run_id, manifest)
    files = sorted(set(table.column("source_file").to_pylist()))
    for i, name in enumerate(files):
        store.write_table("trials", run_id, table.filter(pc.equal(table.column("source_file"), name)),
                          part=f"import-{i:04d}")
    manifest.update(status="finished", finished_at=utc_now_iso(), counts={"trials": table.num_rows, "files": len(files)})
    store.write_manifest(run_id, manifest)
    settle_trial_counts(store, run_id)  # what the shape-bias views read (analysis.trial_counts)
    return run_id, table
