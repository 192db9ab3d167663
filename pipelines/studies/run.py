"""``texprobe study run``: every task's missing images, and only those, through ``run_operation``; each
run's manifest then names the study (``study``) and its run date (``study_run_date``, UTC)."""

from __future__ import annotations

import csv
import datetime as _dt
import os
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass

from pipelines.ray_runtime import Placement
from pipelines.store import Store
from pipelines.studies.plan import TaskPlan, plan_study
from pipelines.studies.spec import StudySpec
from pipelines.studies.tasks import build_config


@dataclass
class TaskResult:
    plan: TaskPlan
    run_id: str | None = None
    status: str = "skipped"  # skipped (nothing missing) | finished | partial | error
    processed: int = 0
    error: str | None = None  # status 'error': why the task could not run (e.g. weights absent)


def study_placement(spec: StudySpec, *, address: str | None = None, device: str | None = None) -> Placement:
    """The Ray placement of the study's runs: the spec's ``[study.placement]``, ``address`` first."""
    device = device or os.environ.get("TEXPROBE_DEVICE") or None  # test/debug override, as for the other commands
    return Placement(address=address or spec.address, device=device, **spec.placement)


def _inputs(plan: TaskPlan, scratch: ExitStack) -> tuple[str, ...]:
    """The missing images as run inputs: their files, or for a manifest-CSV dataset a CSV of just them
    (so that the manifest's labels are kept)."""
    from pipelines.manifest_rows import MANIFEST_SUFFIXES

    if not plan.task.dataset.path.lower().endswith(MANIFEST_SUFFIXES):
        return tuple(item.path for item in plan.missing)
    folder = scratch.enter_context(tempfile.TemporaryDirectory(prefix="texprobe-study-"))
    path = os.path.join(folder, f"{plan.task.dataset.name}.csv")
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "shape_category", "texture_category", "dataset"])
        for item in plan.missing:
            writer.writerow([item.path, item.shape_category or "", item.texture_category or "", item.dataset])
    return (path,)


def stamp(store: Store, run_id: str, spec: StudySpec, plan: TaskPlan, run_date: str) -> None:
    """Put the study's name, run date and task at the top level of the run's manifest."""
    manifest = store.read_manifest(run_id)
    manifest.update(study=spec.name, study_run_date=run_date, study_spec=spec.path,
                    study_task={"operation": plan.task.operation.kind, "operation_index": plan.task.operation.index,
                                "dataset": plan.task.dataset.name, "model": plan.task.model.id,
                                "task_key": plan.key, "images": len(plan.missing)})
    store.write_manifest(run_id, manifest)


def whole_set_discriminability(store: Store, run_id: str, config, runs: list[str]) -> None:
    """Texture discriminability of a grown task over ALL its images (every run of the task), replacing
    the new run's own, which saw only the images added (a classifier fit on 5 images says little)."""
    from pipelines.ops.texture_layers import compute_discriminability

    table = compute_discriminability(store, run_id, list(config.layers), source_runs=runs)
    if table is not None:
        store.write_table("texture_discriminability", run_id, table, part="all")
        manifest = store.read_manifest(run_id)
        manifest["study_discriminability_runs"] = runs
        store.write_manifest(run_id, manifest)


def run_study(spec: StudySpec, *, placement: Placement | None = None, retry_failed: bool = False,
              show_progress: bool = True, on_task=None) -> list[TaskResult]:
    """Run what the study misses (see :mod:`pipelines.studies.plan`), then its sweep's cells and their
    classification (:mod:`pipelines.studies.sweep`); tasks with nothing missing start no run (and no Ray).
    A task that cannot run (weights absent, cluster refuses) is reported with status ``error`` and the
    others still run. ``on_task(result)`` is called after each task."""
    from pipelines.runner import session

    store = Store(spec.store)
    placement = placement or study_placement(spec)
    run_date = _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    results: list[TaskResult] = []

    def run(plan: TaskPlan, config) -> None:
        result = _run_task(spec, store, plan, config, placement=placement, run_date=run_date,
                           show_progress=show_progress) if plan.missing else TaskResult(plan=plan)
        results.append(result)
        if on_task:
            on_task(result)

    with ExitStack() as scratch, session(placement):
        for plan in plan_study(spec.without_sweep(), store, retry_failed=retry_failed):
            run(plan, build_config(plan.task, _inputs(plan, scratch)) if plan.missing else None)
        if spec.sweep is not None:
            _run_sweep(spec, store, scratch, run, retry_failed=retry_failed)
    return results


def _run_task(spec: StudySpec, store: Store, plan: TaskPlan, config, *, placement: Placement, run_date: str,
              show_progress: bool) -> TaskResult:
    from pipelines.errors import user_errors
    from pipelines.runner import run_operation

    result = TaskResult(plan=plan)
    try:
        report = run_operation(plan.task.operation.kind, config, store=store, placement=placement,
                               show_progress=show_progress)
    except user_errors() as exc:
        result.status, result.error = "error", " ".join(str(exc).split()) or type(exc).__name__
        return result
    stamp(store, report.run_id, spec, plan, run_date)
    if plan.task.operation.kind == "grams" and plan.runs and config.keep_grams:
        whole_set_discriminability(store, report.run_id, config, [*plan.runs, report.run_id])
    result.run_id, result.status = report.run_id, report.status
    result.processed = report.counts.get("inputs", 0) - sum(len(m["inputs"]) for m in report.missing)
    return result


def _run_sweep(spec: StudySpec, store: Store, scratch: ExitStack, run, *, retry_failed: bool) -> None:
    """The sweep's missing cells, then (planned anew: the cells' new stimuli) the classifiers' tasks."""
    from pipelines.studies.plan import runs_by_task
    from pipelines.studies.sweep import (chosen_pairs, classify_config, pairs_csv, plan_cells, plan_classifiers,
                                         stimuli_manifest, stylize_config, sweep_dataset)

    pairs = chosen_pairs(spec)
    for plan in plan_cells(spec, store, runs_by_task(store), pairs, retry_failed=retry_failed):
        run(plan, stylize_config(spec, plan.task.cell, pairs_csv(plan, scratch)) if plan.missing else None)
    index = runs_by_task(store)
    cells = plan_cells(spec, store, index, pairs)
    for plan in plan_classifiers(spec, store, index, cells, pairs):
        inputs = (stimuli_manifest(store, plan, scratch, sweep_dataset(spec)),) if plan.missing else ()
        run(plan, classify_config(spec, plan.task.model.id, inputs) if plan.missing else None)
