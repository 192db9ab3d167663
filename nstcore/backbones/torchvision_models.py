"""``torchvision:<arch>``: every torchvision classification architecture, layers = graph node names.

Names: ``torchvision.models.list_models(module=torchvision.models)``. Weights: ``random`` (seeded),
``imagenet`` (the arch's ``DEFAULT`` weights) or a weights-enum member name (``IMAGENET1K_V1``) when the
checkpoint is in the torch hub cache (``torch.hub.get_dir()/checkpoints``; never downloaded here), or a
local state-dict file (a bare file name is also looked up in that cache) (a torchvision checkpoint as the hub caches it, or your own training's
``state_dict()``; the number of outputs is read from the file, so a 16-way fine-tuned head works).
Preprocessing comes from the weights enum's ``transforms()`` (crop, resize, interpolation, mean, std);
a stimulus already at the input size is never resized or cropped (:mod:`.preprocessing`).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import nstcore  # noqa: F401  (torchvision shim first)
import torch
import torchvision
from torch import nn
from torchvision.models import get_model_builder, get_model_weights

from nstcore.backbones.graph import GraphFeatureExtractor, NodeFeatureInfo, graph_node_names, node_shapes
from nstcore.backbones.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from nstcore.backbones.weights import (
    TorchHubWeights,
    WeightsStatus,
    check_hash_prefix,
    load_state_dict_strict,
    read_state_dict,
)
from nstcore.errors import UnknownBackboneError, WeightsNotFoundError

__all__ = ["PREFIX", "torchvision_architectures", "torchvision_spec", "create_torchvision"]

PREFIX = "torchvision:"
#: what torchvision's builders set when they load published weights (inception/googlenet expect it)
_WEIGHTS_KWARGS: dict[str, dict[str, Any]] = {"inception_v3": {"transform_input": True},
                                              "googlenet": {"transform_input": True}}


def torchvision_architectures() -> list[str]:
    """The classification architectures of this torchvision, sorted."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


class CachedHubWeights(TorchHubWeights):
    """A torchvision checkpoint used only when already in the hub cache (no download at run time)."""

    def status(self) -> WeightsStatus:
        loc = self.location()
        present = loc.is_file()
        detail = (f"{self.description}; cached" if present else
                  f"{self.description}; not cached: copy {self.url} to {loc}")
        return WeightsStatus(present=present, source=self.source, location=str(loc), detail=detail)

    def fetch(self, *, backbone: str, allow_download: bool = True) -> Path:
        loc = self.location()
        if not loc.is_file():
            raise WeightsNotFoundError(
                f"weights for {backbone!r} are not in the torch hub cache ({str(loc)!r}); texprobe does not "
                f"download at run time. Copy {self.url} to that path, pass --weights FILE, or use --weights random."
            )
        return loc


def _enums(arch: str) -> dict[str, Any]:
    try:
        w = get_model_weights(arch)
    except (ValueError, KeyError):
        return {}
    members = {m.name: m for m in w}
    members["imagenet"] = w.DEFAULT
    return members


def _preprocessing(enum: Any | None) -> Preprocessing:
    if enum is None:
        return Preprocessing(mean=IMAGENET_MEAN, std=IMAGENET_STD, input_size=224, resize_size=256)
    return Preprocessing.from_torchvision(enum)


def _build(arch: str, *, meta: bool, **kwargs: Any) -> nn.Module:
    builder = get_model_builder(arch)
    if meta:
        try:
            with torch.device("meta"):
                return builder(weights=None, **kwargs)
        except (NotImplementedError, RuntimeError):
            pass  # builders that compute with tensors (regnet) cannot run on meta
    return builder(weights=None, **kwargs)


@lru_cache(maxsize=None)
def _node_names(arch: str) -> tuple[str, ...]:
    return graph_node_names(_build(arch, meta=True).eval(), name=PREFIX + arch)


def _arch(name: str) -> str:
    arch = name[len(PREFIX):]
    if arch not in torchvision_architectures():
        raise UnknownBackboneError(name, [PREFIX + a for a in torchvision_architectures()])
    return arch


