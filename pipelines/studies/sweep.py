"""Running a study's ``[sweep]`` (issue 21): every cell (statistic x layer set x style weight) generates the
sweep's (content, style) pairs with ``stylize``; every classifier then classifies every cell's stimuli.

Incremental like the rest of a study: a cell is a stylize *task* (its key: the transfer config without the
execution fields, :func:`~pipelines.studies.tasks.task_key`) and a pair is done when a run of that task
stored its stimulus (matched by the content and style images' sha256); a classifier's task is done for a
stimulus when a run of the same classify task wrote its trial (matched by the stimulus's sha256). Adding a
statistic to the spec therefore generates and classifies only the new cell's stimuli.

The stimuli carry their statistic, layers and weight and the shared reference metrics
(:mod:`nstcore.reference_metrics`); the ``dislocator_effect`` view joins them to the classifiers' trials.
"""

from __future__ import annotations

import csv
import os
import random
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Iterator

from pipelines.runner import config_json
from pipelines.store import Store
from pipelines.studies.plan import TaskPlan, read_columns
from pipelines.studies.spec import DatasetSpec, OperationSpec, SpecError, StudySpec
from pipelines.studies.sweep_spec import SweepCell
from pipelines.studies.tasks import Task, task_key, weights_sha256


@dataclass(frozen=True)
class SweepTask(Task):
    """A sweep's stylize cell or classify task (``cell`` None for classify)."""

    cell: SweepCell | None = None

    @property
    def operation_label(self) -> str:
        return f"stylize {self.cell.label}" if self.cell else "classify (sweep)"

    @property
    def label(self) -> str:
        return f"sweep {self.operation_label} {self.dataset.name} x {self.model.id}"


def sweep_dataset(spec: StudySpec) -> str:
    """The dataset name of the sweep's trials."""
    return f"sweep:{spec.name}"


def transfer_config(spec: StudySpec, cell: SweepCell) -> Any:
    """The cell's :class:`~nstcore.transfer.TransferConfig` (the sweep's settings, the cell's statistic,
    style layers and weight, the sweep's seed)."""
    from pipelines.ops.transfer_options import build_transfer_config

    sweep, model = spec.sweep, spec.models[spec.sweep.backbone]
    s = {k: v for k, v in sweep.settings.items() if k not in ("batch_size", "preset", "content_layer")}
    return build_transfer_config(backbone=model.name, weights=model.weights, preset_name=sweep.settings.get("preset"),
                                 content_layer=sweep.settings.get("content_layer"), style_layers=",".join(cell.layers),
                                 statistic=cell.statistic, style_weight=cell.style_weight, seed=sweep.seed, **s)


def stylize_config(spec: StudySpec, cell: SweepCell, pairs: str = "conflict") -> Any:
    from pipelines.ops.stylize import StylizeConfig

    sweep, model = spec.sweep, spec.models[spec.sweep.backbone]
    transfer = transfer_config(spec, cell)
    return StylizeConfig(content=(spec.datasets[sweep.content].path,), style=(spec.datasets[sweep.style].path,),
                         transfer=transfer.to_dict(), config_hash=transfer.config_hash(), backbone=model.name,
                         weights=model.weights, pairs=pairs, batch_size=sweep.settings.get("batch_size", 4),
                         export_dir=None)


def classify_config(spec: StudySpec, classifier: str, inputs: tuple[str, ...] = ()) -> Any:
    from pipelines.ops.classify import ClassifyConfig

    model = spec.models[classifier]
    return ClassifyConfig(inputs=inputs, model=model.name, weights=model.weights, dataset=sweep_dataset(spec))


def check_sweep(spec: StudySpec) -> None:
    """Every cell's transfer can be built (layers, statistic, settings): SpecError naming the key."""
    from nstcore.errors import NstcoreError
    from pipelines.errors import TexprobeError

    done: set[str] = set()
    for cell in spec.sweep.cells():
        if cell.layer_set in done:
            continue
        done.add(cell.layer_set)
        try:
            transfer_config(spec, cell)
        except (NstcoreError, TexprobeError, ValueError) as exc:
            text = " ".join(str(exc).split())
            key = f"sweep.layers.{cell.layer_set}" if "layer" in text.lower() else "sweep.settings"
            raise SpecError(f"{key}: {text}") from None


