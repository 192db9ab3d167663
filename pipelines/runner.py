"""``run_operation``: any registered operation, planned, run on Ray, recorded, exactly once.

Life cycle (the same for every probe):

1. ``validate`` the config in the driver (weights, layers) - before Ray starts;
2. plan the units, or for ``--resume`` take EXACTLY the plan stored in the run's manifest (inputs found
   now but not planned then are not mixed in: they are reported, for a new run);
3. join/start Ray, check the requested resources against the nodes, run the units not yet done on an
   :class:`~pipelines.pool.ActorPool` (dead actors replaced, units retried, watchdogs);
4. a unit that failed after its retries gets one ``errors`` row per input (stage ``unit``) - replaced
   by the unit's own errors part if a later resume succeeds;
5. ``finish`` (e.g. the discriminability table), then the manifest: counts computed from the store
   (every invocation of the run together), status ``finished`` or ``partial`` (units missing).

Ray is touched only here and in :mod:`pipelines.ray_runtime` (cluster) and :mod:`pipelines.pool` (actors).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from pipelines.call_plan import CallPlan
from pipelines.errors import ResumeError
from pipelines.ops import get_operation
from pipelines.ops.base import Operation, WorkUnit, error_row
from pipelines.layout_tasks import RunningCompaction, settle
from pipelines.ray_runtime import Placement
from pipelines.store import Store, new_run_id, utc_now_iso


@dataclass
class RunReport:
    """What a run did; ``status`` is 'finished' or 'partial' (``missing`` lists the failed units)."""

    run_id: str
    command: str
    status: str
    n_units: int
    n_resumed: int
    counts: dict
    missing: list[dict]
    actors: list[dict]
    plan: str
    seconds: float
    new_inputs: list[str] = field(default_factory=list)
    n_new_inputs: int = 0
    extra: dict = field(default_factory=dict)


def config_json(config: Any) -> dict:
    """The config as stored in the manifest (JSON types: tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def count_rows(store: Store, table: str, run_id: str) -> int:
    """Rows of ``table`` written by ``run_id``, from the Parquet footers (not the data), one footer at a
    time (a dataset over thousands of parts keeps every footer and its thread pools' memory: +50 MB at
    1,500 parts); an object store's footers are fetched by 8 threads."""
    import pyarrow.parquet as pq

    folder = store.table_dir(table, run_id)
    paths = [f"{folder}/{p}.parquet" for p in sorted(store.parts(table, run_id))]

    def rows(path: str) -> int:
        with store.fs.open_input_file(path) as f:
            return pq.read_metadata(f).num_rows

    if store.location.local:
        return sum(map(rows, paths))
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        return sum(pool.map(rows, paths))


def _differences(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}={old.get(k)!r} (now {new.get(k)!r})" for k in keys if old.get(k) != new.get(k)]


#: How many of the inputs found now but not planned a resume lists by name (all are counted).
NEW_INPUTS_LISTED = 1000


def _resume_plan(op: Operation, config: Any, store: Store, run_id: str) -> tuple[dict, list[str], int]:
    """The manifest, and the inputs found now that the stored plan does not hold (the first
    :data:`NEW_INPUTS_LISTED` by name, and how many). Streams the plan and the inputs (bounded memory)."""
    from pipelines.imagesets import ImageSetError
    from pipelines.keyset import SpillSet
    from pipelines.manifests import UnknownRunError, list_runs

    if not store.has_run(run_id):  # refused before anything is written
        raise UnknownRunError(run_id, store.root, [s.run_id for s in list_runs(store)])
    manifest = store.read_manifest(run_id)
    if manifest.get("command") != op.name:
        raise ResumeError(f"run {run_id} is a {manifest.get('command')!r} run, not {op.name!r}; resume it with "
                          f"`texprobe {manifest.get('command')} ... --resume {run_id}`")
    diff = _differences(manifest.get("config") or {}, config_json(config))
    if diff:
        raise ResumeError(f"run {run_id} was started with other settings: {'; '.join(diff[:4])}. Resume it with the "
                          "same options, or start a new run (omit --resume)")
    plan = store.iter_plan(run_id)
    if plan is None:
        raise ResumeError(f"run {run_id} has no stored plan (made by an older texprobe); start a new run")
    new_inputs: list[str] = []
    n_new = 0
    with SpillSet() as planned:
        n_units = n_items = 0
        for unit in plan:
            n_units += 1
            n_items += len(unit["items"])
            planned.update(op.describe(item) for item in unit["items"])
        manifest.setdefault("planned_units", n_units)
        manifest.setdefault("planned_items", n_items)
        try:
            for unit in op.plan(config):
                for item in unit.items:
                    described = op.describe(item)
                    if described not in planned:
                        n_new += 1
                        if len(new_inputs) < NEW_INPUTS_LISTED:
                            new_inputs.append(described)
        except ImageSetError:
            pass
    return manifest, new_inputs, n_new


#: Seconds between two manifest heartbeats of a running run.
HEARTBEAT_S = 15.0


class _Recorder:
    """The run manifest's life cycle: running -> finished | partial | failed | interrupted."""

    def __init__(self, store: Store, manifest: dict) -> None:
        self.store, self.manifest = store, manifest
        self._last_beat = time.monotonic()
        manifest["heartbeat_at"] = utc_now_iso()
        store.write_manifest(manifest["run_id"], manifest)

    def heartbeat(self, progress: dict) -> None:
        """Driver liveness: ``heartbeat_at`` and progress, written at most every :data:`HEARTBEAT_S` s (a
        ``running`` run whose heartbeat is old lost its driver: resume it)."""
        now = time.monotonic()
        if now - self._last_beat >= HEARTBEAT_S:
            self._last_beat = now
            self.update(heartbeat_at=utc_now_iso(), progress=progress)

    def update(self, **changes: Any) -> None:
        self.manifest.update(changes)
        self.store.write_manifest(self.manifest["run_id"], self.manifest)

    @contextmanager
    def guard(self) -> Iterator["_Recorder"]:
        try:
            yield self
        except KeyboardInterrupt:
            self.update(status="interrupted", finished_at=utc_now_iso())
            raise
        except BaseException as exc:
            self.update(status="failed", finished_at=utc_now_iso(), failure=f"{type(exc).__name__}: {exc}"[:2000])
            raise


def _new_manifest(op: Operation, config: Any, run_id: str, n_units: int, n_items: int) -> dict:
    from pipelines.manifests import new_manifest

    manifest = new_manifest(run_id, command=op.name, argv=sys.argv, config=config_json(config))
    manifest.update(planned_units=n_units, planned_items=n_items, invocations=[])
    return manifest


def run_operation(
    operation: str | Operation,
    config: Any,
    *,
    store: Store,
    placement: Placement | None = None,
    resume: str | None = None,
    show_progress: bool = True,
    compact: bool = True,
) -> RunReport:
    """Run ``operation`` (a registered name or an instance) with ``config`` on Ray; see the module doc.

    Memory stays flat however many inputs there are: the plan goes from ``op.plan`` (a generator) to the
    store as it is enumerated, and the units are streamed back from there into the actor pool, which
    holds a window of them; what is done is asked of the store per unit, never kept per image."""
    started, started_at = time.perf_counter(), utc_now_iso()
    op = get_operation(operation)() if isinstance(operation, str) else operation
    placement = placement or Placement()
    op.validate(config)
    new_inputs: list[str] = []
    n_new = 0
    if resume:
        manifest, new_inputs, n_new = _resume_plan(op, config, store, resume)
        manifest.update(status="running", finished_at=None, argv=[str(a) for a in sys.argv])
        manifest.pop("failure", None)
        run_id = resume
        planned = None
    else:
        run_id = new_run_id()
        planned = op.plan(config)  # a missing input argument is refused here, before Ray starts
    tables = op.output_tables(config)
    done_table = tables[-1]
    done_before = store.done_units(done_table, run_id) if resume else set()
    with _planning(store, run_id, planned) as written, _cluster(placement) as plan:
        # the plan is listed and stored while the cluster starts; an unreachable address or an impossible
        # request is an error before any manifest (and the plan written meanwhile is removed)
        if written is not None:  # what --resume will complete; nothing is stored if the listing fails
            n_units, n_items = written.result()
            manifest = _new_manifest(op, config, run_id, n_units, n_items)
        n_units, n_items = int(manifest.get("planned_units") or 0), int(manifest.get("planned_items") or 0)
        calls = CallPlan.resumed(manifest.get("call_plan"), actors=plan.num_actors)
        manifest["call_plan"] = calls.to_json()  # recorded before any call past the probe is sent
        recorder = _Recorder(store, manifest)
        with recorder.guard():
            todo = _Todo(store, run_id, done_before, new_run=not resume)
            actors, extra, failed, failed_parts, attempts = _execute(
                op, config, store, run_id, todo, n_items, plan, placement, show_progress,
                heartbeat=recorder.heartbeat, compact=compact, calls=calls,
                on_calls=lambda measured: recorder.update(call_plan=measured.to_json()))
            done_now = store.done_units(done_table, run_id)
            missing = []
            failed_rows: dict[str, list[dict]] = {}  # the part each failed call writes -> its errors rows
            for unit in map(WorkUnit.from_json, store.iter_plan(run_id) or ()):
                if unit.unit_id in done_now:
                    continue
                if unit.unit_id in failed:
                    failed_rows.setdefault(failed_parts[unit.unit_id], []).extend(
                        error_row(unit_id=unit.unit_id, input=op.describe(item), stage="unit",
                                  exc=RuntimeError(failed[unit.unit_id])) for item in unit.items)
                missing.append({"unit_id": unit.unit_id, "inputs": [op.describe(i) for i in unit.items],
                                "error": failed.get(unit.unit_id, "not run"),
                                "part": failed_parts.get(unit.unit_id, unit.unit_id)})
            for part, rows in failed_rows.items():  # the call's own errors part: replaced when it lands later
                store.write_table("errors", run_id, rows, part=part, units=sorted({r["unit_id"] for r in rows}))
            counts = {table: count_rows(store, table, run_id) for table in (*tables, "errors")}
            counts.update(units=n_units, units_done=n_units - len(missing), units_missing=len(missing),
                          inputs=n_items)
            invocation = {"started_at": started_at, "finished_at": utc_now_iso(),
                          "units_run": todo.n_run, "units_failed": len(failed), "attempts": attempts,
                          "plan": str(plan), "actors": actors, "hostname": socket.gethostname(), "pid": os.getpid()}
            status = "partial" if missing else "finished"
            recorder.update(status=status, finished_at=utc_now_iso(), heartbeat_at=utc_now_iso(), counts=counts,
                            actors=actors, placement=str(plan),
                            invocations=[*manifest.get("invocations", []), invocation],
                            missing_units=[m["unit_id"] for m in missing],
                            missing_parts=sorted({m["part"] for m in missing}),
                            **{k: v for k, v in extra.items() if _jsonable(v)})
        settle(store, run_id, (*tables, "errors"), compact=compact and status == "finished")
    plan_text = str(plan)
    return RunReport(run_id=run_id, command=op.name, status=status, n_units=n_units,
                     n_resumed=n_units - todo.n_run, counts=counts,
                     missing=missing, actors=actors, plan=plan_text, seconds=time.perf_counter() - started,
                     new_inputs=new_inputs, n_new_inputs=n_new, extra=extra)


class _PlanStopped(Exception):
    """The run stopped before its plan was listed (the cluster did not start)."""


@contextmanager
def _planning(store: Store, run_id: str, planned: Iterable[WorkUnit] | None) -> Iterator[Any]:
    """Store the plan of a new run in a thread (a future of ``(units, items)``), so that listing a million
    inputs overlaps the cluster's start-up. If the run stops first, the listing stops and its plan file
    is removed: a run that never started leaves nothing behind."""
    if planned is None:
        yield None
        return
    from concurrent.futures import ThreadPoolExecutor

    stop = threading.Event()

    def units() -> Iterator[dict]:
        for unit in planned:
            if stop.is_set():
                raise _PlanStopped()
            yield unit.to_json()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="plan") as pool:
        future = pool.submit(store.write_plan, run_id, units())
        try:
            yield future
        except BaseException:
            stop.set()
            try:
                future.result()
            except BaseException:  # noqa: BLE001 - the run's own error is the one to report
                pass
            store.remove_plan(run_id)
            raise