@lru_cache(maxsize=None)
def torchvision_spec(name: str):
    """The :class:`~nstcore.backbones.registry.BackboneSpec` of ``torchvision:<arch>`` (layers traced once)."""
    from nstcore.backbones.registry import BackboneSpec  # registry imports this module lazily

    arch = _arch(name)
    enums = _enums(arch)
    default = enums.get("imagenet")
    prep = _preprocessing(default)

    def probe(nodes, leaves=None):
        return node_shapes(_build(arch, meta=True).eval(), nodes, input_size=prep.input_size, leaves=leaves)

    info = NodeFeatureInfo(_node_names(arch), backbone=name, probe=probe)
    sources = {tag: CachedHubWeights(url=e.url, description=f"torchvision {type(e).__name__}.{e.name}")
               for tag, e in enums.items()}
    return BackboneSpec(
        name=name, family="torchvision", feature_info=info, preprocessing=prep, has_classifier=True,
        build=lambda: _build(arch, meta=False), split=_no_split, weight_sources=sources, poolings=("max",),
        description=f"torchvision {arch}" + (f" ({default.name} weights)" if default is not None else ""),
        create=create_torchvision,
    )


def _no_split(model: nn.Module, *, pooling: str):
    raise NotImplementedError("graph backbones are not split into a sequential body")


def hub_cached(weights: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """A bare file name (``resnet18-f37072fd.pth``) absent here but present in the torch hub cache ->
    its path there; anything else unchanged."""
    if isinstance(weights, str) and os.sep not in weights and "/" not in weights and not Path(weights).exists():
        cached = Path(torch.hub.get_dir()) / "checkpoints" / weights
        if Path(weights).suffix and cached.is_file():
            return str(cached)
    return weights


def _enum_for_file(enums: dict[str, Any], path: Path) -> Any | None:
    for tag, e in enums.items():
        if tag != "imagenet" and os.path.basename(e.url) == path.name:
            return e
    return None


def _num_classes(model: nn.Module, sd: dict[str, torch.Tensor]) -> int | None:
    """Output count stored in ``sd``: the first dim of the last tensor whose model counterpart has 1000."""
    for key, t in reversed(list(model.state_dict().items())):
        if t.ndim >= 1 and t.shape[0] == 1000 and key in sd:
            return int(sd[key].shape[0])
    return None


def _load_file(arch: str, name: str, path: Path, kwargs: dict[str, Any]) -> nn.Module:
    sd = read_state_dict(path)
    probe = _build(arch, meta=True, **kwargs)
    n = _num_classes(probe, sd)
    if n is not None and n != 1000:
        kwargs = {**kwargs, "num_classes": n}
    model = _build(arch, meta=True, **kwargs)
    on_meta = any(t.is_meta for t in model.state_dict().values())
    persistent = set(model.state_dict())
    if on_meta and any(b not in persistent for b, _ in model.named_buffers()):
        model, on_meta = _build(arch, meta=False, **kwargs), False  # non-persistent buffers need real init
    load_state_dict_strict(model, sd, source=str(path), backbone=name, assign=on_meta)
    return model


def create_torchvision(spec, *, weights: str | os.PathLike[str], seed: int, preprocessing: str,
                       resize: str, allow_download: bool) -> GraphFeatureExtractor:
    """Build ``torchvision:<arch>`` with ``weights`` (see module docstring) as a GraphFeatureExtractor."""
    from nstcore.backbones.registry import resolve_weights

    arch = spec.name[len(PREFIX):]
    enums = _enums(arch)
    resolved = resolve_weights(spec, hub_cached(weights), seed=seed, allow_download=False)
    if resolved.path is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _build(arch, meta=False)
        enum, fmt = enums.get("imagenet"), "random"
    else:
        check_hash_prefix(resolved.path, resolved.sha256)
        enum = enums.get(str(weights)) or _enum_for_file(enums, resolved.path)
        kwargs = _WEIGHTS_KWARGS.get(arch, {}) if enum is not None else {}
        model = _load_file(arch, spec.name, resolved.path, kwargs)
        fmt = "torchvision" if enum is not None else "state-dict"
        enum = enum or enums.get("imagenet")
    prep = spec.get_preprocessing(preprocessing) if preprocessing != "auto" else _preprocessing(enum)
    n_out = _outputs(model)
    names = enum.meta.get("categories") if enum is not None and n_out == 1000 else None
    return GraphFeatureExtractor(
        name=spec.name, family="torchvision", model=model.eval(), node_names=spec.layer_names,
        preprocessing=prep.with_resize(resize), weights_tag=resolved.tag, weights_sha256=resolved.sha256,
        weights_format=fmt, class_names=names,
    )


def _outputs(model: nn.Module) -> int | None:
    last = [t for t in model.state_dict().values() if t.ndim >= 1]
    return int(last[-1].shape[0]) if last else None

