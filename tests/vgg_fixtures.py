"""VGG-19 weight files built for the tests, and Gatys' VGG written out in float64 as the reference.

* :func:`random_torchvision_vgg19`: a seeded random torchvision VGG-19 and its state dict on disk;
* :func:`gatys_state_dict`: random tensors with the keys and shapes of Gatys' ``vgg_conv.pth``;
* :func:`caffe_input` and :func:`gatys_forward`: the Caffe input convention (BGR, 0..255, minus the
  mean pixel [103.939, 116.779, 123.68]) and Gatys' notebook VGG (pool='max') with F.conv2d / F.relu /
  F.max_pool2d in float64, independent of nstcore.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nstcore  # noqa: F401  (torchvision shim)
import torch
import torch.nn.functional as F
import torchvision

#: (block, conv) of VGG-19's 16 convolutions: conv1_1 ... conv5_4.
VGG19_CONVS = [(b, c) for b, n in enumerate((2, 2, 4, 4, 4), start=1) for c in range(1, n + 1)]
#: Input channels, then the output channels of blocks 1..5.
CHANNELS = (3, 64, 128, 256, 512, 512)


def random_torchvision_vgg19(folder: Path, seed: int) -> tuple[Path, torch.nn.Module]:
    """A torchvision-format VGG-19 state dict from a seeded random torchvision model, saved as
    ``<folder>/vgg19-random.pth``, and that model (eval mode); the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ref = torchvision.models.vgg19().eval()
    path = folder / "vgg19-random.pth"
    torch.save(ref.state_dict(), path)
    return path, ref


def normal_bias(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.randn(n, generator=g) * 0.1


def gatys_state_dict(seed: int = 0, *, weight_divisor: float = 40,
                     bias: Callable[[int, torch.Generator], torch.Tensor] = normal_bias) -> dict[str, torch.Tensor]:
    """``conv1_1.weight`` ... ``conv5_4.bias``: the keys and shapes of Gatys' vgg_conv.pth. Weights are
    He-scaled normals divided by ``weight_divisor``; biases ``bias(cout, generator)``, drawn after each
    layer's weight from the same generator."""
    g = torch.Generator().manual_seed(seed)
    sd, cin = {}, 3
    for b, c in VGG19_CONVS:
        cout = CHANNELS[b]
        he = (2.0 / (9 * cin)) ** 0.5
        sd[f"conv{b}_{c}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * he / weight_divisor
        sd[f"conv{b}_{c}.bias"] = bias(cout, g)
        cin = cout
    return sd


def caffe_input(x01: torch.Tensor) -> torch.Tensor:
    bgr = x01.double()[:, [2, 1, 0]] * 255.0
    return bgr - torch.tensor([103.939, 116.779, 123.68], dtype=torch.float64).view(1, 3, 1, 1)


def gatys_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Gatys' notebook VGG (pool='max') in float64: ``relu{b}_{c}`` (Gatys' r{b}{c}) and ``pool{b}``."""
    out, h = {}, x
    for b in range(1, 6):
        for c in range(1, (2, 2, 4, 4, 4)[b - 1] + 1):
            h = F.relu(F.conv2d(h, sd[f"conv{b}_{c}.weight"].double(), sd[f"conv{b}_{c}.bias"].double(), padding=1))
            out[f"relu{b}_{c}"] = h
        h = F.max_pool2d(h, 2, 2)
        out[f"pool{b}"] = h
    return out
