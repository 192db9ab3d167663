"""Image helpers for the generative actors: load and fit to the run's size, encode PNGs."""

from __future__ import annotations

import io

import torch

from nstcore.images import pil_to_tensor, resize_and_center_crop, tensor_to_pil
from pipelines.remote_inputs import open_image

#: Below this many pixels on the shorter side, VGG's five poolings leave nothing (conv5 at 1x1).
MIN_SIDE = 32


class TooSmallError(ValueError):
    """An input image is too small for the network."""


def load_square(path: str, size: int) -> torch.Tensor:
    """Decode (Pillow; grey/RGBA/palette converted to RGB as nstcore.images states), check the size,
    resize the shorter side to ``size`` and centre-crop to ``size`` x ``size`` -> [3, size, size] in [0, 1]."""
    img = open_image(path)
    if min(img.size) < MIN_SIDE:
        raise TooSmallError(
            f"image {path!r} is {img.size[0]}x{img.size[1]} px; at least {MIN_SIDE} px on the shorter side "
            "are needed (the network pools it five times). Use a larger image."
        )
    return pil_to_tensor(resize_and_center_crop(img, resize=size, crop=size))


def load_any(path: str) -> torch.Tensor:
    """Decode at native size (for style images, which the transfer resizes itself)."""
    img = open_image(path)
    if min(img.size) < MIN_SIDE:
        raise TooSmallError(
            f"image {path!r} is {img.size[0]}x{img.size[1]} px; at least {MIN_SIDE} px on the shorter side are needed."
        )
    return pil_to_tensor(img)


def png_bytes(image: torch.Tensor) -> bytes:
    """[3, H, W] in [0, 1] -> PNG file bytes (8-bit RGB)."""
    buf = io.BytesIO()
    tensor_to_pil(image.detach().cpu().clamp(0, 1)).save(buf, format="PNG")
    return buf.getvalue()


def load_shorter_side(item: dict, size: int) -> tuple:
    """An image item's ``(ImageItem, image_id, [3, H, W] tensor)``, shorter side resized to ``size`` (0 keeps
    it; aspect kept, no crop): what the Gram and exemplar probes load."""
    from nstcore.images import resize_shorter
    from pipelines.ops.base import check_item, image_item

    it = image_item(item)
    check_item(it)
    img = open_image(it.path)
    if size:
        img = resize_shorter(img, size)
    return it, it.image_id(), pil_to_tensor(img)