class _Todo:
    """The planned units not done before this invocation, with their plan positions, streamed from the
    stored plan; counts what it handed out (``n_run``) and what it skipped (``n_skipped_items``: done by
    an earlier invocation)."""

    def __init__(self, store: Store, run_id: str, done_before: set[str], *, new_run: bool) -> None:
        self.store, self.run_id, self.done_before, self.new_run = store, run_id, done_before, new_run
        self.n_run = 0
        self.n_skipped_items = 0

    def __iter__(self) -> Iterator[tuple[int, WorkUnit]]:
        for position, data in enumerate(self.store.iter_plan(self.run_id) or ()):
            if data["unit_id"] in self.done_before:
                self.n_skipped_items += len(data["items"])
                continue
            self.n_run += 1
            yield position, WorkUnit.from_json(data)


@contextmanager
def session(placement: Placement | None = None) -> Iterator[None]:
    """Let several ``run_operation`` calls share one Ray cluster (started by the first that needs it)."""
    from pipelines.ray_runtime import held_session

    with held_session():
        yield


@contextmanager
def _cluster(placement: Placement) -> Iterator[Any]:
    """Join/start Ray and lay out the actors (checked against the nodes' resources)."""
    from pipelines.ray_runtime import cluster_nodes, plan_actors, ray_session

    with ray_session(placement.address):
        yield plan_actors(placement, cluster_nodes())


