"""``visualize``: activation maximisation of many objectives (channels, neurons, layers, directions, channel
clusters) of one network, B at a time per actor (:func:`nstcore.visualize.render`), each image stored and
one ``visualizations`` row per objective.

Objectives are the :mod:`nstcore.visualize.objectives` specs (``channel:LAYER:C``, ``neuron:LAYER:C``,
``layer:LAYER``, ``direction:LAYER:FILE.npy``, ``channels:LAYER:C1,C2,...``,
``channels-correlation:LAYER:C1,C2,...``) and ``all-channels:LAYER`` (one channel objective per channel of
the layer, expanded from the backbone's feature info when the run is planned). Objective ``k`` of the run
starts from seed ``seed + k``: the same objective and seed give the same image whatever else is in its batch
(Olah et al., Distill 2017; batched per image as tested in ``tests/test_visualize_core.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from pipelines.ops.base import Operation, WorkUnit, config_hash, make_units
from pipelines.ops.checks import check_weights


@dataclass(frozen=True)
class VisualizeConfig:
    objectives: tuple[str, ...]
    backbone: str = "efficientnet_lite0"
    weights: str = "imagenet"
    size: int = 128
    steps: int = 512
    lr: float = 0.05
    param: str = "fft"
    transforms: str = "standard"
    greyscale: bool = False
    init_image: str | None = None
    seed: int = 0
    batch_size: int = 8
    bf16: bool = False           # the network under bf16 autocast (objective, image and Adam stay float32)
    channels_last: bool = False  # the network in channels_last memory format


#: Objectives resolved from the store's ``gram_clusters`` (``texprobe gram-clusters``) -> the kind they become.
CLUSTER_KINDS = {"gram-cluster": "channels", "cluster-correlation": "channels-correlation"}


def expand_objectives(backbone: str, specs: tuple[str, ...] | list[str], *,
                      store_root: str | None = None) -> tuple[str, ...]:
    """``all-channels:LAYER`` -> ``channel:LAYER:0`` … ``channel:LAYER:C-1``; ``gram-cluster:LAYER:K`` ->
    ``channels:LAYER:<cluster K's channels>`` and ``cluster-correlation:LAYER:K`` ->
    ``channels-correlation:LAYER:<…>`` (the latest clusters in the store); every spec parsed and its layer
    and channels checked against the backbone (a one-line error naming the spec otherwise)."""
    from nstcore.backbones import get_backbone_spec
    from nstcore.visualize import parse_objective
    from nstcore.visualize.objectives import ObjectiveError

    spec = get_backbone_spec(backbone)
    out: list[str] = []
    for text in specs:
        kind, _, rest = text.partition(":")
        layer = rest.partition(":")[0]
        if layer and layer not in spec.layer_names:
            raise ObjectiveError(f"objective {text!r}: {backbone} has no layer {layer!r}; its layers are "
                                 f"{', '.join(spec.layer_names)} (see `texprobe models {backbone} --layers`)")
        if kind == "all-channels":
            if rest != layer:
                raise ObjectiveError(f"objective {text!r}: write all-channels:LAYER")
            out += [f"channel:{layer}:{c}" for c in range(spec.channels([layer])[layer])]
            continue
        if kind in CLUSTER_KINDS:
            from pipelines.jobs.gram_clusters import cluster_members

            arg = rest.partition(":")[2]
            if not arg.isdigit() or store_root is None:
                raise ObjectiveError(f"objective {text!r}: write {kind}:LAYER:K (K a cluster number, from 0) with "
                                     "a store that holds `texprobe gram-clusters` results")
            members = cluster_members(store_root, backbone=backbone, layer=layer, cluster=int(arg))
            text = f"{CLUSTER_KINDS[kind]}:{layer}:{','.join(map(str, members))}"
        objective = parse_objective(text)
        objective.check(spec.channels([objective.layer])[objective.layer])
        out.append(text)
    if not out:
        raise ObjectiveError("no objectives given: e.g. channel:LAYER:C, layer:LAYER, all-channels:LAYER")
    return tuple(out)


def visualize_config(*, backbone: str, objectives: list[str], store_root: str | None = None,
                     **options: Any) -> VisualizeConfig:
    return VisualizeConfig(backbone=backbone, objectives=expand_objectives(backbone, objectives, store_root=store_root),
                           **options)


class VisualizeOp(Operation):
    name: ClassVar[str] = "visualize"
    config_type: ClassVar[type] = VisualizeConfig
    tables: ClassVar[tuple[str, ...]] = ("visualizations",)
    load_threads: int = 0  # nothing to decode (a start image is read once, in setup)

    def validate(self, config: VisualizeConfig) -> None:
        from nstcore.visualize.params import PARAMETERISATIONS
        from nstcore.visualize.transforms import TRANSFORMS
        from pipelines.errors import OptionError

        check_weights(config.backbone, config.weights, seed=config.seed)
        expand_objectives(config.backbone, config.objectives)
        if config.param not in PARAMETERISATIONS or config.transforms not in TRANSFORMS:
            raise OptionError(f"--param {config.param!r} / --transforms {config.transforms!r}: use one of "
                              f"{', '.join(PARAMETERISATIONS)} / {', '.join(TRANSFORMS)}")
        if config.init_image is not None:
            from nstcore.images import load_image

            load_image(config.init_image)  # an unreadable start image is an error before Ray starts

    def plan(self, config: VisualizeConfig) -> Iterator[WorkUnit]:
        items = ({"objective": spec, "index": k, "seed": config.seed + k} for k, spec in enumerate(config.objectives))
        return make_units(items, unit_size=config.batch_size, key=lambda it: f"{it['index']}:{it['objective']}",
                          salt=config_hash(config))

    def describe(self, item: dict) -> str:
        return item["objective"]

    def setup(self, config: VisualizeConfig, device: str) -> None:
        from nstcore.backbones import create_backbone
        from nstcore.backbones.fold_batchnorm import fold_batchnorm

        super().setup(config, device)
        model = create_backbone(config.backbone, weights=config.weights, seed=config.seed, device=device)
        self.model = fold_batchnorm(model.eval())  # the same function, 1.4x faster per step (Lite0)
        if config.channels_last:
            import torch

            self.model = self.model.to(memory_format=torch.channels_last)
        self.init = None
        self.init_image_id = None
        if config.init_image is not None:
            import hashlib

            from pipelines.ops.imaging import load_square

            with open(config.init_image, "rb") as f:
                self.init_image_id = hashlib.sha256(f.read()).hexdigest()
            self.init = load_square(config.init_image, config.size)[None]

    def load(self, item: dict) -> Any:
        from nstcore.visualize import parse_objective

        return parse_objective(item["objective"])

    def compute(self, batch: list[tuple[dict, Any]]) -> dict[str, list[dict]]:
        from nstcore.visualize import render, with_precision
        from pipelines.ops.imaging import png_bytes

        cfg = self.config
        objectives = [objective for _, objective in batch]
        init = None if self.init is None else self.init.expand(len(batch), -1, -1, -1)
        model = with_precision(lambda x, layers: self.model(self.model.normalize(x), layers),  # images in [0, 1]
                               bf16=cfg.bf16, channels_last=cfg.channels_last)
        result = render(model, objectives, size=cfg.size, steps=cfg.steps, lr=cfg.lr, param=cfg.param,
                        transforms=cfg.transforms, greyscale=cfg.greyscale, init=init,
                        seeds=[item["seed"] for item, _ in batch], device=self.device)
        rows = []
        for b, (item, objective) in enumerate(batch):
            payload = png_bytes(result.images[b])
            path = self.store.write_image(payload)
            rows.append({
                "backbone": self.model.name, "weights_tag": self.model.weights_tag,
                "weights_sha256": self.model.weights_sha256, "objective": item["objective"], "kind": objective.kind,
                "layer": objective.layer, "layer_index": self.model.layer_index(objective.layer),
                "channels": list(objective.channels), "param": cfg.param, "transforms": cfg.transforms,
                "greyscale": cfg.greyscale, "precision": "bfloat16" if cfg.bf16 else "float32", "size": cfg.size,
                "steps": cfg.steps, "lr": cfg.lr, "seed": item["seed"],
                "init_image_id": self.init_image_id, "value_start": float(result.value_start[b]),
                "value_end": float(result.value_end[b]), "image_id": path.rsplit("/", 1)[-1].split(".")[0],
                "path": path,
            })
        return {"visualizations": rows}
