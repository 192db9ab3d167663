"""TransferConfig: every option of one style transfer, validated, frozen and hashable."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from nstcore.errors import NstcoreError
from nstcore.pixelopt import BOX_POLICIES, PRECISIONS, PixelOptOptions, check_line_search_and_steps
from nstcore.stats import StyleStatistic, get_statistic

__all__ = ["TransferConfig", "TransferConfigError", "TransferInputError", "GATYS_STYLE_CHANNELS"]

_INITS = ("content", "noise", "style")
_OPTIMIZERS = ("lbfgs", "adam")
_DTYPES = ("float32", "bfloat16")
_POOLINGS = ("max", "avg")

#: VGG-19 channel counts of Gatys' style layers (Simonyan & Zisserman 2015, Table 1): ``1e3 / C^2``.
GATYS_STYLE_CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512, "relu5_1": 512}


class TransferConfigError(NstcoreError):
    """A TransferConfig option has an invalid value."""


class TransferInputError(NstcoreError):
    """Images passed to :func:`~nstcore.transfer.stylize` are not usable (shape, batch sizes, value range)."""


def _frozen(mapping: Mapping[str, float], *, name: str) -> Mapping[str, float]:
    if not isinstance(mapping, Mapping):
        raise TransferConfigError(f"TransferConfig.{name} must be a mapping layer -> weight, got {mapping!r}.")
    out: dict[str, float] = {}
    for key, value in mapping.items():
        if not isinstance(key, str) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TransferConfigError(
                f"TransferConfig.{name}: entries must be layer name -> finite weight, got {key!r}: {value!r}."
            )
        out[key] = float(value)
    return MappingProxyType(out)


@dataclass(frozen=True, kw_only=True)
class TransferConfig:
    """All options of one style transfer; ``config_hash()`` identifies it in the ``stimuli`` table.

    Layer defaults are Gatys' (VGG-19 ``relu4_2`` / ``relu1_1..relu5_1`` at ``1e3/C^2``); the
    ``gatys-geirhos`` preset (:data:`~nstcore.transfer.PRESETS`) adds Gatys' optimisation behaviour.
    ``statistic`` names any :mod:`nstcore.stats` plug-in, ``statistic_options`` its keyword options.
    ``box``: :data:`~nstcore.pixelopt.BOX_POLICIES` (default ``bounded``: optimise inside [0, 1], so the
    stored image is the optimised one; ``clip-at-end``: Gatys' code). ``clamp_every_step=True`` is the
    older spelling of ``box="clamp-each-step"``.
    ``precision``: ``float32`` or ``float64`` (network, statistics, losses and optimiser; float64 makes a
    batched run equal its single-pair runs). ``dtype="bfloat16"`` autocasts the network only.
    ``pooling`` must match the extractor passed to ``stylize`` (create it with that pooling).
    ``line_search``: ``None`` (fixed step, Gatys' code and torch's default; batched) or
    ``"strong_wolfe"`` (torch.optim.LBFGS one image at a time; needs ``box="clip-at-end"``).
    ``keep_best``: per image, return the evaluated iterate with the lowest finite objective when the
    last one is worse (fixed-step L-BFGS can end right after an overshoot). ``normalize_loss``: the
    optimiser minimises each image's objective divided by its initial value (same minimiser; L-BFGS's
    absolute thresholds then do not depend on the activation scale). Reported losses are never
    normalised. ``history_size``, ``tolerance_grad``, ``tolerance_change``: L-BFGS options.
    ``preset``: the preset the config came from (set by :func:`~nstcore.transfer.preset`).
    """

    content_layers: Mapping[str, float] = field(default_factory=lambda: {"relu4_2": 1.0})
    style_layers: Mapping[str, float] = field(
        default_factory=lambda: {layer: 1e3 / c**2 for layer, c in GATYS_STYLE_CHANNELS.items()}
    )
    content_weight: float = 1.0
    style_weight: float = 1.0
    statistic: str = "gram"
    statistic_options: Mapping[str, Any] = field(default_factory=lambda: {"normalization": "hw"})
    tv_weight: float = 0.0
    init: str = "content"
    optimizer: str = "lbfgs"
    lr: float = 1.0
    steps: int = 500
    size: int | None = 512
    style_scale: float = 1.0
    luminance_only: bool = False
    pooling: str = "max"
    seed: int = 0
    record_every: int = 0
    dtype: str = "float32"
    precision: str = "float32"
    channels_last: bool = False
    line_search: str | None = None
    keep_best: bool = True
    normalize_loss: bool = True
    box: str = "bounded"
    clamp_every_step: bool = False
    history_size: int = 100
    tolerance_grad: float = 1e-7
    tolerance_change: float = 1e-9
    preset: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "content_layers", _frozen(self.content_layers, name="content_layers"))
        object.__setattr__(self, "style_layers", _frozen(self.style_layers, name="style_layers"))
        if not isinstance(self.statistic_options, Mapping):
            raise TransferConfigError(
                f"TransferConfig.statistic_options must be a mapping, got {self.statistic_options!r}."
            )
        object.__setattr__(self, "statistic_options", MappingProxyType(dict(self.statistic_options)))
        if self.clamp_every_step:
            object.__setattr__(self, "box", "clamp-each-step")
        if not self.content_layers and not self.style_layers:
            raise TransferConfigError("TransferConfig: give content_layers and/or style_layers.")
        self._check_choice("init", _INITS)
        self._check_choice("optimizer", _OPTIMIZERS)
        self._check_choice("dtype", _DTYPES)
        self._check_choice("precision", PRECISIONS)
        self._check_choice("pooling", _POOLINGS)
        self._check_choice("box", BOX_POLICIES)
        if self.precision == "float64" and self.dtype != "float32":
            raise TransferConfigError(
                f"TransferConfig: precision='float64' runs everything in float64; drop dtype={self.dtype!r} (autocast)."
            )
        check_line_search_and_steps(self.line_search, self.optimizer, self.box, self.steps, prefix="TransferConfig.",
                                    error=TransferConfigError)
        if self.size is not None and (not isinstance(self.size, int) or self.size < 8):
            raise TransferConfigError(f"TransferConfig.size must be None or an int >= 8, got {self.size!r}.")
        for name in ("lr", "style_scale"):
            if not getattr(self, name) > 0:
                raise TransferConfigError(f"TransferConfig.{name} must be > 0, got {getattr(self, name)!r}.")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise TransferConfigError(f"TransferConfig.{name} must be a finite number >= 0, got {value!r}.")
        if self.record_every < 0 or self.history_size < 1:
            raise TransferConfigError(
                f"TransferConfig: record_every must be >= 0 and history_size >= 1, got "
                f"{self.record_every!r} and {self.history_size!r}."
            )
        self.build_statistic()  # fail now on an unknown statistic or bad options

    def _check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in choices:
            raise TransferConfigError(f"TransferConfig.{name} must be one of {choices}, got {value!r}.")

    def build_statistic(self) -> StyleStatistic:
        """The configured :class:`~nstcore.stats.StyleStatistic`."""
        try:
            return get_statistic(self.statistic, **dict(self.statistic_options))
        except TypeError as exc:
            raise TransferConfigError(
                f"TransferConfig: statistic {self.statistic!r} does not accept options "
                f"{dict(self.statistic_options)!r} ({exc})."
            ) from None

    def optimizer_options(self) -> PixelOptOptions:
        """The :class:`~nstcore.pixelopt.PixelOptOptions` of this transfer."""
        return PixelOptOptions(
            optimizer=self.optimizer, steps=self.steps, lr=self.lr, box=self.box, keep_best=self.keep_best,
            normalize_loss=self.normalize_loss, line_search=self.line_search, history_size=self.history_size,
            tolerance_grad=self.tolerance_grad, tolerance_change=self.tolerance_change,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every option."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in ("content_layers", "style_layers", "statistic_options"):
            out[key] = dict(out[key])
        return out

    def config_hash(self) -> str:
        """sha256 (hex) of the canonical JSON of :meth:`to_dict` (sorted keys, floats by ``repr``)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def replace(self, **overrides: Any) -> "TransferConfig":
        """A copy with ``overrides`` applied (validated)."""
        return dataclasses.replace(self, **overrides)

    def __hash__(self) -> int:
        return hash(self.config_hash())

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"TransferConfig({body})"
