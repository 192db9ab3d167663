"""Image helpers of style transfer: input checks, content/style resizing, the initial image.

* Content images are resized (bilinear, antialiased) so their shorter side is ``config.size`` (no
  resize when ``size`` is None or already met). Every style image is resized, keeping its aspect
  ratio, so that it covers ``round(H*style_scale) x round(W*style_scale)`` (H, W the content size)
  and centre-cropped to exactly that size: one common style size per batch, whatever the style
  images' own sizes (pass them as a list when they differ).
* Noise initialisation draws ONE ``[3, H, W]`` uniform [0, 1) image from ``torch.Generator`` seeded
  with ``seed`` and uses it for every image of the batch, so a batched run equals its single-pair runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from nstcore.batch_checks import check_image_batch
from nstcore.transfer.config import TransferInputError

__all__ = ["check_batch", "initial_image", "resize_cover_crop", "resize_shorter", "stack_styles"]


def check_batch(x: Tensor, *, where: str) -> None:
    """A non-empty RGB batch ``[B, 3, H, W]`` of floats in [0, 1], or :class:`TransferInputError`."""
    check_image_batch(x, where=where, error=TransferInputError,
                      fix="convert grayscale or RGBA images to RGB first (nstcore.images.load_image does).")


def resize_shorter(x: Tensor, size: int) -> Tensor:
    """Resize ``[B, C, H, W]`` so the shorter side is ``size`` (bilinear, antialiased, aspect kept)."""
    h, w = x.shape[-2:]
    if min(h, w) == size:
        return x
    scale = size / min(h, w)
    out_hw = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(x, size=out_hw, mode="bilinear", align_corners=False, antialias=True)


def resize_cover_crop(x: Tensor, height: int, width: int) -> Tensor:
    """Resize ``[B, C, h, w]`` (aspect kept) to cover ``height x width``, then centre-crop to it."""
    h, w = x.shape[-2:]
    if (h, w) != (height, width):
        scale = max(height / h, width / w)
        out_hw = (max(height, round(h * scale)), max(width, round(w * scale)))
        x = F.interpolate(x, size=out_hw, mode="bilinear", align_corners=False, antialias=True)
    top = (x.shape[-2] - height) // 2
    left = (x.shape[-1] - width) // 2
    return x[..., top : top + height, left : left + width]


def stack_styles(style: Tensor | Sequence[Tensor], height: int, width: int) -> Tensor:
    """One ``[B, 3, height, width]`` style batch from a batch or a list of single images of any size."""
    if isinstance(style, Tensor):
        check_batch(style, where="stylize(style)")
        return resize_cover_crop(style, height, width)
    items = list(style)
    if not items:
        raise TransferInputError("stylize(style): the list of style images is empty.")
    out = []
    for i, s in enumerate(items):
        if isinstance(s, Tensor) and s.dim() == 3:
            s = s.unsqueeze(0)
        check_batch(s, where=f"stylize(style[{i}])")
        if s.shape[0] != 1:
            raise TransferInputError(f"stylize(style[{i}]): list items must be single images, got batch {s.shape[0]}.")
        out.append(resize_cover_crop(s, height, width))
    return torch.cat(out, dim=0)


def initial_image(init: str, content: Tensor, style: Tensor, *, seed: int) -> Tensor:
    """The starting image: ``content``, ``style`` (resized to the content size) or seeded noise."""
    if init == "content":
        return content.clone()
    if init == "style":
        return resize_cover_crop(style, content.shape[-2], content.shape[-1]).clone()
    generator = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.rand((1, *content.shape[1:]), generator=generator, dtype=torch.float64)
    return noise.to(device=content.device, dtype=content.dtype).expand_as(content).clone()
