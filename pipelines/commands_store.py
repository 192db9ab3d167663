"""Command functions for ``texprobe runs`` and ``texprobe store check`` (registered in cli.py).

Plain functions: they take the store root and an ``echo`` callable, print, and return the exit
code. They load without torch or Ray.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from analysis.storage import StorageError
from pipelines.manifests import list_runs, run_counts
from pipelines.store import Store

__all__ = ["runs", "store_check", "store_compact"]


def _summary(counts: dict) -> str:
    rows = counts.get("rows", {})
    text = " ".join(f"{t}={n}" for t, n in sorted(rows.items())) or "no rows"
    return text + (f" error_inputs={counts['error_inputs']}" if counts.get("error_inputs") else "")


def runs(*, store: str, echo: Callable[[str], None] = print, stale_after: float = 600.0) -> int:
    """List the runs, oldest first by start time, with status and counts read from the store.

    A ``running`` run whose driver has not sent a heartbeat for ``stale_after`` seconds is shown as
    ``running (stale)``: its driver probably died; ``--resume`` it. Returns 0.
    """
    st = Store(store)
    summaries = list_runs(st, stale_after=stale_after)
    if not summaries:
        echo(f"no runs in store {st.root}")
        return 0
    echo(f"{'run_id':<24} {'command':<12} {'status':<17} {'started_at':<21} counts")
    duplicates, counted, current = _view_state(st.root)
    for s in summaries:
        status = s.status + (" (stale)" if s.stale else "")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            counts = run_counts(st, s.run_id)
        damaged = " [damaged parts skipped: run `texprobe store check`]" if caught else ""
        dup = duplicates.get(s.run_id, 0)
        dup_note = f" duplicate_images={dup} (same bytes under two names in this run)" if dup else ""
        stale = (" [trial_counts stale: the views count this run's trials; `texprobe store compact --run "
                 f"{s.run_id}` recounts]" if s.run_id in counted and s.run_id not in current else "")
        echo(f"{s.run_id:<24} {s.command:<12} {status:<17} {s.started_at or '?':<21} "
             f"{_summary(counts)}{dup_note}{damaged}{stale}")
    return 0


def _view_state(root: str) -> tuple[dict[str, int], set[str], set[str]]:
    """(run_id -> images its trials hold more than once (the ``run_duplicates`` view), runs with
    ``trial_counts``, runs whose ``trial_counts`` still describe their trials); empty when unreadable."""
    from analysis.db import connect

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # damaged parts are reported per run below
            con = connect(root)
            try:
                duplicates = dict(con.execute("SELECT run_id, duplicate_images FROM run_duplicates").fetchall())
                counted = {r for (r,) in con.execute("SELECT DISTINCT run_id FROM trial_counts").fetchall()}
                current = set(con.execute("SELECT getvariable('__texprobe_summarised_runs')").fetchone()[0])
                return duplicates, counted, current
            finally:
                con.close()
    except Exception:  # noqa: BLE001 - a listing must not fail on an unreadable store: counts say the rest
        return {}, set(), set()


def store_check(*, store: str, quarantine: bool = False, echo: Callable[[str], None] = print) -> int:
    """List damaged parts and manifests; with ``quarantine`` move them under ``<store>/quarantine/``
    (keeping their relative paths; nothing is deleted).

    Returns 0 when the store is clean or everything damaged was quarantined, 1 when damage remains.
    """
    try:
        st = Store(store)
        damaged, moved = st.check(quarantine=quarantine)
    except StorageError as exc:
        echo(f"error: {exc}")
        return 2
    if not damaged:
        echo(f"store {st.root}: no damaged files")
        return 0
    for item in damaged:
        echo(f"damaged: {item.relative}: {item.reason}")
    if quarantine:
        for target in moved:
            echo(f"quarantined: {st.location.relative(target)}")
        echo(f"{len(moved)} file(s) moved under {st.location.uri('quarantine')}; nothing was deleted")
        return 0
    echo(f"{len(damaged)} damaged file(s); run `texprobe store check --quarantine` to move them aside")
    return 1


def store_compact(*, store: str, run_ids: list[str] | None = None, tables: list[str] | None = None,
                  echo: Callable[[str], None] = print) -> int:
    """Compact the given runs (default: every run) and index their parts; one line per table compacted.

    Returns 0, or 1 when a run was refused (a damaged or quarantined part: named in the message).
    """
    from analysis.schemas import SETTLE_TABLES
    from analysis.storage import CompactionRefused
    from analysis.trial_counts import settle_trial_counts

    st = Store(store)
    known = set(st.run_ids()) | {r for t in st.schemas for r in st.table_runs(t)}
    for run_id in run_ids or []:
        if run_id not in known:
            raise StorageError(f"no run {run_id!r} in store {st.root}; `texprobe runs` lists them")
    for table in tables or []:
        if table not in st.schemas:
            raise StorageError(f"unknown table {table!r}; tables: {', '.join(sorted(st.schemas))}")
        if table in SETTLE_TABLES:
            raise StorageError(f"table {table!r} holds one part per run, rewritten whole when the run settles: "
                               "there is nothing to compact (compact the run's other tables)")
    refused = 0
    for run_id in run_ids or sorted(known):
        try:
            reports = st.compact(run_id, tables=tables)
        except CompactionRefused as exc:
            echo(f"refused: {exc}")
            refused += 1
            continue
        if not tables or "trials" in tables:
            settle_trial_counts(st, run_id)  # the views' summary of the trials as they are now
        for r in reports:
            if r.parts_in:
                echo(f"{run_id} {r.table}: {r.parts_in} part(s) -> {len(r.files_out)} file(s), {r.rows} rows")
            elif r.note and r.note != "no parts":
                echo(f"{run_id} {r.table}: {r.note}")
    return 1 if refused else 0