def _execute(op: Operation, config: Any, store: Store, run_id: str, todo: _Todo, n_items: int, plan: Any,
             placement: Placement, show_progress: bool, *, heartbeat: Any, compact: bool, calls: CallPlan,
             on_calls: Any) -> tuple[list[dict], dict, dict[str, str], dict[str, str], int]:
    """Inside the Ray session: run the units on an actor pool (their parts compacted batch by batch as
    they are done), then the operation's finish step."""
    from pipelines.actor import UnitActor
    from pipelines.pool import ActorPool

    kwargs = {"op_name": f"{type(op).__module__}:{type(op).__name__}", "config": config, "store_root": store.root, "run_id": run_id,
              "device": plan.device, "threads": max(1, int(plan.cpus))}
    folding = RunningCompaction(store.root, run_id, [*op.output_tables(config), "errors"], enabled=compact)
    pool = ActorPool(actor_cls=UnitActor, actor_kwargs=kwargs, plan=plan, placement=placement,
                     new_run=todo.new_run, on_done=folding.unit_done, calls=calls, on_calls=on_calls)
    with _progress(f"{op.name}", n_items, show_progress) as advance:
        skipped = [0]

        def progress(n: int) -> None:
            if todo.n_skipped_items > skipped[0]:  # units done by an earlier invocation count as done
                advance(todo.n_skipped_items - skipped[0])
                skipped[0] = todo.n_skipped_items
            advance(n)

        result = pool.run(todo, progress=progress, tick=lambda: heartbeat(
            {"units_done": pool.result.n_done, "units_handed_out": todo.n_run,
             "units_failed": len(pool.result.failed)}))
    folding.wait()
    extra = op.finish(store, run_id, config) or {}
    return result.actors, {**extra, "events": result.events}, result.failed, result.failed_parts, result.n_attempts


@contextmanager
def _progress(label: str, total: int, show: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TextColumn("items"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not show, transient=False) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False
