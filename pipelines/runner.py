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
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from pipelines.errors import ResumeError
from pipelines.ops import get_operation
from pipelines.ops.base import Operation, WorkUnit, error_row
from pipelines.ray_runtime import Placement
from pipelines.store import Store, new_run_id, software_versions, utc_now_iso


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
    extra: dict = field(default_factory=dict)


def config_json(config: Any) -> dict:
    """The config as stored in the manifest (JSON types: tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def count_rows(store: Store, table: str, run_id: str) -> int:
    """Rows of ``table`` written by ``run_id`` (from the Parquet footers, not the data)."""
    import pyarrow.dataset as pads

    parts = sorted(store.parts(table, run_id))
    if not parts:
        return 0
    folder = store.table_dir(table, run_id)
    return pads.dataset([f"{folder}/{p}.parquet" for p in parts], filesystem=store.fs, format="parquet").count_rows()


def _differences(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}={old.get(k)!r} (now {new.get(k)!r})" for k in keys if old.get(k) != new.get(k)]


def _resume_plan(op: Operation, config: Any, store: Store, run_id: str) -> tuple[dict, list[WorkUnit], list[str]]:
    """The manifest, its planned units and the inputs found now that the plan does not hold."""
    from pipelines.imagesets import ImageSetError

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
    plan = store.read_plan(run_id)
    if not plan:
        raise ResumeError(f"run {run_id} has no stored plan (made by an older texprobe); start a new run")
    units = [WorkUnit.from_json(u) for u in plan]
    planned = {op.describe(item) for u in units for item in u.items}
    try:
        now = [op.describe(item) for u in op.plan(config) for item in u.items]
    except ImageSetError:
        now = []
    return manifest, units, [p for p in now if p not in planned]


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


def _new_manifest(op: Operation, config: Any, units: list[WorkUnit]) -> dict:
    from pipelines.manifests import new_manifest

    manifest = new_manifest(new_run_id(), command=op.name, argv=sys.argv, config=config_json(config))
    manifest.update(planned_units=len(units), planned_items=sum(u.size for u in units), invocations=[])
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
    """Run ``operation`` (a registered name or an instance) with ``config`` on Ray; see the module doc."""
    started, started_at = time.perf_counter(), utc_now_iso()
    op = get_operation(operation)() if isinstance(operation, str) else operation
    placement = placement or Placement()
    op.validate(config)
    new_inputs: list[str] = []
    if resume:
        manifest, units, new_inputs = _resume_plan(op, config, store, resume)
        manifest.update(status="running", finished_at=None, argv=[str(a) for a in sys.argv])
        manifest.pop("failure", None)
    else:
        units = op.plan(config)
        manifest = _new_manifest(op, config, units)
    run_id = manifest["run_id"]
    tables = op.output_tables(config)
    done_table = tables[-1]
    done_before = store.done_units(done_table, run_id) if resume else set()
    todo = [u for u in units if u.unit_id not in done_before]
    with _cluster(placement) as plan:  # unreachable address / impossible request: an error before any manifest
        if not resume:
            store.write_plan(run_id, [u.to_json() for u in units])  # what --resume will complete
        recorder = _Recorder(store, manifest)
        with recorder.guard():
            actors, extra, failed, attempts = _execute(op, config, store, run_id, todo, plan, placement,
                                                       show_progress, heartbeat=recorder.heartbeat)
            for unit in todo:
                if unit.unit_id in failed:
                    rows = [error_row(unit_id=unit.unit_id, input=op.describe(item), stage="unit",
                                      exc=RuntimeError(failed[unit.unit_id])) for item in unit.items]
                    store.write_table("errors", run_id, rows, part=unit.unit_id)
            done_now = store.done_units(done_table, run_id)
            missing = [{"unit_id": u.unit_id, "inputs": [op.describe(i) for i in u.items],
                        "error": failed.get(u.unit_id, "not run")} for u in units if u.unit_id not in done_now]
            counts = {table: count_rows(store, table, run_id) for table in (*tables, "errors")}
            counts.update(units=len(units), units_done=len(units) - len(missing), units_missing=len(missing),
                          inputs=sum(u.size for u in units))
            invocation = {"started_at": started_at, "finished_at": utc_now_iso(),
                          "units_run": len(todo), "units_failed": len(failed), "attempts": sum(attempts.values()),
                          "plan": str(plan), "actors": actors, "hostname": socket.gethostname(), "pid": os.getpid()}
            status = "partial" if missing else "finished"
            recorder.update(status=status, finished_at=utc_now_iso(), heartbeat_at=utc_now_iso(), counts=counts,
                            actors=actors, placement=str(plan),
                            invocations=[*manifest.get("invocations", []), invocation],
                            missing_units=[m["unit_id"] for m in missing],
                            **{k: v for k, v in extra.items() if _jsonable(v)})
    _settle_layout(store, run_id, (*tables, "errors"), compact=compact and status == "finished")
    plan_text = str(plan)
    return RunReport(run_id=run_id, command=op.name, status=status, n_units=len(units),
                     n_resumed=len(units) - len(todo), counts=counts, missing=missing, actors=actors, plan=plan_text,
                     seconds=time.perf_counter() - started, new_inputs=new_inputs, extra=extra)


def _settle_layout(store: Store, run_id: str, tables: tuple[str, ...], *, compact: bool) -> None:
    """After the manifest: compact a finished run's unit parts (crash-safe; a refusal only warns: the
    parts stay readable), else record their part index so readers need not open every footer."""
    import warnings

    from analysis.storage import CompactionRefused

    try:
        if compact:
            store.compact(run_id, tables=[t for t in dict.fromkeys(tables)])
        else:
            store.index_parts(run_id, list(dict.fromkeys(tables)))
    except CompactionRefused as exc:
        warnings.warn(f"run {run_id} not compacted: {exc}", stacklevel=2)


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


def _execute(op: Operation, config: Any, store: Store, run_id: str, todo: list[WorkUnit], plan: Any,
             placement: Placement, show_progress: bool, *, heartbeat: Any
             ) -> tuple[list[dict], dict, dict[str, str], dict[str, int]]:
    """Inside the Ray session: run the units on an actor pool, then the operation's finish step."""
    from pipelines.actor import UnitActor
    from pipelines.pool import ActorPool

    kwargs = {"op_name": f"{type(op).__module__}:{type(op).__name__}", "config": config, "store_root": store.root, "run_id": run_id,
              "device": plan.device, "threads": max(1, int(plan.cpus))}
    pool = ActorPool(actor_cls=UnitActor, actor_kwargs=kwargs, plan=plan, placement=placement)
    total = sum(u.size for u in todo)
    with _progress(f"{op.name}", total, show_progress) as advance:
        result = pool.run(todo, progress=advance, tick=lambda: heartbeat(
            {"units_done": len(pool.result.done), "units_todo": len(todo), "units_failed": len(pool.result.failed)}))
    extra = op.finish(store, run_id, config) or {}
    return result.actors, {**extra, "events": result.events}, result.failed, result.attempts


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
