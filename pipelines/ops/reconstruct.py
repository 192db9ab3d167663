"""``reconstruct``: per-layer content reconstructions or texture syntheses of an image set
(nstcore.reconstruct), judged by a classifier; writes ``reconstructions``, ``loss_curves`` and images."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterator
from typing import Any, ClassVar

from pipelines.ops.base import Operation, WorkUnit, check_item, config_hash, image_item, image_item_dict, make_units
from pipelines.ops.checks import check_weights, parse_layers


@dataclass(frozen=True)
class ReconstructConfig:
    inputs: tuple[str, ...]
    layer_sets: tuple[tuple[str, ...], ...]
    backbone: str = "vgg19"
    weights: str = "imagenet"
    kind: str = "content"
    steps: int = 200
    size: int = 128
    seed: int = 0
    pooling: str = "max"
    optimizer: str = "lbfgs"
    tv_weight: float = 0.0
    record_every: int = 10
    classifier: str | None = "efficientnet_lite0"
    batch_size: int = 4
    #: nstcore.pixelopt: optimise inside [0, 1] ('bounded', default) or Gatys' 'clip-at-end'
    box: str = "bounded"
    #: 'float64' makes a batched run equal its single-image runs
    precision: str = "float32"
    #: the style statistic a texture synthesis matches (``NAME[:VALUE]``, `texprobe stats`)
    statistic: str = "gram"
    resize_policy: str = "shorter side to size, centre crop to size x size"


def layer_sets(backbone: str, kind: str, layers: str | None) -> tuple[tuple[str, ...], ...]:
    """Content: one reconstruction per listed layer. Texture: growing sets [l1], [l1, l2], … of the
    listed layers (Gatys et al. 2015, Fig. 1). Default: the backbone's reconstruction layers."""
    names = parse_layers(backbone, layers, role="reconstruction")
    if kind == "content":
        return tuple((n,) for n in names)
    return tuple(tuple(names[: i + 1]) for i in range(len(names)))


def reconstruct_config(*, backbone: str, kind: str, layers: str | None, **options: Any) -> ReconstructConfig:
    return ReconstructConfig(backbone=backbone, kind=kind, layer_sets=layer_sets(backbone, kind, layers), **options)


class ReconstructOp(Operation):
    name: ClassVar[str] = "reconstruct"
    config_type: ClassVar[type] = ReconstructConfig
    tables: ClassVar[tuple[str, ...]] = ("loss_curves", "reconstructions")

    def validate(self, config: ReconstructConfig) -> None:
        from nstcore.stats import statistic_from_spec
        from pipelines.errors import OptionError

        check_weights(config.backbone, config.weights, seed=config.seed)
        statistic_from_spec(config.statistic)  # an unknown name or option: one line, before Ray starts
        if config.statistic != "gram" and config.kind != "texture":
            raise OptionError(f"--statistic {config.statistic}: a statistic is matched by texture synthesis; "
                              "add --kind texture (content reconstructions match activations)")
        if config.classifier:
            check_weights(config.classifier, "imagenet")

    def plan(self, config: ReconstructConfig) -> Iterator[WorkUnit]:
        from pipelines.imagesets import iter_images

        items = map(image_item_dict, iter_images(list(config.inputs)))
        return make_units(items, unit_size=config.batch_size, key=lambda it: it["path"], salt=config_hash(config))

    def setup(self, config: ReconstructConfig, device: str) -> None:
        from nstcore.backbones import create_backbone

        super().setup(config, device)
        model = create_backbone(config.backbone, weights=config.weights, seed=config.seed, pooling=config.pooling,
                                device=device)
        self.model = model.trimmed([layer for group in config.layer_sets for layer in group])
        self.classifier = create_backbone(config.classifier, device=device) if config.classifier else None

    def load(self, item: dict) -> Any:
        from pipelines.ops.imaging import load_square

        it = image_item(item)
        check_item(it)
        return it, it.image_id(), load_square(it.path, self.config.size)

    def _decisions(self, images, items) -> list[str | None]:
        import torch

        from nstcore.classify import classify_probabilities
        from nstcore.images import tensor_to_pil

        if self.classifier is None:
            return [None] * len(items)
        prep = self.classifier.preprocessing
        with torch.inference_mode():
            x = torch.stack([prep.prepare(tensor_to_pil(img.cpu())) for img in images]).to(self.device)
            probs = torch.softmax(self.classifier.logits(self.classifier.normalize(x)).float(), dim=1).cpu()
        outs = classify_probabilities(probs, shape_categories=[it.shape_category for it in items],
                                      texture_categories=[it.texture_category for it in items])
        return [o.decision for o in outs]

    def compute(self, batch: list[tuple[dict, Any]]) -> dict[str, list[dict]]:
        import torch

        from nstcore.reconstruct import reconstruction_series
        from pipelines.ops.imaging import png_bytes

        cfg = self.config
        items = [v[0] for _, v in batch]
        x = torch.stack([v[2] for _, v in batch]).to(self.device)
        from nstcore.stats import statistic_from_spec

        statistic = statistic_from_spec(cfg.statistic) if cfg.kind == "texture" else None
        results = reconstruction_series(self.model, x, kind=cfg.kind, layer_sets=[list(s) for s in cfg.layer_sets],
                                        statistic=statistic,
                                        steps=cfg.steps, seed=cfg.seed, optimizer=cfg.optimizer,
                                        tv_weight=cfg.tv_weight, record_every=cfg.record_every, box=cfg.box,
                                        precision=cfg.precision)
        rows, curves = [], []
        for res in results:
            decisions = self._decisions(res.images, items)
            label = "+".join(res.layers)
            for b, (_, (it, image_id, _)) in enumerate(batch):
                rel = self.store.write_image(png_bytes(res.images[b]))
                rows.append({
                    "image_id": image_id, "image": it.image, "backbone": self.model.name,
                    "weights_tag": self.model.weights_tag,
                    "weights_sha256": self.model.weights_sha256, "kind": res.kind, "layers": list(res.layers),
                    "layer": label, "layer_index": self.model.layer_index(res.layers[-1]), "steps": res.steps,
                    "seed": cfg.seed, "feature_error": float(res.feature_error[b]),
                    "pixel_mse": float(res.pixel_mse[b]), "psnr": float(res.psnr[b]), "ssim": float(res.ssim[b]),
                    "n_iter": int(res.n_iter[b]), "dataset": it.dataset, "shape_category": it.shape_category,
                    "texture_category": it.texture_category,
                    "classifier": self.classifier.name if self.classifier else None, "decision": decisions[b],
                    "path": rel, "box": res.box, "precision": res.precision,
                    "statistic": cfg.statistic if res.kind == "texture" else None,
                    "stored_loss": None if res.stored_loss is None else float(res.stored_loss[b]),
                    "optimized_loss": None if res.optimized_loss is None else float(res.optimized_loss[b]),
                })
                for step, losses in res.history:
                    curves.append({"item_id": f"{it.image}:{res.kind}:{label}", "kind": res.kind, "step": int(step),
                                   "total_loss": float(losses[b]),
                                   "content_loss": float(losses[b]) if res.kind == "content" else None,
                                   "style_loss": float(losses[b]) if res.kind == "texture" else None})
        return {"reconstructions": rows, "loss_curves": curves}