def chosen_pairs(spec: StudySpec) -> list[dict]:
    """The sweep's (content, style) pairs: every conflicting (or every) pair, or a sample of ``pairs`` of
    the conflicting ones drawn with ``seed`` from the name-sorted list (the same pairs for every cell)."""
    from pipelines.imagesets import ImageSetError, collect_images
    from pipelines.ops.pairs import content_stem, style_stem, make_pairs

    sweep = spec.sweep
    contents = _one_per_source(collect_images([spec.datasets[sweep.content].path], dataset=sweep.content),
                               content_stem)
    styles = _one_per_source(collect_images([spec.datasets[sweep.style].path], dataset=sweep.style), style_stem)
    try:
        pairs = sorted(make_pairs(contents, styles, "all" if sweep.pairs == "all" else "conflict"),
                       key=lambda p: p["name"])
    except ImageSetError as exc:  # make_pairs speaks of --pairs: say where it comes from here
        text = str(exc).replace("--pairs conflict: ", "").replace("or use --pairs all", 'or set pairs = "all"')
        raise ImageSetError(f"{spec.path}, [sweep] {sweep.content} x {sweep.style}: {text}") from None
    if isinstance(sweep.pairs, int) and sweep.pairs < len(pairs):
        pairs = sorted(random.Random(sweep.seed).sample(pairs, sweep.pairs), key=lambda p: p["name"])
    return pairs


def _one_per_source(items: list, stem: Any) -> list:
    """One image per source: cue-conflict stimuli '<shape><n>-<texture><m>.png' share their content part
    '<shape><n>' (one content image stylised with several textures) and their texture part '<texture><m>';
    the first by path stands for its source, so every output is uniquely named '<shape><n>-<texture><m>.png'
    (``stem``: :func:`~pipelines.ops.pairs.content_stem` or ``style_stem``)."""
    first: dict[str, Any] = {}
    for item in sorted(items, key=lambda it: it.path):
        first.setdefault(stem(item), item)
    return list(first.values())


def _pair_key(pair: dict) -> tuple[str, str]:
    return pair["content"].image_id(), pair["style"].image_id()


def _cell_tasks(spec: StudySpec) -> Iterator[SweepTask]:
    sweep = spec.sweep
    for cell in sweep.cells():
        op = OperationSpec(index=-1, kind="stylize", datasets=(sweep.content,), models=(sweep.backbone,))
        yield SweepTask(operation=op, dataset=spec.datasets[sweep.content], model=spec.models[sweep.backbone],
                        cell=cell)


def plan_cells(spec: StudySpec, store: Store, index: dict, pairs: list[dict], *,
               retry_failed: bool = False) -> list[TaskPlan]:
    """Each cell's pairs: done (a stimulus stored by a run of the cell's task), failed (not retried unless
    ``retry_failed``), missing."""
    plans = []
    for task in _cell_tasks(spec):
        config = stylize_config(spec, task.cell)
        key = task_key("stylize", config_json(config))
        runs = index.get(("stylize", key), [])
        done_keys = {(r["content_image_id"], r["style_image_id"])
                     for r in read_columns(store, "stimuli", runs, ["content_image_id", "style_image_id"])}
        failed_inputs = set() if retry_failed else {
            r["input"] for r in read_columns(store, "errors", runs, ["input", "stage"]) if r.get("stage") in ("load", "compute")}
        done, failed, missing = 0, [], []
        for pair in pairs:
            if _pair_key(pair) in done_keys:
                done += 1
            elif failed_inputs & {pair["content"].path, pair["style"].path,
                                  f"{pair['content'].path} + {pair['style'].path}"}:
                failed.append(pair["name"])
            else:
                missing.append(pair)
        plans.append(TaskPlan(task=task, key=key, table="stimuli", n_images=len(pairs), done=done, failed=failed,
                              missing=missing, runs=runs))
    return plans


