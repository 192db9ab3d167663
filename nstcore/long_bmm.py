"""Batched products whose reduction dimension is long and whose outputs are small:
Gram matrices (``F F^T`` over ``H*W`` positions), L-BFGS history dot products (over all pixels).

``torch.bmm`` hands such a batch to cuBLAS's strided-batched GEMM, which tiles each batch entry's
small ``M x N`` output (one thread block for a 64 x 64 Gram or a ``2m x 3`` history product) and does
not split the long ``K``: B entries keep only about B of the GPU's multiprocessors busy, each looping
over all of ``K``, however large B is. One GEMM per entry lets cuBLAS split ``K`` across the device.
Measured on an H200 (``benchmarks/gpu/long_products.py``, BENCHMARKS.md), forward: VGG-19's conv1_1
Gram at 512 px 8.0 ms -> 0.23 ms at B=2 and 8.0 -> 1.7 ms at B=16; the L-BFGS history products
24 ms -> 0.7-0.9 ms at B=2 and -> 5.9-6.9 ms at B=16.

The backward pass stays two ordinary ``bmm`` (their outputs are ``[B, M, K]`` and ``[B, K, N]``: large,
so cuBLAS fills the device), through a small autograd function: autograd through a Python loop of
``a[i]`` would give each entry's gradient its own zero-filled ``[B, M, K]`` buffer (B^2 traffic: on
CPU, B=16 Grams of 64 x 65,536, 5.5x bmm's backward time).
On the CPU, ``bmm`` is kept (oneDNN/MKL parallelise it over ``K``; results stay bit-identical).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["long_bmm", "splits", "SPLIT_MIN_K", "SPLIT_MAX_OUTPUT"]

#: a batched product is split into one GEMM per entry on CUDA when its reduction is at least this long
SPLIT_MIN_K = 4096
#: ... and its whole output (B x M x N) at most this many elements: 16 tiles of 128 x 128, far fewer than
#: a data-centre GPU's multiprocessors. Larger outputs fill the device already and run faster as one
#: ``bmm`` (measured: VGG-19's conv3_1 Gram at B=16, 1M outputs, 0.94 ms as bmm vs 1.20 ms split).
SPLIT_MAX_OUTPUT = 128 * 128 * 16


def long_bmm(a: Tensor, b: Tensor, *, out_dtype: torch.dtype | None = None, split: bool | None = None) -> Tensor:
    """``a @ b`` for ``a [B, M, K]``, ``b [B, K, N]``; ``out_dtype``: the result's dtype where the inputs
    are of lower precision (accumulated in it on CUDA). ``split``: one ``torch.mm`` per batch entry
    (see the module docstring); default: on CUDA when ``B > 1``, ``K >= SPLIT_MIN_K`` and the output
    has at most ``SPLIT_MAX_OUTPUT`` elements, and never inside ``torch.compile`` (inductor chooses)."""
    if split is None:
        split = not torch.compiler.is_compiling() and a.is_cuda and splits(*a.shape, b.shape[2])
    if split:
        return _SplitForward.apply(a, b, out_dtype)
    return _bmm(a, b, out_dtype)


def splits(batch: int, m: int, k: int, n: int) -> bool:
    """Whether a CUDA product ``[batch, m, k] @ [batch, k, n]`` runs faster as one GEMM per entry."""
    return batch > 1 and k >= SPLIT_MIN_K and batch * m * n <= SPLIT_MAX_OUTPUT


class _SplitForward(torch.autograd.Function):
    """Forward: one GEMM per batch entry. Backward: ``bmm``'s own two products."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, out_dtype: torch.dtype | None) -> Tensor:  # noqa: ANN001
        ctx.save_for_backward(a, b)
        return torch.stack([_mm(x, y, out_dtype) for x, y in zip(a.unbind(0), b.unbind(0))])

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: ANN001, ANN205
        a, b = ctx.saved_tensors
        grad_a = torch.bmm(grad.to(b.dtype), b.transpose(1, 2)).to(a.dtype) if ctx.needs_input_grad[0] else None
        grad_b = torch.bmm(a.transpose(1, 2), grad.to(a.dtype)).to(b.dtype) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None


def _mm(a: Tensor, b: Tensor, out_dtype: torch.dtype | None) -> Tensor:
    return _product(torch.mm, a, b, out_dtype)


def _bmm(a: Tensor, b: Tensor, out_dtype: torch.dtype | None) -> Tensor:
    return _product(torch.bmm, a, b, out_dtype)


def _product(op, a: Tensor, b: Tensor, out_dtype: torch.dtype | None) -> Tensor:  # noqa: ANN001
    """``op(a, b)`` with its result in ``out_dtype`` (accumulated in it where CUDA's ``out_dtype`` exists)."""
    if out_dtype is None or out_dtype == a.dtype:
        return op(a, b)
    if a.is_cuda:
        try:
            return op(a, b, out_dtype=out_dtype)
        except (TypeError, RuntimeError, NotImplementedError):
            pass
    return op(a, b).to(out_dtype)
