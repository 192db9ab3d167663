"""What a study has done and what it still misses, from the store alone (nothing runs here).

An image counts as *done* for a task when a run of the same operation with the same task key
(:func:`~pipelines.studies.tasks.task_key`: settings, model, weights tag, dataset) wrote the image's row
into the operation's completion table (the last table its units write, e.g. ``trials``) with the same
weights sha256; images are matched by content (``image_id`` = sha256 of the bytes), so a renamed file is
not recomputed. An image whose load or compute failed in such a run is *failed* (not retried unless asked):
a corrupt file does not keep a cron job reporting work forever.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pipelines.runner import config_json
from pipelines.store import Store
from pipelines.studies.spec import StudySpec
from pipelines.studies.tasks import Task, build_config, task_key, tasks, weights_sha256


@dataclass
class TaskPlan:
    """One task's state: its images, and which of them are done, failed or missing."""

    task: Task
    key: str
    table: str
    n_images: int
    done: int
    failed: list[str]
    missing: list[Any]  # ImageItem of the images to compute
    runs: list[str] = field(default_factory=list)
    pending: int = 0  # images that exist only once earlier tasks have run (a sweep's stimuli)

    @property
    def n_missing(self) -> int:
        return len(self.missing) + self.pending

    def to_json(self) -> dict:
        out = {"operation": self.task.operation.kind, "operation_index": self.task.operation.index,
               "dataset": self.task.dataset.name, "model": self.task.model.id, "architecture": self.task.model.name,
               "weights": self.task.model.weights, "task_key": self.key, "table": self.table,
               "images": self.n_images, "done": self.done, "failed": len(self.failed), "missing": self.n_missing,
               "runs": self.runs}
        cell = getattr(self.task, "cell", None)
        if cell is not None:
            out["sweep_cell"] = {"statistic": cell.statistic, "layer_set": cell.layer_set, "layers": list(cell.layers),
                                 "style_weight": cell.style_weight}
        return out


def runs_by_task(store: Store) -> dict[tuple[str, str], list[str]]:
    """(operation, task key) -> run ids, from every run manifest in the store."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for run_id in store.list_runs():
        try:
            manifest = store.read_manifest(run_id)
        except Exception:  # noqa: BLE001 - an unreadable manifest: its run is not counted (store check names it)
            continue
        command, config = manifest.get("command"), manifest.get("config")
        if isinstance(config, dict) and command:
            out[(command, task_key(command, config))].append(run_id)
    return out


def read_columns(store: Store, table: str, run_ids: list[str], columns: list[str]) -> list[dict]:
    """``columns`` of ``table`` over ``run_ids`` (through the store: unreadable parts are skipped, named)."""
    from analysis.schemas import TABLES

    schema = TABLES.get(table)
    names = [c for c in columns if schema is None or c in schema.names]
    rows: list[dict] = []
    for run_id in run_ids:
        if store.parts(table, run_id):
            rows.extend(store.dataset(table, run_id=run_id).to_table(columns=names).to_pylist())
    return rows


def plan_task(task: Task, store: Store, index: dict[tuple[str, str], list[str]], *, retry_failed: bool = False) -> TaskPlan:
    """The state of ``task`` in ``store`` (``index``: :func:`runs_by_task`)."""
    from pipelines.imagesets import collect_images
    from pipelines.ops import get_operation

    config = build_config(task, (task.dataset.path,))
    key = task_key(task.operation.kind, config_json(config))
    table = get_operation(task.operation.kind)().output_tables(config)[-1]
    items = collect_images([task.dataset.path], dataset=task.dataset.name)
    runs = index.get((task.operation.kind, key), [])
    sha = weights_sha256(task)
    done_ids = {r["image_id"] for r in read_columns(store, table, runs, ["image_id", "weights_sha256"])
                if sha is None or r.get("weights_sha256") in (None, sha)}
    failed_inputs = set() if retry_failed else {
        r["input"] for r in read_columns(store, "errors", runs, ["input", "stage"]) if r.get("stage") in ("load", "compute")}
    done, failed, missing = 0, [], []
    for item in items:
        try:
            image_id = item.image_id() if item.error_type is None else None
        except OSError:
            image_id = None
        if image_id is not None and image_id in done_ids:
            done += 1
        elif item.display_path in failed_inputs:
            failed.append(item.display_path)
        else:
            missing.append(item)
    return TaskPlan(task=task, key=key, table=table, n_images=len(items), done=done, failed=failed, missing=missing,
                    runs=runs)


def plan_study(spec: StudySpec, store: Store | None = None, *, retry_failed: bool = False) -> list[TaskPlan]:
    """Every task of ``spec`` with what is done and missing in its store."""
    store = store or Store(spec.store)
    index = runs_by_task(store)
    plans = [plan_task(t, store, index, retry_failed=retry_failed) for t in tasks(spec)]
    if spec.sweep is not None:
        from pipelines.studies.sweep import plan_sweep

        plans.extend(plan_sweep(spec, store, index, retry_failed=retry_failed))
    return plans
