"""A settled run's cue counts (table ``trial_counts``): what the shape-bias views read instead of its trials.

``shape_bias`` and ``shape_bias_by_category`` need, per observer x weights x dataset, counts per texture
source (the bootstrap's clusters) and per shape category, plus whether a group was written by more than one
run (then it is deduplicated trial by trial). Counting that from 10 M trials costs every query a full
scan (3.6x a bare aggregation, issue 19); a run's counts do not change once it has settled, so the settle
task (:mod:`pipelines.layout_tasks`, and ``texprobe store compact``) stores them once, at the finest grain
the views aggregate: (run, CSV file, observer, weights, dataset, texture source, shape category), computed
by the views' own SQL (``trial_count_rows``, ``analysis/sql/05_trial_outcomes.sql``) over that run's parts.

Each run's rows carry the fingerprint of the trials parts they counted (:func:`analysis.storage.
parts_fingerprint`: names, sizes, mtimes, rows). :func:`analysis.db.connect` uses them only while the run's
readable parts still have that fingerprint; a part added by ``--resume``, rewritten, quarantined or found
damaged makes them stale, and that run is counted from its trials again until it settles anew. The views
give the same result either way (``tests/test_trial_counts.py`` compares them in every such case). This is a
materialised aggregate kept by hand because DuckDB has no materialised views over Parquet.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

__all__ = ["count_trials", "record_trial_counts", "settle_trial_counts"]


def count_trials(store: Any, run_id: str) -> pa.Table:
    """``run_id``'s ``trial_counts`` rows, from its readable trials parts as they are now."""
    from analysis import storage
    from analysis.db import connect
    from analysis.schemas import TRIAL_COUNTS

    footers = storage.readable_parts(store.location, "trials", run_id=run_id)
    fingerprint = storage.parts_fingerprint(footers)
    con = connect(store.root, run_id=run_id, summaries=False)
    try:
        counted = con.sql("SELECT * FROM trial_count_rows ORDER BY ALL").to_arrow_table()
    finally:
        con.close()
    counted = counted.append_column("parts_fingerprint", pa.array([fingerprint] * counted.num_rows, pa.string()))
    return counted.select(TRIAL_COUNTS.names).cast(TRIAL_COUNTS)


def record_trial_counts(store: Any, run_id: str) -> int:
    """Count ``run_id``'s trials and store them (one part, replaced when the run settles again); how many rows."""
    if run_id not in store.table_runs("trials"):
        return 0
    counted = count_trials(store, run_id)
    store.write_table("trial_counts", run_id, counted, part="run")
    return counted.num_rows


def settle_trial_counts(store: Any, run_id: str) -> int | None:
    """:func:`record_trial_counts` where a run settles (the settle task, ``import-mvh``, ``store compact``):
    the counts only spare the views a scan, so a failure to record them warns, naming the run and the cause,
    and the run's trials are counted directly until it settles again; how many rows, or None on failure."""
    import warnings

    try:
        return record_trial_counts(store, run_id)
    except Exception as exc:  # noqa: BLE001 - an accelerator failing must not fail a run whose rows are written
        text = str(exc).strip().splitlines()
        warnings.warn(f"run {run_id}: trial_counts not recorded ({type(exc).__name__}: {text[0] if text else ''}); "
                      "the views count its trials directly", stacklevel=2)
        return None
