"""VGG-19 weight files built for the tests.

* :func:`random_torchvision_vgg19`: a seeded random torchvision VGG-19 and its state dict on disk.
"""

from __future__ import annotations

from pathlib import Path

import nstcore  # noqa: F401  (torchvision shim)
import torch
import torchvision


def random_torchvision_vgg19(folder: Path, seed: int) -> tuple[Path, torch.nn.Module]:
    """A torchvision-format VGG-19 state dict from a seeded random torchvision model, saved as
    ``<folder>/vgg19-random.pth``, and that model (eval mode); the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ref = torchvision.models.vgg19().eval()
    path = folder / "vgg19-random.pth"
    torch.save(ref.state_dict(), path)
    return path, ref
