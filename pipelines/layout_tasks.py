"""A run's store layout, settled on the cluster: compaction while the run goes on, and after it.

Compaction reads and rewrites every row of a run (:mod:`analysis.storage.compaction`), so it runs as Ray
tasks, near the data, never in the driver: a driver on a laptop would otherwise pull a whole S3 run
through its own memory and network, and its memory would grow with the run.

* :class:`RunningCompaction` - while the actors work, the parts of each :data:`BATCH_UNITS` units the pool
  reports done are folded into new compacted files by one task (one at a time: the compaction record is
  rewritten by each). Only units known done are folded; they are never written again by this invocation.
  On a machine whose actors leave a core free this costs the run nothing (a 200,000-image header run: the
  4 s of compaction at its end disappear); on a full cluster the task waits for a free CPU.
* :func:`settle` - after the manifest: fold what is left (or only index the parts, ``--no-compact``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

#: Units folded per compaction task while a run goes on (64-image units: ~32,000 trials per task).
BATCH_UNITS = 512


def fold_units(store_root: str, run_id: str, tables: Sequence[str], units: Sequence[str]) -> str | None:
    """Fold ``units``' parts of ``tables`` into new compacted files; the reason when refused, else None."""
    from analysis.storage import CompactionRefused
    from pipelines.store import Store

    try:
        Store(store_root).compact(run_id, tables=list(tables), only=list(units))
    except CompactionRefused as exc:
        return str(exc)
    return None


def settle_layout(store_root: str, run_id: str, tables: Sequence[str], *, compact: bool) -> list[str]:
    """Record the run's duplicate images (:mod:`analysis.duplicates`), compact (or only index) ``run_id``'s
    ``tables``, then record its cue counts (:mod:`analysis.trial_counts`, for the parts as they are now);
    what went wrong, one line each (a compaction refused, counts not recorded), for the driver to warn."""
    from analysis.duplicates import record_duplicates
    from analysis.storage import CompactionRefused
    from analysis.trial_counts import settle_trial_counts
    from pipelines.store import Store

    store = Store(store_root)
    if "trials" in tables:
        record_duplicates(store, run_id)  # one part, replaced on a re-settle (never compacted)
    notes = []
    try:
        if compact:
            store.compact(run_id, tables=list(tables))
        else:
            store.index_parts(run_id, list(tables))
    except CompactionRefused as exc:
        notes.append(f"not compacted: {exc}")
    if "trials" in tables:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            settle_trial_counts(store, run_id)
        notes += [str(w.message) for w in caught]
    return notes


class RunningCompaction:
    """Folds the units a running pool reports done, :data:`BATCH_UNITS` at a time, in Ray tasks."""

    def __init__(self, store_root: str, run_id: str, tables: Sequence[str], *, enabled: bool) -> None:
        import ray

        self.store_root, self.run_id, self.tables, self.enabled = store_root, run_id, list(tables), enabled
        self.task = ray.remote(num_cpus=1, max_retries=0)(fold_units)
        self.done: list[str] = []  # parts done, not folded yet
        self.units = 0             # units those parts hold
        self.in_flight: Any = None
        self.refused: str | None = None
        self.batches = 0

    def unit_done(self, unit: Any, summary: dict) -> None:
        """The pool's ``on_done``: one more unit to fold (the part holding it: the unit's or its call's)."""
        if self.enabled and self.refused is None:
            part = summary.get("part", unit.unit_id)
            if not self.done or self.done[-1] != part:  # a call's units arrive together
                self.done.append(part)
            self.units += 1
            if self.units >= BATCH_UNITS and self.units % 16 == 0:  # a Ray call per 16 units, not per unit
                self.poll()

    def poll(self) -> None:
        """Collect a finished task; start the next batch when one is ready and none is running."""
        import ray

        if self.in_flight is not None:
            ready, _ = ray.wait([self.in_flight], timeout=0)
            if not ready:
                return
            self._collect()
        if self.units >= BATCH_UNITS and self.refused is None:
            batch, self.done, self.units = self.done, [], 0
            self.in_flight = self.task.remote(self.store_root, self.run_id, self.tables, batch)
            self.batches += 1

    def _collect(self) -> None:
        import ray

        try:
            self.refused = ray.get(self.in_flight) or self.refused
        except Exception as exc:  # noqa: BLE001 - the run goes on; settle() compacts what is left
            self.refused = f"{type(exc).__name__}: {exc}"
        self.in_flight = None

    def wait(self) -> None:
        """Wait for the task in flight (before the run's final layout step)."""
        if self.in_flight is not None:
            self._collect()


def settle(store: Any, run_id: str, tables: Sequence[str], *, compact: bool) -> None:
    """After the manifest, as a Ray task: compact a finished run's remaining unit parts (crash-safe; a
    refusal only warns: the parts stay readable), else record their part index."""
    import ray

    task = ray.remote(num_cpus=1, max_retries=1)(settle_layout)
    for note in ray.get(task.remote(store.root, run_id, list(dict.fromkeys(tables)), compact=compact)):
        warnings.warn(note if note.startswith("run ") else f"run {run_id} {note}", stacklevel=3)
