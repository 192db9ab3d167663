"""Random robustness transforms applied before every step (Olah et al. 2017, "Transformation robustness"):
pad by 12 px (reflected), jitter by up to 8 px, scale by 0.9-1.1, rotate by up to 10 degrees, jitter by up
to 4 px, crop back to the input size. Each image draws its own transform from its own generator (seeded by
the image's seed and the step), so an image's trajectory does not depend on the rest of its batch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["TRANSFORMS", "robustness"]

TRANSFORMS = ("standard", "none")


def robustness(x: Tensor, *, seeds: list[int], step: int) -> Tensor:
    """``x`` ``[B, 3, H, W]`` with one random transform per image (see the module doc)."""
    b, _, h, w = x.shape
    pad = 12
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    thetas = []
    for seed in seeds:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        u = torch.rand(6, generator=g)
        jitter = (u[0:2] * 2 - 1) * 8 + (u[4:6] * 2 - 1) * 4  # px
        scale = 0.9 + 0.2 * float(u[2])
        angle = math.radians((float(u[3]) * 2 - 1) * 10)
        ph, pw = h + 2 * pad, w + 2 * pad
        cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
        # affine_grid maps output coords in [-1, 1] (the output is the input size) to input coords
        thetas.append(torch.tensor([[cos * w / pw, -sin * h / pw, 2 * float(jitter[0]) / pw],
                                    [sin * w / ph, cos * h / ph, 2 * float(jitter[1]) / ph]]))
    theta = torch.stack(thetas).to(dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta, [b, 3, h, w], align_corners=False)
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
