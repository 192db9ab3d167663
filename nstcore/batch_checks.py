"""Checks of image batches ``[B, 3, H, W]`` in ``[0, 1]``, shared by the losses, style transfer and
reconstructions (each raises its own error class with its own advice)."""

from __future__ import annotations

import math

from torch import Tensor

from nstcore.errors import NstcoreError

__all__ = ["check_image_batch"]


def check_image_batch(x: Tensor, *, where: str, error: type[NstcoreError], fix: str, values: bool = True) -> None:
    """Raise ``error`` unless ``x`` is a floating-point RGB batch ``[B, 3, H, W]``.

    ``fix``: the advice given for other shapes. ``values=True`` also requires a non-empty batch of finite
    values in ``[0, 1]`` (1e-3 tolerance): un-normalised images, the extractor normalises them itself.
    """
    if not isinstance(x, Tensor):
        raise error(f"{where}: expected a torch.Tensor [B, 3, H, W], got {type(x).__name__}.")
    if x.dim() != 4 or x.shape[1] != 3:
        raise error(f"{where}: expected RGB images [B, 3, H, W], got shape {tuple(x.shape)}; {fix}")
    if not x.is_floating_point():
        raise error(f"{where}: expected floating-point images in [0, 1], got dtype {x.dtype}.")
    if not values:
        return
    if x.shape[0] == 0:
        raise error(f"{where}: the batch is empty.")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-3 or hi > 1 + 1e-3 or not (math.isfinite(lo) and math.isfinite(hi)):
        raise error(
            f"{where}: values must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]; pass un-normalised images "
            "(the extractor normalises them itself)."
        )
