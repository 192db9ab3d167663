"""Batched activation maximisation: B objectives, one image each, one optimiser over one tensor.

Adam's state (first and second moments) is per element, and image ``b``'s loss depends only on image ``b``
(the network runs in eval mode; the transforms are drawn per image), so each image follows exactly the
trajectory it would follow alone: batching changes the speed, not the result (tested B=1 vs B=8). The
network only runs up to the deepest layer the batch needs (the extractor's ``layers`` argument).
Defaults as the anchors (Olah et al. 2017 and their code): Adam, lr 0.05, 512 steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from nstcore.visualize.objectives import Objective
from nstcore.visualize.params import ImageParam
from nstcore.visualize.transforms import TRANSFORMS, robustness

__all__ = ["RenderResult", "render"]

Model = Callable[[Tensor, list[str]], dict[str, Tensor]]


@dataclass(frozen=True)
class RenderResult:
    images: Tensor        # [B, 3, size, size] in [0, 1]
    value_start: Tensor   # [B] objective at the starting image (no transform)
    value_end: Tensor     # [B] objective at the final image (no transform)


def _values(model: Model, x: Tensor, objectives: Sequence[Objective], layers: list[str]) -> Tensor:
    feats = model(x, layers)
    return torch.stack([obj.value(feats[obj.layer][i:i + 1])[0] for i, obj in enumerate(objectives)])


def render(model: Model, objectives: Sequence[Objective], *, size: int = 128, steps: int = 512, lr: float = 0.05,
           param: str = "fft", transforms: str = "standard", greyscale: bool = False, init: Tensor | None = None,
           seeds: Sequence[int] | None = None, device: torch.device | str | None = None) -> RenderResult:
    """Maximise ``objectives[b]`` with image ``b``; ``model(x, layers) -> {layer: [B, C, H, W]}`` on ``device``
    (default: ``init``'s, else the CPU). Noise is drawn on the CPU, so a seed gives the same start anywhere."""
    if transforms not in TRANSFORMS:
        raise ValueError(f"transforms {transforms!r}: use one of {', '.join(TRANSFORMS)}")
    seeds = list(seeds) if seeds is not None else list(range(len(objectives)))
    layers = list(dict.fromkeys(obj.layer for obj in objectives))
    device = torch.device(device if device is not None else init.device if init is not None else "cpu")
    image = ImageParam(kind=param, batch=len(objectives), size=size, seeds=seeds, greyscale=greyscale,
                       init=None if init is None else init.cpu()).to(device)
    with torch.no_grad():
        start = _values(model, image(), objectives, layers)
    opt = torch.optim.Adam(image.parameters(), lr=lr)
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        x = image()
        if transforms == "standard":
            x = robustness(x, seeds=seeds, step=step)
        (-_values(model, x, objectives, layers).sum()).backward()
        opt.step()
    with torch.no_grad():
        final = image()
        end = _values(model, final, objectives, layers)
    return RenderResult(images=final.detach(), value_start=start, value_end=end)
