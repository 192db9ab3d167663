"""The network of a render in bf16 autocast and/or channels_last memory format.

Activation maximisation only needs the gradient of an objective with respect to the input, so the network
may run at lower precision (mixed precision, Micikevicius et al. 2018: bf16 keeps float32's exponent range,
so no loss scaling is needed); the objective, the image parameterisation and Adam stay float32. On CPUs with
AMX/AVX512-bf16 and on GPUs with bf16 tensor cores this is 1.5-5x faster per step (BENCHMARKS.md, "Activation
maximisation"); channels_last lets oneDNN/cuDNN pick their fastest convolutions. The result is a different
float rounding, not a different objective: the known-answer Gabor test holds in both (tests/test_visualize_core.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["with_precision"]

Model = Callable[[Tensor, list[str]], dict[str, Tensor]]


def with_precision(model: Model, *, bf16: bool = False, channels_last: bool = False) -> Model:
    """``model(x, layers)`` run with its input in channels_last and under bf16 autocast as asked, features
    returned as float32 (convert a module's weights with ``module.to(memory_format=torch.channels_last)``)."""
    if not bf16 and not channels_last:
        return model

    def run(x: Tensor, layers: list[str]) -> dict[str, Tensor]:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=bf16):
            feats = model(x, layers)
        return {name: f.float() for name, f in feats.items()}

    return run
