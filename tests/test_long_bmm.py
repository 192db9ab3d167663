"""nstcore.long_bmm: the split product (one GEMM per entry, bmm's backward) against float64 references,
and the rule that picks it (on CUDA only; the GPU timings are in BENCHMARKS.md)."""

from __future__ import annotations

import pytest
import torch

from nstcore.long_bmm import SPLIT_MAX_OUTPUT, long_bmm, splits
from nstcore.optimize.common import bdot
from nstcore.stats.gram import gram_matrix


def _reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Float64 sum over k of a[i, m, k] * b[i, k, n], written out."""
    return (a.double().unsqueeze(3) * b.double().unsqueeze(1)).sum(dim=2)


@pytest.mark.parametrize("shape", [(3, 5, 700, 4), (2, 1, 1000, 1), (4, 6, 50, 3)])
@pytest.mark.parametrize("split", [True, False])
def test_values_equal_the_float64_definition(shape, split):
    batch, m, k, n = shape
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(batch, m, k, generator=gen), torch.randn(batch, k, n, generator=gen)
    out = long_bmm(a, b, split=split)
    assert out.shape == (batch, m, n) and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), _reference(a, b), rtol=1e-5, atol=1e-4)


def test_low_precision_inputs_give_the_requested_dtype():
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(2, 4, 512, generator=gen).bfloat16()
    b = torch.randn(2, 512, 3, generator=gen).bfloat16()
    for split in (True, False):
        out = long_bmm(a, b, out_dtype=torch.float32, split=split)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out.double(), _reference(a, b), rtol=2e-2, atol=2e-1)


def test_split_gradients_pass_gradcheck():
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(3, 4, 20, dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn(3, 20, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: long_bmm(x, y, split=True), (a, b))


def test_split_gram_gradient_equals_the_hand_derived_one():
    """G = F F^T (one input used twice): dL/dF = (Gbar + Gbar^T) F (Gatys et al. 2015, eq. 6 without the
    normalisation), computed here in float64."""
    gen = torch.Generator().manual_seed(3)
    f = torch.randn(2, 5, 300, dtype=torch.float64, generator=gen, requires_grad=True)
    weights = torch.randn(2, 5, 5, dtype=torch.float64, generator=gen)
    (long_bmm(f, f.transpose(1, 2), split=True) * weights).sum().backward()
    expected = (weights + weights.transpose(1, 2)) @ f.detach()
    torch.testing.assert_close(f.grad, expected)


def test_the_rule_splits_small_outputs_of_long_reductions_only():
    assert splits(2, 64, 512 * 512, 64)  # VGG-19 conv1_1 Gram at 512 px, B=2 (34x measured)
    assert splits(16, 200, 3 * 512 * 512, 3)  # the L-BFGS history at B=16
    assert splits(16, 128, 256 * 256, 128)  # conv2_1 at B=16: output exactly the limit
    assert not splits(16, 256, 128 * 128, 256)  # conv3_1 at B=16: 1M outputs, bmm is faster
    assert not splits(1, 64, 512 * 512, 64)  # one entry: cuBLAS splits K itself
    assert not splits(4, 64, 1024, 64)  # short reduction
    assert 16 * 128 * 128 == SPLIT_MAX_OUTPUT


def test_cpu_callers_stay_bmm_exactly():
    """On the CPU nothing changes: the Gram and the row dot products equal plain bmm bit for bit."""
    gen = torch.Generator().manual_seed(4)
    feats = torch.randn(3, 8, 16, 16, generator=gen)
    flat = feats.reshape(3, 8, 256)
    g = torch.bmm(flat, flat.transpose(1, 2))
    assert torch.equal(gram_matrix(feats, normalization="none"), 0.5 * (g + g.transpose(1, 2)))
    x, y = torch.randn(4, 9000, generator=gen), torch.randn(4, 9000, generator=gen)
    assert torch.equal(bdot(x, y), torch.bmm(x.unsqueeze(1), y.unsqueeze(2)).view(-1))
