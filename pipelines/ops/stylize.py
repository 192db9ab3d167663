"""``stylize``: batched Gatys style transfer over (content, style) pairs -> cue-conflict stimuli named
``<shape><n>-<texture><m>.png``, with ``stimuli`` and ``loss_curves`` rows and the images in the store
(and, by default, exported as a folder that ``classify`` reads)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, ClassVar

from pipelines.ops.base import ItemInputError, Operation, WorkUnit, check_item, image_item, make_units
from pipelines.ops.checks import check_weights


@dataclass(frozen=True)
class StylizeConfig:
    content: tuple[str, ...]
    style: tuple[str, ...]
    transfer: dict  # nstcore.transfer.TransferConfig.to_dict()
    config_hash: str
    backbone: str = "vgg19"
    weights: str = "imagenet"
    pairs: str = "conflict"
    batch_size: int = 4
    export_dir: str | None = "{store}/exports/{run_id}"


class StylizeOp(Operation):
    name: ClassVar[str] = "stylize"
    config_type: ClassVar[type] = StylizeConfig
    tables: ClassVar[tuple[str, ...]] = ("loss_curves", "stimuli")

    def validate(self, config: StylizeConfig) -> None:
        check_weights(config.backbone, config.weights, seed=config.transfer.get("seed", 0))

    def plan(self, config: StylizeConfig) -> list[WorkUnit]:
        from pipelines.imagesets import collect_images
        from pipelines.ops.pairs import make_pairs

        pairs = make_pairs(collect_images(list(config.content)), collect_images(list(config.style)), config.pairs)
        items = [{**p, "content": dataclasses.asdict(p["content"]), "style": dataclasses.asdict(p["style"])}
                 for p in pairs]
        return make_units(items, unit_size=config.batch_size, key=lambda p: p["name"], salt=config.config_hash)

    def describe(self, item: dict) -> str:
        return f"{item['content']['path']} + {item['style']['path']}"

    def setup(self, config: StylizeConfig, device: str) -> None:
        from nstcore.backbones import create_backbone
        from nstcore.transfer import TransferConfig

        super().setup(config, device)
        self.transfer = TransferConfig(**config.transfer)
        model = create_backbone(config.backbone, weights=config.weights, seed=self.transfer.seed,
                                pooling=self.transfer.pooling, device=device)
        self.model = model.trimmed([*self.transfer.content_layers, *self.transfer.style_layers])
        self.reference = _reference_encoder(model)

    def bind(self, *, store: Any, run_id: str) -> None:
        super().bind(store=store, run_id=run_id)
        self.export_dir = self.config.export_dir.format(store=store.root, run_id=run_id) if self.config.export_dir else None

    def load(self, item: dict) -> Any:
        from pipelines.ops.imaging import load_any, load_square

        content, style = image_item(item["content"]), image_item(item["style"])
        tensors = []
        for it, loader in ((content, lambda p: load_square(p, self.transfer.size or 512)), (style, load_any)):
            try:
                check_item(it)
                tensors.append(loader(it.path))
            except Exception as exc:  # noqa: BLE001 - say which of the pair's two files failed
                raise ItemInputError(it.path, exc) from exc
        return content, style, tensors[0], tensors[1]

    def compute(self, batch: list[tuple[dict, Any]]) -> dict[str, list[dict]]:
        import torch

        from nstcore.transfer import stylize
        from pipelines.ops.imaging import png_bytes

        content = torch.stack([v[2] for _, v in batch]).to(self.device)
        styles = [v[3].to(self.device) for _, v in batch]
        result = stylize(self.model, content, styles, config=self.transfer)
        metrics = self._reference_metrics(result.images, content, styles)
        stat_options = json.dumps(dict(self.transfer.statistic_options), sort_keys=True)
        rows, curves = [], []
        for b, (pair, (c_item, s_item, _, _)) in enumerate(batch):
            data = png_bytes(result.images[b])
            rel = self.store.write_image(data)
            if self.export_dir:
                _export(self.export_dir, pair["name"], pair["shape"], data)
            rows.append({
                "stimulus_id": hashlib.sha256(data).hexdigest(), "content_image_id": c_item.image_id(),
                "style_image_id": s_item.image_id(), "content_image": c_item.image, "style_image": s_item.image,
                "image": pair["name"], "shape_category": pair["shape"], "texture_category": pair["texture"],
                "backbone": self.model.name, "weights_tag": self.model.weights_tag,
                "config_hash": self.config.config_hash, "seed": self.transfer.seed, "steps": self.transfer.steps,
                "final_content_loss": float(result.content_loss[b]), "final_style_loss": float(result.style_loss[b]),
                "path": rel, "box": self.transfer.box, "precision": self.transfer.precision,
                "optimized_content_loss": _at(result.optimized_content_loss, b),
                "optimized_style_loss": _at(result.optimized_style_loss, b),
                "statistic": self.transfer.statistic, "statistic_options": stat_options,
                "style_layers": list(self.transfer.style_layers), "style_weight": float(self.transfer.style_weight),
                "ref_layers": list(self.reference[1]) if self.reference else None,
                **{name: _at(values, b) for name, values in metrics.items()},
            })
            for step, total, content_l, style_l in result.curves:
                curves.append({"item_id": pair["name"], "kind": "transfer", "step": int(step),
                               "total_loss": float(total[b]), "content_loss": float(content_l[b]),
                               "style_loss": float(style_l[b])})
        return {"stimuli": rows, "loss_curves": curves}

    def _reference_metrics(self, images, content, styles) -> dict:
        """:func:`nstcore.reference_metrics.reference_metrics` of the batch (empty where the backbone has no
        default layers or the images are smaller than the SSIM window: the columns stay NULL)."""
        from nstcore.metrics import MetricError
        from nstcore.reference_metrics import reference_metrics
        from nstcore.transfer.images import resize_shorter, stack_styles

        if self.reference is None:
            return {}
        encoder, style_layers, content_layers = self.reference
        content = resize_shorter(content, self.transfer.size) if self.transfer.size else content
        height, width = content.shape[-2:]
        style_batch = stack_styles(styles, max(1, round(height * self.transfer.style_scale)),
                                   max(1, round(width * self.transfer.style_scale)))
        try:
            return reference_metrics(encoder, images.to(content.device), content, style_batch,
                                     style_layers=style_layers, content_layers=content_layers)
        except MetricError:
            return {}

    def finish(self, store: Any, run_id: str, config: StylizeConfig) -> dict:
        folder = config.export_dir.format(store=store.root, run_id=run_id) if config.export_dir else None
        return {"export_dir": folder}


def _export(folder: str, name: str, shape: str | None, data: bytes) -> None:
    """Write the stimulus as ``<folder>/<shape>/<name>`` atomically (temporary name, then rename)."""
    folder = os.path.join(folder, shape or "unlabelled")
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, os.path.join(folder, name))


def _reference_encoder(model: Any) -> tuple[Any, tuple[str, ...], tuple[str, ...]] | None:
    """(encoder trimmed to the yardstick's layers, style layers, content layers), or None where the
    backbone names no default transfer layers (own networks without them)."""
    from nstcore.errors import NstcoreError
    from nstcore.reference_metrics import reference_layers

    try:
        style_layers, content_layers = reference_layers(model)
    except (NstcoreError, AttributeError):
        return None
    return model.trimmed([*style_layers, *content_layers]), style_layers, content_layers


def _at(values, b: int) -> float | None:
    return None if values is None else float(values[b])
