"""``exemplars``: dataset exemplars (issue 22 part 3) - for each channel of a layer, the images (and the
position) that activate it most, over a whole image set in one distributed pass.

Each unit keeps, per layer and channel, only its ``top`` images by the channel's maximum activation over
positions (Olah et al., Distill 2017, "dataset examples"; Zeiler & Fergus 2014 show the patch around the
maximum) and its ``top`` images by the channel's mean activation (the ``channel`` objective's measure):
every image of the set's top ``top`` by either is in its own unit's, so the view ``channel_exemplars``
(``rank`` by peak, ``rank_mean`` by mean, over every unit of the latest run) is exact while a unit writes
at most ``2 x top x channels`` rows per layer. The position (``y``, ``x`` in the feature map, with its ``stride``) locates
the patch in the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pipelines.ops.base import ImageOperation
from pipelines.ops.checks import check_weights, parse_layers


@dataclass(frozen=True)
class ExemplarsConfig:
    inputs: tuple[str, ...]
    layers: tuple[str, ...]
    channels: tuple[int, ...] = ()      # empty: every channel
    top: int = 9
    backbone: str = "efficientnet_lite0"
    weights: str = "imagenet"
    seed: int = 0
    size: int = 224
    dataset: str | None = None
    batch_size: int = 16
    unit_size: int = 64
    bf16: bool = False
    channels_last: bool = False


def exemplars_config(*, backbone: str, layers: str, channels: str | None, **options: Any) -> ExemplarsConfig:
    """Layers ('a,b' or 'all') and channels ('all', '3,7,12') checked against the backbone's feature info."""
    from nstcore.backbones import get_backbone_spec
    from pipelines.errors import OptionError

    names = tuple(parse_layers(backbone, layers, role="texture"))
    chosen: tuple[int, ...] = ()
    if channels and channels.strip() != "all":
        try:
            chosen = tuple(sorted({int(c) for c in channels.split(",") if c.strip()}))
        except ValueError:
            raise OptionError(f"--channels {channels!r}: give 'all' or comma-separated channel numbers") from None
        widths = get_backbone_spec(backbone).channels(list(names))
        narrow = min(widths.values())
        if chosen and (chosen[0] < 0 or chosen[-1] >= narrow):
            raise OptionError(f"--channels {channels!r}: the layers {dict(widths)} have 0..{narrow - 1} in common")
    return ExemplarsConfig(backbone=backbone, layers=names, channels=chosen, **options)


#: The patch shown for a peak: this many feature-map steps (strides) wide, centred on the peak's cell (a
#: stand-in for the receptive field, which in these networks spans far more than the input it mostly sees).
PATCH_STRIDES = 4


def _patch(y: int, x: int, stride: int, height: int, width: int) -> dict[str, int]:
    """The patch box in input pixels (left, top, right, bottom), clipped to the image."""
    half = PATCH_STRIDES * stride // 2
    cy, cx = y * stride + stride // 2, x * stride + stride // 2
    return {"box_left": max(0, cx - half), "box_top": max(0, cy - half), "box_right": min(width, cx + half),
            "box_bottom": min(height, cy + half)}


class ExemplarsOp(ImageOperation):
    name: ClassVar[str] = "exemplars"
    config_type: ClassVar[type] = ExemplarsConfig
    tables: ClassVar[tuple[str, ...]] = ("exemplars",)

    def validate(self, config: ExemplarsConfig) -> None:
        from pipelines.errors import OptionError

        check_weights(config.backbone, config.weights, seed=config.seed)
        if config.top < 1:
            raise OptionError(f"--top {config.top}: keep at least 1 image per channel")

    def setup(self, config: ExemplarsConfig, device: str) -> None:
        from nstcore.backbones import create_backbone
        from nstcore.backbones.fold_batchnorm import fold_batchnorm

        super().setup(config, device)
        model = create_backbone(config.backbone, weights=config.weights, seed=config.seed, device=device)
        # batch norms folded into their convolutions: the same features, 1.2x faster forward (Lite0, B=16)
        self.model = self.memory_format(fold_batchnorm(model.trimmed(list(config.layers)).eval()))

    def load(self, item: dict) -> Any:
        from pipelines.ops.imaging import load_shorter_side

        return load_shorter_side(item, self.config.size)

    def compute(self, batch: list[tuple[dict, Any]]) -> dict[str, list[dict]]:
        import torch

        cfg = self.config
        loaded = [value for _, value in batch]
        x = torch.stack([t for _, _, t in loaded])
        feats = self.forward(x, lambda x: self.model(x, list(cfg.layers)))
        rows = []
        for layer in cfg.layers:
            f = feats[layer].float()
            if cfg.channels:
                f = f[:, list(cfg.channels)]
            b, c, h, w = f.shape
            flat = f.reshape(b, c, h * w)
            best, where = flat.max(dim=2)
            mean = flat.mean(dim=2)
            stride = max(1, round(x.shape[2] / h))
            names = list(cfg.channels) or list(range(c))
            for i, (it, image_id, _) in enumerate(loaded):
                for j, channel in enumerate(names):
                    rows.append({"image_id": image_id, "image": it.image, "dataset": it.dataset,
                                 "backbone": self.model.name, "weights_tag": self.model.weights_tag,
                                 "weights_sha256": self.model.weights_sha256, "layer": layer,
                                 "layer_index": self.model.layer_index(layer), "channel": int(channel),
                                 "value": float(best[i, j]), "mean": float(mean[i, j]),
                                 "y": int(where[i, j]) // w, "x": int(where[i, j]) % w, "height": h, "width": w,
                                 "stride": stride, "input_height": int(x.shape[2]), "input_width": int(x.shape[3]),
                                 "path": it.path, **_patch(int(where[i, j]) // w, int(where[i, j]) % w, stride,
                                                           int(x.shape[2]), int(x.shape[3]))})
        return {"exemplars": rows}

    def run_unit(self, unit: Any) -> Any:
        """The unit's rows, cut to its ``top`` images per (layer, channel) (see the module doc)."""
        out = super().run_unit(unit)
        rows = out.tables.get("exemplars", [])
        groups: dict[tuple, list[dict]] = {}
        for row in rows:
            groups.setdefault((row["layer"], row["channel"]), []).append(row)
        kept = []
        for group in groups.values():
            by_peak = sorted(group, key=lambda r: (-r["value"], r["image_id"]))[: self.config.top]
            by_mean = sorted(group, key=lambda r: (-r["mean"], r["image_id"]))[: self.config.top]
            kept += list({id(r): r for r in by_peak + by_mean}.values())
        out.tables["exemplars"] = kept
        return out
