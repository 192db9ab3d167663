"""The study spec (TOML, read with :mod:`tomllib`), validated into frozen dataclasses.

Every problem is one :class:`SpecError` line naming the spec file, the key path (``operations[2].models``)
and, where it can be found, the line, e.g.::

    study.toml, line 12, operations[1].kind: unknown operation 'clasify'; registered: classify, grams, ...
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.errors import TexprobeError
from pipelines.studies.sweep_spec import SweepSpec, parse_sweep

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
#: Operations a study can plan image by image (stylize pairs images: run it with `texprobe stylize`).
STUDY_OPERATIONS = ("classify", "grams", "reconstruct")
PLACEMENT_KEYS = {"actors": int, "gpus_per_actor": float, "cpus_per_actor": float, "retries": int,
                  "unit_timeout_s": float}


class SpecError(TexprobeError, ValueError):
    """The study spec cannot be used (the message names file, line and key path)."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    path: str  # absolute: a folder or a manifest CSV


@dataclass(frozen=True)
class ModelSpec:
    id: str
    name: str
    weights: str


@dataclass(frozen=True)
class OperationSpec:
    index: int
    kind: str
    datasets: tuple[str, ...]
    models: tuple[str, ...]
    settings: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class StudySpec:
    name: str
    store: str
    path: str
    datasets: dict[str, DatasetSpec] = field(hash=False, compare=False)
    models: dict[str, ModelSpec] = field(hash=False, compare=False)
    operations: tuple[OperationSpec, ...] = ()
    address: str | None = None
    placement: dict = field(default_factory=dict, hash=False, compare=False)
    sweep: "SweepSpec | None" = field(default=None, hash=False, compare=False)

    def without_sweep(self) -> "StudySpec":
        """The spec's [[operations]] only."""
        return dataclasses.replace(self, sweep=None)


def key_line(text: str, path: str) -> int | None:
    """Best-effort line number of the key path ``a[1].b.c`` in TOML ``text`` (headers and ``key =``)."""
    parts = re.findall(r"([^.\[\]]+)(?:\[(\d+)\])?", path)
    want = [(name, int(idx) if idx else None) for name, idx in parts]
    counts: dict[str, int] = {}
    table: list[tuple[str, int | None]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        header = re.match(r"^(\[\[?)\s*([^\]]+?)\s*\]\]?$", line)
        if header:
            names = [n.strip().strip('"') for n in header.group(2).split(".")]
            if header.group(1) == "[[":
                key = ".".join(names)
                counts[key] = counts.get(key, -1) + 1
                table = [(n, None) for n in names[:-1]] + [(names[-1], counts[key])]
            else:
                table = [(n, counts.get(".".join(names[: i + 1]))) for i, n in enumerate(names)]
            if _matches(table, want):
                return number
            continue
        assign = re.match(r'^"?([A-Za-z0-9_-]+)"?\s*=', line)
        if assign and _matches([*table, (assign.group(1), None)], want):
            return number
    return None


def _matches(have: list[tuple[str, int | None]], want: list[tuple[str, int | None]]) -> bool:
    if len(have) != len(want):
        return False
    return all(h[0] == w[0] and (w[1] is None or h[1] == w[1]) for h, w in zip(have, want))


class _Checker:
    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text

    def fail(self, key: str, message: str) -> SpecError:
        line = key_line(self.text, key)
        where = f"{self.path}" + (f", line {line}" if line else "")
        return SpecError(f"{where}, {key}: {message}")

    def table(self, data: Any, key: str) -> dict:
        if not isinstance(data, dict):
            raise self.fail(key, f"must be a table, got {type(data).__name__}")
        return data

    def array_of_tables(self, data: dict, key: str) -> list[dict]:
        value = data.get(key)
        if value is None:
            raise self.fail(key, f"missing: add at least one [[{key}]] table")
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            raise self.fail(key, f"must be one or more [[{key}]] tables")
        return value

    def string(self, data: dict, key: str, where: str, *, required: bool = True, name: bool = False) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(where, "missing (a string)")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"must be a non-empty string, got {value!r}")
        if name and not NAME_RE.match(value):
            raise self.fail(where, f"{value!r} is not a name: use letters, digits, '-' and '_'")
        return value

    def unknown(self, data: dict, allowed: set[str], where: str) -> None:
        extra = sorted(set(data) - allowed)
        if extra:
            key = f"{where}.{extra[0]}" if where else extra[0]
            raise self.fail(key, f"unknown key; allowed here: {', '.join(sorted(allowed))}")

    def names(self, data: dict, key: str, where: str, known: dict, what: str) -> tuple[str, ...]:
        value = data.get(key)
        if value is None:
            return tuple(known)  # default: all of them
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.fail(where, f"must be a list of {what} names")
        for v in value:
            if v not in known:
                raise self.fail(where, f"unknown {what} {v!r}; the spec defines: {', '.join(known)}")
        return tuple(dict.fromkeys(value))


def _resolve_path(value: str, base: Path) -> str:
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value):
        return value
    path = Path(os.path.expanduser(value))
    return str(path if path.is_absolute() else (base / path).resolve())


