"""A study's tasks (operation x dataset x model), their operation configs from the spec's settings (the
same names as the CLI options), and the *task key*: the config hash without the execution-only fields
(which images, batch and unit sizes), so that a task is the same whichever subset of images a run held."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.ops.base import config_hash

if TYPE_CHECKING:
    from pipelines.studies.spec import DatasetSpec, ModelSpec, OperationSpec, StudySpec

#: Config fields that say how or on which images a run works, not what it computes.
EXECUTION_FIELDS = frozenset({"inputs", "content", "style", "batch_size", "unit_size", "channels_last",
                              "export_dir", "pairs"})

_INT, _FLOAT, _BOOL, _STR = int, float, bool, str
_LAYERS = "layers"  # a comma-separated string or a list of names
_NAMES = "names"  # a list of strings (or one string): a tuple
#: operation -> setting -> type or tuple of allowed values (CLI option names, '-' or '_').
SETTINGS: dict[str, dict[str, Any]] = {
    "classify": {"seed": _INT, "resize": _STR, "batch_size": _INT, "unit_size": _INT, "bf16": _BOOL,
                 "channels_last": _BOOL},
    "grams": {"layers": _LAYERS, "statistics": _NAMES, "size": _INT, "normalization": ("hw", "chw", "none"), "stats_only": _BOOL,
              "pooling": ("max", "avg"), "seed": _INT, "batch_size": _INT, "unit_size": _INT, "bf16": _BOOL,
              "channels_last": _BOOL},
    "reconstruct": {"kind": ("content", "texture"), "layers": _LAYERS, "size": _INT, "steps": _INT, "seed": _INT,
                    "batch_size": _INT, "pooling": ("max", "avg"), "optimizer": ("lbfgs", "adam"),
                    "tv_weight": _FLOAT, "record_every": _INT, "classifier": _STR, "statistic": _STR},
}


@dataclass(frozen=True)
class Task:
    """One (operation, dataset, model) of a study."""

    operation: "OperationSpec"
    dataset: "DatasetSpec"
    model: "ModelSpec"

    @property
    def operation_label(self) -> str:
        return self.operation.kind

    @property
    def label(self) -> str:
        return f"{self.operation.kind}[{self.operation.index}] {self.dataset.name} x {self.model.id}"


def tasks(spec: "StudySpec") -> list[Task]:
    """Every (operation x dataset x model) of the spec, in spec order."""
    return [Task(operation=op, dataset=spec.datasets[d], model=spec.models[m])
            for op in spec.operations for d in op.datasets for m in op.models]


def _settings(op: "OperationSpec") -> dict[str, Any]:
    """The operation's settings, checked against :data:`SETTINGS` (SpecError 'operations[i].settings.x: ...')."""
    return checked_settings(SETTINGS[op.kind], op.settings, where=f"operations[{op.index}].settings", what=op.kind)


def checked_settings(allowed: dict[str, Any], settings: dict, *, where: str, what: str) -> dict[str, Any]:
    """``settings`` (CLI option names, '-' or '_') checked against ``allowed`` (setting -> type or tuple of
    values); a SpecError names the key path ``where.<key>``."""
    from pipelines.studies.spec import SpecError

    out = {}
    for raw_key, value in settings.items():
        key = raw_key.replace("-", "_")
        at = f"{where}.{raw_key}"
        if key not in allowed:
            raise SpecError(f"{at}: unknown setting of {what}; known: {', '.join(sorted(allowed))}")
        kind = allowed[key]
        if kind is _LAYERS:
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                value = ",".join(value)
            elif not isinstance(value, str):
                raise SpecError(f"{at}: give layer names as a list of strings, a comma-separated string or 'all'")
        elif kind is _NAMES:
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                raise SpecError(f"{at}: give a list of names, e.g. [\"mean_std\", \"skewness\"]")
            value = tuple(value)
        elif isinstance(kind, tuple):
            if value not in kind:
                raise SpecError(f"{at}: {value!r} is not one of {', '.join(kind)}")
        elif kind is _FLOAT:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise SpecError(f"{at}: must be a number >= 0, got {value!r}")
            value = float(value)
        elif kind is _INT:
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key in ("seed", "size") else 1):
                raise SpecError(f"{at}: must be an integer >= {0 if key in ('seed', 'size') else 1}, got {value!r}")
        elif not isinstance(value, kind):
            raise SpecError(f"{at}: must be a {kind.__name__}, got {value!r}")
        out[key] = value
    return out


def build_config(task: Task, inputs: tuple[str, ...]) -> Any:
    """The operation config of ``task`` over ``inputs`` (image files, folders or manifests)."""
    s = _settings(task.operation)
    kind, model, dataset = task.operation.kind, task.model, task.dataset.name
    if kind == "classify":
        from pipelines.ops.classify import ClassifyConfig

        return ClassifyConfig(inputs=inputs, model=model.name, weights=model.weights, dataset=dataset, **s)
    if kind == "grams":
        from pipelines.ops.grams import grams_config

        keep = not s.pop("stats_only", False)
        return grams_config(backbone=model.name, layers=s.pop("layers", None), size=s.pop("size", 224),
                            inputs=inputs, weights=model.weights, dataset=dataset, keep_grams=keep, **s)
    if kind == "reconstruct":
        from pipelines.ops.reconstruct import reconstruct_config

        classifier = s.pop("classifier", "efficientnet_lite0")
        return reconstruct_config(backbone=model.name, kind=s.pop("kind", "content"), layers=s.pop("layers", None),
                                  inputs=inputs, weights=model.weights,
                                  classifier=None if classifier == "none" else classifier, **s)
    raise AssertionError(kind)  # spec.py admits only STUDY_OPERATIONS


def check_settings(spec: "StudySpec", op: "OperationSpec") -> None:
    """Settings, model names and layers of ``op`` are usable (SpecError naming the key path)."""
    from nstcore.errors import NstcoreError
    from pipelines.errors import TexprobeError
    from pipelines.studies.spec import SpecError

    _settings(op)
    for model_id in op.models:
        task = Task(operation=op, dataset=spec.datasets[op.datasets[0]], model=spec.models[model_id])
        try:
            build_config(task, (task.dataset.path,))
        except SpecError:
            raise
        except (NstcoreError, TexprobeError) as exc:
            text = " ".join(str(exc).split())
            key = ("settings.statistics" if text.startswith("--statistic") else
                   "settings.layers" if "layer" in text.lower() else "models")
            raise SpecError(f"operations[{op.index}].{key}: {model_id}: {text}") from None


def task_key(operation: str, config: dict) -> str:
    """The task's identity: the operation and its config (JSON form, as in a run manifest) without
    :data:`EXECUTION_FIELDS`."""
    return config_hash({"operation": operation, **{k: v for k, v in config.items() if k not in EXECUTION_FIELDS}})


def weights_sha256(task: Task) -> str | None:
    """sha256 of the task's weights (None when they are not present here: the run will say so)."""
    from nstcore.backbones import get_backbone_spec
    from nstcore.backbones.registry import resolve_weights

    seed = int(task.operation.settings.get("seed", 0))
    try:
        return resolve_weights(get_backbone_spec(task.model.name), task.model.weights, seed=seed,
                               allow_download=False).sha256
    except Exception:  # noqa: BLE001 - absent or unreadable weights: validate() reports them when run
        return None
