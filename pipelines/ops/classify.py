"""``classify``: labelled images -> 16-way decisions (``trials``), one ImageNet classifier per actor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pipelines.ops.base import ImageOperation, check_item, image_item
from pipelines.ops.checks import check_weights


@dataclass(frozen=True)
class ClassifyConfig:
    inputs: tuple[str, ...]
    model: str = "efficientnet_lite0"
    weights: str = "imagenet"
    seed: int = 0
    dataset: str | None = None
    #: how stimuli become classifier inputs (nstcore.backbones.RESIZE_POLICIES): 'model' = the weights' own
    #: resize + centre crop, except that an image already at the input size is used as it is.
    resize: str = "model"
    #: CSV mapping the network's outputs to the 16 categories (nstcore.label_maps); None: ImageNet-1k or 16 outputs
    label_map: str | None = None
    #: sha256 of the label-map file (recorded in the manifest; set by validate's caller, see classify_config)
    label_map_sha256: str | None = None
    batch_size: int = 32
    unit_size: int = 64
    bf16: bool = False
    channels_last: bool = False


class ClassifyOp(ImageOperation):
    """Classifies images into the 16 Geirhos categories (model-vs-human rule, nstcore.classify)."""

    name: ClassVar[str] = "classify"
    config_type: ClassVar[type] = ClassifyConfig
    tables: ClassVar[tuple[str, ...]] = ("trials",)

    def validate(self, config: ClassifyConfig) -> None:
        check_weights(config.model, config.weights, seed=config.seed)
        if config.label_map:
            from nstcore.label_maps import read_label_map

            read_label_map(config.label_map)  # a bad map is one line here, not a failed actor

    def setup(self, config: ClassifyConfig, device: str) -> None:
        from nstcore.backbones import create_backbone

        super().setup(config, device)
        model = create_backbone(config.model, weights=config.weights, seed=config.seed, device=device,
                                resize=config.resize, label_map=config.label_map)
        self.model = self.memory_format(model)

    def load(self, item: dict) -> Any:
        from nstcore.images import MIN_SIDE
        from pipelines.remote_inputs import open_image

        it = image_item(item)
        check_item(it)
        tensor, record = self.model.preprocessing.prepare_recorded(open_image(it.path, min_side=MIN_SIDE))
        return it, it.image_id(), tensor, record

    def _probabilities(self, x):
        import torch

        with torch.inference_mode():
            return torch.softmax(self.forward(x, self.model.logits).float(), dim=1)

    def compute(self, batch: list[tuple[dict, Any]]) -> dict[str, list[dict]]:
        import torch

        from analysis.discriminability import texture_source_from_name
        from nstcore.classify import classify_probabilities

        loaded = [value for _, value in batch]
        probs = self._probabilities(torch.stack([t for _, _, t, _ in loaded]))
        outcomes = classify_probabilities(
            probs.cpu(),
            shape_categories=[it.shape_category for it, *_ in loaded],
            texture_categories=[it.texture_category for it, *_ in loaded],
            label_map=self.model.label_map, class_names=self.model.class_names,
        )
        rows = []
        for (it, image_id, _, record), out in zip(loaded, outcomes):
            rows.append({
                "source": "texprobe", "dataset": it.dataset, "observer": self.model.name, "observer_kind": "model",
                "image": it.image, "image_id": image_id, "shape_category": it.shape_category,
                "texture_category": it.texture_category, "conflict": it.conflict, "decision": out.decision,
                "probs16": out.probs16, "top5": out.top5, "shape_rank": out.shape_rank,
                "texture_rank": out.texture_rank, "weights_tag": self.model.weights_tag,
                "weights_sha256": self.model.weights_sha256, **record,
                "texture_source": texture_source_from_name(it.image) if it.texture_category else None,
            })
        return {"trials": rows}
