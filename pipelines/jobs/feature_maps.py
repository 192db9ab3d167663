"""`texprobe featuremaps IMAGE --layer L`: the input beside a grid of one layer's channel maps, strongest
channel (highest mean activation) first - which channels fire where on, say, a cue-conflict stimulus."""

from __future__ import annotations

from pathlib import Path

__all__ = ["feature_maps", "feature_map_figure"]


def feature_maps(image: str, *, backbone: str, weights: str, layer: str, size: int, channels: int):
    """``(input [H, W, 3] in [0, 1], maps [N, h, w], channel indices, their mean activations)``: the ``channels``
    strongest channels of ``layer`` on ``image`` (shorter side resized to ``size``; 0 keeps it)."""
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
    return x[0].permute(1, 2, 0).numpy(), f[order].numpy(), order.tolist(), means[order].tolist()


def feature_map_figure(image: str, out: Path, *, backbone: str, weights: str, layer: str, size: int,
                       channels: int) -> list[tuple[int, float]]:
    """Draw and save the figure (png/svg/pdf by suffix); the channels shown with their mean activations."""
    from analysis.plots._common import new_figure, save_figure

    picture, maps, order, means = feature_maps(image, backbone=backbone, weights=weights, layer=layer, size=size,
                                               channels=channels)
    cols = min(8, len(order))
    rows = (len(order) + cols - 1) // cols
    fig = new_figure(width=2.2 * (cols + 2), height=2.2 * max(rows, 1) + 0.5)
    grid = fig.add_gridspec(max(rows, 1), cols + 2)
    ax = fig.add_subplot(grid[:, :2])
    ax.imshow(picture)
    ax.set_title(f"{Path(image).name}\n{backbone} {layer}", fontsize=8)
    ax.axis("off")
    top = float(maps.max()) if maps.size else 1.0
    for k, (channel, mean) in enumerate(zip(order, means)):
        cell = fig.add_subplot(grid[k // cols, 2 + k % cols])
        cell.imshow(maps[k], cmap="magma", vmin=0.0, vmax=max(top, 1e-6))
        cell.set_title(f"ch {channel}  mean {mean:.2f}", fontsize=7)
        cell.axis("off")
    save_figure(fig, out)
    return list(zip(order, means))