def load_spec(path: str | os.PathLike[str], *, store: str | None = None, check_paths: bool = True) -> StudySpec:
    """Read and validate the spec at ``path`` (relative paths are relative to the spec's folder);
    ``store`` overrides ``[study].store``; ``check_paths=False`` accepts dataset paths that exist only
    elsewhere (a spec written for a cluster, checked on a laptop)."""
    spec_path = Path(path).expanduser()
    try:
        text = spec_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"study spec {str(spec_path)!r} does not exist; pass the path of a .toml file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read study spec {str(spec_path)!r}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{spec_path}: not valid TOML: {exc}") from None
    check = _Checker(spec_path, text)
    base = spec_path.resolve().parent
    check.unknown(data, {"study", "datasets", "models", "operations", "sweep"}, "")
    study = check.table(data.get("study", None) or _missing(check, "study"), "study")
    check.unknown(study, {"name", "store", "address", "placement", "description"}, "study")
    name = check.string(study, "name", "study.name", name=True)
    store_value = check.string(study, "store", "study.store", required=False)
    if store:  # from the command line: relative to the working directory
        store_value, store_base = store, Path.cwd()
    else:
        store_value = store_value or os.environ.get("TEXPROBE_STORE") or "./texprobe-store"
        store_base = base
    address = check.string(study, "address", "study.address", required=False)
    placement = _placement(check, study.get("placement", {}))

    datasets: dict[str, DatasetSpec] = {}
    for i, entry in enumerate(check.array_of_tables(data, "datasets")):
        where = f"datasets[{i}]"
        check.unknown(entry, {"name", "path"}, where)
        ds_name = check.string(entry, "name", f"{where}.name", name=True)
        if ds_name in datasets:
            raise check.fail(f"{where}.name", f"dataset {ds_name!r} is defined twice")
        ds_path = _resolve_path(check.string(entry, "path", f"{where}.path"), base)
        if check_paths and not os.path.exists(ds_path):
            raise check.fail(f"{where}.path", f"{ds_path!r} does not exist (relative paths start at the spec's "
                                              f"folder {str(base)!r}); give an image folder or a manifest CSV")
        datasets[ds_name] = DatasetSpec(name=ds_name, path=ds_path)

    models: dict[str, ModelSpec] = {}
    for i, entry in enumerate(check.array_of_tables(data, "models")):
        where = f"models[{i}]"
        check.unknown(entry, {"id", "name", "weights"}, where)
        arch = check.string(entry, "name", f"{where}.name")
        weights = check.string(entry, "weights", f"{where}.weights", required=False) or "imagenet"
        model_id = check.string(entry, "id", f"{where}.id", required=False, name=True) or arch
        if model_id in models:
            raise check.fail(f"{where}.name", f"model {model_id!r} is listed twice; give one of them an `id`")
        if weights not in ("imagenet", "random") and ("/" in weights or weights.endswith((".pth", ".pt"))):
            weights = _resolve_path(weights, base)
        models[model_id] = ModelSpec(id=model_id, name=arch, weights=weights)

    operations = []
    sweep = parse_sweep(check, data["sweep"], datasets, models) if "sweep" in data else None
    for i, entry in enumerate(check.array_of_tables(data, "operations") if sweep is None or "operations" in data
                              else []):
        where = f"operations[{i}]"
        check.unknown(entry, {"kind", "datasets", "models", "settings"}, where)
        kind = check.string(entry, "kind", f"{where}.kind")
        if kind not in STUDY_OPERATIONS:
            from pipelines.ops import list_operations

            hint = ("stylize pairs images rather than processing each once: run it with `texprobe stylize`"
                    if kind in list_operations() else f"registered: {', '.join(list_operations())}")
            raise check.fail(f"{where}.kind", f"operation {kind!r} cannot be planned by a study ({hint}); "
                                              f"use one of {', '.join(STUDY_OPERATIONS)}")
        settings = check.table(entry.get("settings", {}), f"{where}.settings")
        operations.append(OperationSpec(
            index=i, kind=kind, settings=dict(settings),
            datasets=check.names(entry, "datasets", f"{where}.datasets", datasets, "dataset"),
            models=check.names(entry, "models", f"{where}.models", models, "model"),
        ))
    spec = StudySpec(name=name, store=_resolve_path(store_value, store_base),
                     path=str(spec_path.resolve()), datasets=datasets, models=models, operations=tuple(operations),
                     address=address, placement=placement, sweep=sweep)
    from pipelines.studies.sweep import check_sweep
    from pipelines.studies.tasks import check_settings

    if sweep is not None:
        try:
            check_sweep(spec)
        except SpecError as exc:
            raise check.fail(*exc.args[0].split(": ", 1)) from None

    for op in spec.operations:  # unknown / ill-typed settings and unknown models or layers: now, with the line
        try:
            check_settings(spec, op)
        except SpecError as exc:
            raise check.fail(*exc.args[0].split(": ", 1)) from None
    return spec


def _missing(check: _Checker, key: str) -> Any:
    raise check.fail(key, f"missing: add a [{key}] table with at least `name = \"...\"`")


def _placement(check: _Checker, data: Any) -> dict:
    data = check.table(data, "study.placement")
    check.unknown(data, set(PLACEMENT_KEYS), "study.placement")
    out = {}
    for key, typ in PLACEMENT_KEYS.items():
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (typ is int and not isinstance(value, int)) \
                    or value < 0:
                raise check.fail(f"study.placement.{key}", f"must be a non-negative {typ.__name__}, got {value!r}")
            out[key] = typ(value)
    return out
