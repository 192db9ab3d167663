"""The ``[sweep]`` block of a study spec (issue 21): which statistic makes a texture?

::

    [sweep]
    content = "cue-conflict"        # dataset of content (shape) images
    style = "cue-conflict"          # dataset of style (texture) images (default: content)
    backbone = "vgg19"              # model id (from [[models]]) that generates the stimuli
    classifiers = ["efficientnet_lite0"]   # model ids that judge them
    statistics = ["gram", "mean_std", "sliced_wasserstein"]   # NAME[:VALUE], as `--statistic`
    style_weights = [1.0]           # every statistic; or a table: {gram = [1.0], mean_std = [10.0]}
    pairs = 8                       # a seeded sample of the conflicting (content, style) pairs; "conflict" | "all"
    seed = 0                        # of the sample and of the transfers
    [sweep.layers]                  # named style-layer sets
    conv1-5 = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    conv1-3 = ["conv1_1", "conv2_1", "conv3_1"]
    [sweep.settings]                # `texprobe stylize` options shared by every cell
    size = 96
    steps = 60

A *cell* is one (statistic, layer set, style weight); each is one stylize task of the study, and each
classifier classifies every cell's stimuli (:mod:`pipelines.studies.sweep`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.studies.tasks import _BOOL, _FLOAT, _INT, _STR, checked_settings

#: `texprobe stylize` options a sweep's cells share (CLI names, '-' or '_').
SWEEP_SETTINGS: dict[str, Any] = {
    "preset": _STR, "size": _INT, "steps": _INT, "content_layer": _STR, "content_weight": _FLOAT,
    "tv_weight": _FLOAT, "init": ("content", "noise", "style"), "optimizer": ("lbfgs", "adam"), "lr": _FLOAT,
    "style_scale": _FLOAT, "luminance_only": _BOOL, "pooling": ("max", "avg"), "precision": ("float32", "float64"),
    "box": ("bounded", "clip-at-end", "clamp-each-step"), "batch_size": _INT, "record_every": _INT,
}
SWEEP_KEYS = {"content", "style", "backbone", "classifiers", "statistics", "style_weights", "pairs", "seed",
              "layers", "settings"}


@dataclass(frozen=True)
class SweepCell:
    """One (statistic, layer set, style weight) of the sweep."""

    statistic: str
    layer_set: str
    layers: tuple[str, ...]
    style_weight: float

    @property
    def label(self) -> str:
        return f"{self.statistic} x {self.layer_set} x w={self.style_weight:g}"


@dataclass(frozen=True)
class SweepSpec:
    content: str
    style: str
    backbone: str
    classifiers: tuple[str, ...]
    statistics: tuple[str, ...]
    layers: dict[str, tuple[str, ...]] = field(hash=False, compare=False)
    style_weights: dict[str, tuple[float, ...]] = field(hash=False, compare=False)
    pairs: int | str = 8
    seed: int = 0
    settings: dict = field(default_factory=dict, hash=False, compare=False)

    def cells(self) -> list[SweepCell]:
        """Every cell, statistics first, then layer sets, then weights (spec order)."""
        return [SweepCell(statistic=s, layer_set=name, layers=layers, style_weight=w)
                for s in self.statistics for name, layers in self.layers.items() for w in self.style_weights[s]]


def parse_sweep(check: Any, data: Any, datasets: dict, models: dict) -> SweepSpec:
    """The validated ``[sweep]`` table (``check``: the spec's checker; errors name the key path and line)."""
    from nstcore.errors import NstcoreError
    from nstcore.stats import statistic_options

    sweep = check.table(data, "sweep")
    check.unknown(sweep, SWEEP_KEYS, "sweep")
    content = _name(check, sweep, "content", datasets, "dataset", required=True)
    style = _name(check, sweep, "style", datasets, "dataset", required=False) or content
    backbone = _name(check, sweep, "backbone", models, "model", required=True)
    classifiers = check.names(sweep, "classifiers", "sweep.classifiers", models, "model")
    statistics = _strings(check, sweep, "statistics")
    for spec in statistics:
        try:
            statistic_options(spec)
        except (NstcoreError, ValueError) as exc:
            raise check.fail("sweep.statistics", " ".join(str(exc).split())) from None
    layers = check.table(sweep.get("layers") or _missing(check), "sweep.layers")
    layer_sets = {}
    for name, value in layers.items():
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise check.fail(f"sweep.layers.{name}", "must be a list of layer names")
        layer_sets[str(name)] = tuple(value)
    weights = _weights(check, sweep.get("style_weights", [1.0]), statistics)
    pairs = sweep.get("pairs", 8)
    if not (pairs in ("conflict", "all") or (isinstance(pairs, int) and not isinstance(pairs, bool) and pairs >= 1)):
        raise check.fail("sweep.pairs", f"must be a number of pairs >= 1, 'conflict' or 'all', got {pairs!r}")
    seed = sweep.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise check.fail("sweep.seed", f"must be an integer >= 0, got {seed!r}")
    try:
        settings = checked_settings(SWEEP_SETTINGS, check.table(sweep.get("settings", {}), "sweep.settings"),
                                    where="sweep.settings", what="a sweep's stylize")
    except Exception as exc:  # SpecError 'sweep.settings.x: ...' -> with the line
        raise check.fail(*str(exc).split(": ", 1)) from None
    return SweepSpec(content=content, style=style, backbone=backbone, classifiers=classifiers,
                     statistics=statistics, layers=layer_sets, style_weights=weights, pairs=pairs, seed=seed,
                     settings=settings)


def _missing(check: Any) -> Any:
    raise check.fail("sweep.layers", 'missing: add a [sweep.layers] table, e.g. conv1-5 = ["conv1_1", ...]')


def _name(check: Any, data: dict, key: str, known: dict, what: str, *, required: bool) -> str | None:
    value = check.string(data, key, f"sweep.{key}", required=required)
    if value is not None and value not in known:
        raise check.fail(f"sweep.{key}", f"unknown {what} {value!r}; the spec defines: {', '.join(known)}")
    return value


def _strings(check: Any, data: dict, key: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise check.fail(f"sweep.{key}", f"must be a non-empty list of strings, got {value!r}")
    return tuple(dict.fromkeys(value))


def _weights(check: Any, value: Any, statistics: tuple[str, ...]) -> dict[str, tuple[float, ...]]:
    """A list (every statistic) or a table statistic -> list (statistics it omits: [1.0])."""
    def numbers(v: Any, where: str) -> tuple[float, ...]:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = [v]
        if not isinstance(v, list) or not v or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in v):
            raise check.fail(where, f"must be a list of numbers >= 0, got {v!r}")
        return tuple(dict.fromkeys(float(x) for x in v))

    if isinstance(value, dict):
        extra = sorted(set(value) - set(statistics))
        if extra:
            raise check.fail(f"sweep.style_weights.{extra[0]}",
                             f"not one of the sweep's statistics ({', '.join(statistics)})")
        return {s: numbers(value[s], f"sweep.style_weights.{s}") if s in value else (1.0,) for s in statistics}
    weights = numbers(value, "sweep.style_weights")
    return dict.fromkeys(statistics, weights)
