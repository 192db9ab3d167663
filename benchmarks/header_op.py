"""The driver-memory benchmark's workload: an operation that reads image headers only (no model), and
:class:`PathItemsOp`, the base of such model-free trials-only operations (the tests' StallOp too)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from pipelines.ops.base import Operation, WorkUnit, image_item, image_item_dict, make_units


@dataclass(frozen=True)
class HeaderConfig:
    inputs: tuple[str, ...]
    unit_size: int = 64
    batch_size: int = 64


class PathItemsOp(Operation):
    """An operation over item dicts keyed by their ``"path"`` that writes ``trials`` rows only: ``plan``
    splits ``items(config)`` into units of ``config.unit_size``, the unit ids salted with ``salt``."""

    tables: ClassVar[tuple[str, ...]] = ("trials",)
    needs_torch: ClassVar[bool] = False
    salt: ClassVar[str]

    def items(self, config: Any) -> Iterable[dict]:
        raise NotImplementedError

    def plan(self, config: Any) -> Iterator[WorkUnit]:
        return make_units(self.items(config), unit_size=config.unit_size, key=lambda it: it["path"], salt=self.salt)


class HeaderOp(PathItemsOp):
    """Reads each image's header; one trials row per image (the driver-side benchmark's workload)."""

    name: ClassVar[str] = "header-bench"
    config_type: ClassVar[type] = HeaderConfig
    salt: ClassVar[str] = "bench"

    def items(self, config: HeaderConfig) -> Iterator[dict]:
        from pipelines.imagesets import iter_images

        return map(image_item_dict, iter_images(list(config.inputs), dataset="bench"))

    def load(self, item: dict) -> Any:
        from PIL import Image

        it = image_item(item)
        with Image.open(it.path) as img:
            return it, img.size

    def compute(self, batch: list[tuple[dict, Any]]) -> dict[str, list[dict]]:
        return {"trials": [{"source": "texprobe", "observer": "header-bench", "observer_kind": "model",
                            "image": it.image, "dataset": it.dataset, "shape_category": it.shape_category,
                            "texture_category": it.texture_category, "conflict": it.conflict,
                            "input_width": size[0], "input_height": size[1]} for _, (it, size) in batch]}
