"""`texprobe featuremaps IMAGE --layer L`: the input beside a grid of one layer's channel maps, strongest
channel (highest mean activation) first - which channels fire where on, say, a cue-conflict stimulus. With
``--store`` the maps are also a run of table ``feature_maps`` (the report's "Feature maps" section)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FeatureMaps", "feature_map_figure", "feature_maps", "record_feature_maps"]


@dataclass
class FeatureMaps:
    """One image's strongest channel maps at ``layer``: ``picture`` ``[H, W, 3]`` in [0, 1] (the input as the
    network saw it), ``maps`` ``[N, h, w]``, their channel indices and mean activations, strongest first."""

    picture: Any
    maps: Any
    channels: list[int]
    means: list[float]
    backbone: str
    layer: str
    layer_index: int
    weights_tag: str
    weights_sha256: str | None


def feature_maps(image: str, *, backbone: str, weights: str, layer: str, size: int, channels: int) -> FeatureMaps:
    """The ``channels`` strongest channels of ``layer`` on ``image`` (shorter side resized to ``size``; 0 keeps it)."""
    import torch

    from nstcore.backbones import create_backbone
    from nstcore.images import load_image, pil_to_tensor, resize_shorter
    from pipelines.ops.checks import check_weights, parse_layers

    check_weights(backbone, weights)
    (layer,) = parse_layers(backbone, layer, role="texture")
    model = create_backbone(backbone, weights=weights).trimmed([layer]).eval()
    img = load_image(image)
    if size:
        img = resize_shorter(img, size)
    x = pil_to_tensor(img)[None]
    with torch.inference_mode():
        f = model(model.normalize(x), [layer])[layer][0].float()
    means = f.flatten(1).mean(1)
    order = torch.argsort(means, descending=True, stable=True)[:channels]
    return FeatureMaps(picture=x[0].permute(1, 2, 0).numpy(), maps=f[order].numpy(), channels=order.tolist(),
                       means=means[order].tolist(), backbone=model.name, layer=layer,
                       layer_index=model.layer_index(layer), weights_tag=model.weights_tag,
                       weights_sha256=model.weights_sha256)


def record_feature_maps(store: Any, image: str, found: FeatureMaps) -> str:
    """Write ``found`` as a run of table ``feature_maps`` (the input stored as a PNG beside it); its run id."""
    import numpy as np
    import pyarrow as pa
    import torch

    from analysis.schemas import TABLES
    from pipelines.imagesets import sha256_file
    from pipelines.ops.imaging import png_bytes
    from pipelines.store import new_manifest, new_run_id, utc_now_iso

    run_id = new_run_id()
    manifest = new_manifest(run_id, command="featuremaps", argv=sys.argv,
                            config={"image": image, "backbone": found.backbone, "layer": found.layer,
                                    "channels": len(found.channels)})
    input_path = store.write_image(png_bytes(torch.from_numpy(np.ascontiguousarray(found.picture)).permute(2, 0, 1)))
    image_id = sha256_file(image)
    rows = [{"image_id": image_id, "image": Path(image).name, "backbone": found.backbone,
             "weights_tag": found.weights_tag, "weights_sha256": found.weights_sha256, "layer": found.layer,
             "layer_index": found.layer_index, "rank": k + 1, "channel": channel, "mean": mean,
             "height": int(m.shape[0]), "width": int(m.shape[1]), "map": m.astype(np.float32).ravel(),
             "input_path": input_path}
            for k, (channel, mean, m) in enumerate(zip(found.channels, found.means, found.maps))]
    schema = TABLES["feature_maps"].remove(0)  # the store stamps run_id
    store.write_table("feature_maps", run_id, pa.Table.from_pylist(rows, schema=schema), part="maps")
    manifest.update(status="finished", finished_at=utc_now_iso(), counts={"feature_maps": len(rows)})
    store.write_manifest(run_id, manifest)
    return run_id


def feature_map_figure(found: FeatureMaps, image: str, out: Path) -> None:
    """Draw ``found`` (the input, then the maps on one colour scale) and save it (png/svg/pdf by suffix)."""
    from analysis.plots._common import new_figure, save_figure
    from analysis.plots.feature_maps import draw_feature_maps

    fig = new_figure(width=2.2 * (min(8, len(found.channels)) + 2),
                     height=2.2 * max(1, (len(found.channels) + 7) // 8) + 0.5)
    draw_feature_maps(fig, found.picture, list(found.maps), found.channels, found.means,
                      title=f"{Path(image).name}\n{found.backbone} {found.layer}")
    save_figure(fig, out)