def sweep_stimuli(store: Store, cell_plans: list[TaskPlan], pairs: list[dict]) -> list[dict]:
    """The stored stimuli of the sweep's cells and pairs, one per (cell, pair) (the latest run's)."""
    keys = {_pair_key(p) for p in pairs}
    out: dict[tuple, dict] = {}
    for plan in cell_plans:
        rows = read_columns(store, "stimuli", plan.runs, ["run_id", "stimulus_id", "content_image_id",
                                                            "style_image_id", "image", "shape_category",
                                                            "texture_category", "path"])
        for r in rows:
            pair = (r["content_image_id"], r["style_image_id"])
            if pair in keys:
                out[(plan.key, pair)] = r
    return list(out.values())


def plan_classifiers(spec: StudySpec, store: Store, index: dict, cell_plans: list[TaskPlan],
                     pairs: list[dict]) -> list[TaskPlan]:
    """Each classifier's task over every cell's stimuli: those classified (by sha256) are done; the
    stored ones not yet classified are missing; those not generated yet are ``pending``."""
    stimuli = sweep_stimuli(store, cell_plans, pairs)
    expected = len(cell_plans) * len(pairs)
    plans = []
    for classifier in spec.sweep.classifiers:
        op = OperationSpec(index=-1, kind="classify", datasets=(sweep_dataset(spec),), models=(classifier,))
        task = SweepTask(operation=op, dataset=DatasetSpec(name=sweep_dataset(spec), path=""),
                         model=spec.models[classifier])
        key = task_key("classify", config_json(classify_config(spec, classifier)))
        runs = index.get(("classify", key), [])
        sha = weights_sha256(task)
        done_ids = {r["image_id"] for r in read_columns(store, "trials", runs, ["image_id", "weights_sha256"])
                    if sha is None or r.get("weights_sha256") in (None, sha)}
        done = sum(1 for r in stimuli if r["stimulus_id"] in done_ids)  # per (cell, pair), like n_images
        unique: dict[str, dict] = {}
        for r in stimuli:
            if r["stimulus_id"] not in done_ids:
                unique.setdefault(r["stimulus_id"], r)
        plans.append(TaskPlan(task=task, key=key, table="trials", n_images=expected, done=done, failed=[],
                              missing=list(unique.values()), runs=runs,
                              pending=max(0, expected - len(stimuli))))
    return plans


def plan_sweep(spec: StudySpec, store: Store, index: dict, *, retry_failed: bool = False) -> list[TaskPlan]:
    """The cells' and the classifiers' plans (nothing runs)."""
    pairs = chosen_pairs(spec)
    cells = plan_cells(spec, store, index, pairs, retry_failed=retry_failed)
    return [*cells, *plan_classifiers(spec, store, index, cells, pairs)]


def pairs_csv(plan: TaskPlan, scratch: ExitStack) -> str:
    """A pairs CSV (content, style: absolute paths) of the cell's missing pairs."""
    folder = scratch.enter_context(tempfile.TemporaryDirectory(prefix="texprobe-sweep-"))
    path = os.path.join(folder, "pairs.csv")
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["content", "style"])
        for pair in plan.missing:
            writer.writerow([os.path.abspath(pair["content"].path), os.path.abspath(pair["style"].path)])
    return path


def stimuli_manifest(store: Store, plan: TaskPlan, scratch: ExitStack, dataset: str) -> str:
    """The missing stimuli as files (read from the store, local or object storage) named
    ``<stimulus_id[:12]>/<image>`` and a manifest CSV of them with their shape and texture categories."""
    from analysis.storage import files

    folder = scratch.enter_context(tempfile.TemporaryDirectory(prefix="texprobe-sweep-"))
    manifest = os.path.join(folder, "stimuli.csv")
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "shape_category", "texture_category", "dataset"])
        for r in plan.missing:
            target = os.path.join(folder, r["stimulus_id"][:12], r["image"])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as out:
                out.write(files.read_bytes(store.location, store.location.path(r["path"])))
            writer.writerow([target, r["shape_category"] or "", r["texture_category"] or "", dataset])
    return manifest
