"""nstcore.stats against float64 textbook definitions written out here (loops / einsum over positions)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import nstcore  # noqa: F401  (shim before anything touches torchvision)
from nstcore import stats
from nstcore.stats import (
    FeatureShapeError,
    StatisticsError,
    UnknownStatisticError,
    get_statistic,
    gram_from_upper_triangle,
    gram_matrix,
    gram_upper_triangle,
    list_statistics,
)

RTOL = 1e-5


def _features(*shape: int, seed: int = 0, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * scale + shift


def _positions(f: torch.Tensor) -> np.ndarray:
    """[B, C, H, W] -> float64 array [B, M, C] of feature vectors (one per position)."""
    a = f.detach().double().numpy()
    b, c, h, w = a.shape
    return a.reshape(b, c, h * w).transpose(0, 2, 1)


def _ref_gram(f: torch.Tensor, normalization: str) -> np.ndarray:
    """Explicit sum over positions: G_ij = sum_m F_im F_jm / n."""
    a = f.detach().double().numpy()
    b, c, h, w = a.shape
    g = np.zeros((b, c, c))
    for bi in range(b):
        for y in range(h):
            for x in range(w):
                v = a[bi, :, y, x]
                g[bi] += np.outer(v, v)
    n = {"hw": h * w, "chw": c * h * w, "none": 1}[normalization]
    return g / n


def _close(actual: torch.Tensor, expected: np.ndarray, rtol: float = RTOL) -> None:
    a = actual.detach().double().numpy()
    err = np.max(np.abs(a - expected)) / np.max(np.abs(expected))
    assert err <= rtol, f"relative error {err:.3g} > {rtol}"


# -------------------------------------------------------------------------------- Gram


@pytest.mark.parametrize("normalization", ["hw", "chw", "none"])
def test_gram_matches_explicit_sum(normalization: str) -> None:
    f = _features(3, 5, 4, 6, seed=1, shift=0.3)
    g = gram_matrix(f, normalization=normalization)
    assert g.dtype == torch.float32 and g.shape == (3, 5, 5)
    _close(g, _ref_gram(f, normalization))


def test_gram_hand_computed() -> None:
    # F = [[1, 2], [3, 4]] as C=2 channels over a 1x2 map: F F^T = [[5, 11], [11, 25]]
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    assert torch.equal(gram_matrix(f, normalization="none")[0], torch.tensor([[5.0, 11.0], [11.0, 25.0]]))
    assert torch.equal(gram_matrix(f, normalization="hw")[0], torch.tensor([[2.5, 5.5], [5.5, 12.5]]))
    assert torch.equal(gram_matrix(f, normalization="chw")[0], torch.tensor([[1.25, 2.75], [2.75, 6.25]]))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gram_low_precision_input_gives_float32(dtype: torch.dtype) -> None:
    exact = _features(2, 8, 8, 8, seed=2)
    f = exact.to(dtype)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        g = gram_matrix(f)
    assert g.dtype == torch.float32
    _close(g, _ref_gram(exact, "hw"), rtol=2e-2)  # vs the unrounded input: input rounding only
    # reference on the same (rounded) inputs in float64: only accumulation error remains
    _close(g, _ref_gram(f.float(), "hw"), rtol=1e-5)


def test_gram_under_autocast_stays_float32_for_float32_input() -> None:
    f = _features(2, 6, 5, 5, seed=3)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        g = gram_matrix(f)
    assert g.dtype == torch.float32
    _close(g, _ref_gram(f, "hw"))


def test_gram_invariant_to_permuting_positions() -> None:
    f = _features(2, 4, 5, 6, seed=4)
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(0))
    shuffled = f.reshape(2, 4, 30)[:, :, perm].reshape(2, 4, 6, 5)  # different H, W; same positions
    torch.testing.assert_close(gram_matrix(shuffled), gram_matrix(f), rtol=1e-6, atol=1e-6)


def test_gram_batch_rows_equal_single_images() -> None:
    f = _features(4, 6, 7, 5, seed=5)
    batched = gram_matrix(f)
    for i in range(4):
        torch.testing.assert_close(batched[i], gram_matrix(f[i : i + 1])[0], rtol=1e-6, atol=1e-6)


def test_gram_rejects_bad_input() -> None:
    with pytest.raises(FeatureShapeError, match=r"\[B, C, H, W\]"):
        gram_matrix(torch.zeros(3, 4, 4))
    with pytest.raises(StatisticsError, match="normalization"):
        gram_matrix(torch.zeros(1, 3, 4, 4), normalization="n")  # type: ignore[arg-type]
    with pytest.raises(FeatureShapeError, match="floating"):
        gram_matrix(torch.zeros(1, 3, 4, 4, dtype=torch.int64))


def test_upper_triangle_order_and_round_trip() -> None:
    g = torch.tensor([[[1.0, 2.0, 3.0], [2.0, 4.0, 5.0], [3.0, 5.0, 6.0]]])
    v = gram_upper_triangle(g)
    assert v.dtype == torch.float32
    assert v.tolist() == [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]  # row-major, diagonal included
    big = gram_matrix(_features(3, 7, 4, 4, seed=6))
    v = gram_upper_triangle(big)
    assert v.shape == (3, 28)
    assert torch.equal(big, big.transpose(1, 2))  # exactly symmetric
    assert torch.equal(gram_from_upper_triangle(v, 7), big)  # exact
    with pytest.raises(FeatureShapeError, match="need 28 values"):
        gram_from_upper_triangle(v[:, :-1], 7)


# -------------------------------------------------------------------------------- Gatys constant


def test_gram_loss_is_four_times_gatys_layer_loss() -> None:
    x, s = _features(2, 5, 4, 4, seed=7), _features(2, 5, 4, 4, seed=8, shift=0.5)
    gx, gs = _ref_gram(x, "none"), _ref_gram(s, "none")
    n, m = 5, 16
    e_l = ((gx - gs) ** 2).sum(axis=(1, 2)) / (4 * n**2 * m**2)  # Gatys et al. 2016, Eq. 4
    stat = get_statistic("gram", normalization="hw")
    loss = stat.loss(x, stat.target(s))
    assert loss.shape == (2,) and loss.dtype == torch.float32
    _close(loss, 4 * e_l)
    chw = get_statistic("gram", normalization="chw")
    _close(chw.loss(x, chw.target(s)), 4 * e_l / n**2)
    none_sum = get_statistic("gram", normalization="none", reduction="sum")
    _close(none_sum.loss(x, none_sum.target(s)), 4 * n**2 * m**2 * e_l)


# -------------------------------------------------------------------------------- moments


def _ref_moments(f: torch.Tensor, name: str, eps: float = 1e-5) -> np.ndarray:
    p = _positions(f)  # [B, M, C]
    mean = p.mean(axis=1)
    if name == "mean":
        return mean
    if name == "mean_sq":
        return (p**2).mean(axis=1)
    if name == "mean_abs":
        return np.abs(p).mean(axis=1)
    std = np.sqrt(((p - mean[:, None, :]) ** 2).mean(axis=1) + eps)
    if name == "std":
        return std
    return np.concatenate([mean, std], axis=1)


@pytest.mark.parametrize("name", ["mean", "mean_sq", "mean_abs", "std", "mean_std"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_moment_statistics_match_definitions(name: str, reduction: str) -> None:
    x, s = _features(3, 6, 5, 4, seed=9, shift=0.2), _features(3, 6, 5, 4, seed=10, scale=2.0, shift=-0.4)
    stat = get_statistic(name, reduction=reduction)
    target = stat.target(s)
    assert target.dtype == torch.float32
    _close(target, _ref_moments(s, name))
    diff2 = (_ref_moments(x, name) - _ref_moments(s, name)) ** 2
    expected = diff2.mean(axis=1) if reduction == "mean" else diff2.sum(axis=1)
    loss = stat.loss(x, target)
    assert loss.shape == (3,) and loss.dtype == torch.float32
    _close(loss, expected)


def test_mean_std_sum_is_adain_loss_and_zero_iff_stats_match() -> None:
    s = _features(1, 4, 6, 6, seed=11, shift=1.0, scale=3.0)
    stat = get_statistic("mean_std", reduction="sum", eps=0.0)
    target = stat.target(s)
    # same channel mean and std, different spatial arrangement and a different map size -> loss 0
    flat = s.reshape(1, 4, 36)
    rearranged = flat.flip(2).reshape(1, 4, 4, 9)
    assert stat.loss(rearranged, target).item() == pytest.approx(0.0, abs=1e-9)
    # AdaIN: ||mu - mu_t||^2 + ||sigma - sigma_t||^2; an affine change per channel moves exactly that
    shifted = s * 2.0 + 0.5
    p = _positions(s)[0]
    mu, sigma = p.mean(0), p.std(0)
    expected = np.sum((2 * mu + 0.5 - mu) ** 2) + np.sum((2 * sigma - sigma) ** 2)
    _close(stat.loss(shifted, target), np.array([expected]))
    assert stat.loss(shifted, target).item() > 1.0


# -------------------------------------------------------------------------------- MMD


def _ref_mmd2(x: torch.Tensor, y: torch.Tensor, kernel) -> np.ndarray:
    """Biased MMD^2 with explicit kernel matrices over positions, float64."""
    px, py = _positions(x), _positions(y)
    out = []
    for a, b in zip(px, py):
        kxx = np.mean([[kernel(u, v) for v in a] for u in a])
        kyy = np.mean([[kernel(u, v) for v in b] for u in b])
        kxy = np.mean([[kernel(u, v) for v in b] for u in a])
        out.append(kxx + kyy - 2 * kxy)
    return np.array(out)


def test_mmd_linear_matches_kernel_definition() -> None:
    x, y = _features(2, 3, 4, 4, seed=12), _features(2, 3, 3, 5, seed=13, shift=0.7)
    stat = get_statistic("mmd_linear")
    _close(stat.loss(x, stat.target(y)), _ref_mmd2(x, y, lambda u, v: u @ v))


@pytest.mark.parametrize(("degree", "offset"), [(2, 0.0), (2, 1.5), (3, 0.5)])
def test_mmd_poly_matches_kernel_definition(degree: int, offset: float) -> None:
    x, y = _features(2, 3, 4, 4, seed=14), _features(2, 3, 3, 5, seed=15, shift=0.7, scale=1.5)
    stat = get_statistic("mmd_poly", degree=degree, offset=offset)
    _close(stat.loss(x, stat.target(y)), _ref_mmd2(x, y, lambda u, v: (u @ v + offset) ** degree))


@pytest.mark.parametrize("sigma2", [2.5, "median"])
def test_mmd_gaussian_matches_kernel_definition(sigma2) -> None:
    x, y = _features(2, 3, 4, 4, seed=16), _features(2, 3, 3, 5, seed=17, shift=0.8, scale=1.3)
    stat = get_statistic("mmd_gaussian", sigma2=sigma2, num_samples=None)
    target = stat.target(y)
    loss = stat.loss(x, target)
    expected = []
    for bi in range(2):
        py = _positions(y)[bi]
        if sigma2 == "median":
            d = sorted(float(np.sum((py[i] - py[j]) ** 2)) for i, j in itertools.combinations(range(len(py)), 2))
            s2 = d[(len(d) - 1) // 2]  # lower median
        else:
            s2 = sigma2
        expected.append(_ref_mmd2(x[bi : bi + 1], y[bi : bi + 1], lambda u, v: np.exp(-np.sum((u - v) ** 2) / (2 * s2)))[0])
    _close(loss, np.array(expected))


def test_poly_mmd_equals_gram_loss_times_c_squared() -> None:
    # Li et al. 2017: k(x, y) = (x^T y)^2 -> MMD^2 = ||G_x - G_y||_F^2 / M^2 (unnormalised Grams, equal M)
    c, h, w = 6, 5, 4
    x, y = _features(3, c, h, w, seed=18), _features(3, c, h, w, seed=19, shift=0.3)
    mmd = get_statistic("mmd_poly")
    gram = get_statistic("gram", normalization="hw", reduction="mean")
    mmd_loss, gram_loss = mmd.loss(x, mmd.target(y)), gram.loss(x, gram.target(y))
    torch.testing.assert_close(mmd_loss, gram_loss * c**2, rtol=1e-5, atol=0)
    gx, gy = _ref_gram(x, "none"), _ref_gram(y, "none")
    _close(mmd_loss, ((gx - gy) ** 2).sum(axis=(1, 2)) / (h * w) ** 2)


def test_mmd_sampling_is_seeded_and_draws_real_positions() -> None:
    y = _features(2, 3, 8, 8, seed=20)
    a = get_statistic("mmd_gaussian", num_samples=10, seed=3)
    b = get_statistic("mmd_gaussian", num_samples=10, seed=3)
    ta, tb = a.target(y), b.target(y)
    assert ta.shape == (2, 3, 10)
    assert torch.equal(ta, tb)  # same seed -> same draws
    flat = y.reshape(2, 3, 64)
    # every sampled column is one of the image's positions, the same positions in every image
    cols = [int(torch.nonzero((flat[0] == ta[0, :, k : k + 1]).all(0))[0]) for k in range(10)]
    assert len(set(cols)) == 10
    assert torch.equal(flat[1][:, cols], ta[1])
    assert not torch.equal(a.target(y), ta)  # the sequence moves on
    a.reseed()
    assert torch.equal(a.target(y), ta)


def test_mmd_zero_for_identical_samples() -> None:
    y = _features(2, 4, 5, 5, seed=21)
    for name in ("mmd_linear", "mmd_poly", "mmd_gaussian"):
        stat = get_statistic(name, num_samples=None)
        assert stat.loss(y, stat.target(y)).abs().max().item() < 1e-5


# -------------------------------------------------------------------------------- plug-in behaviour


@pytest.mark.parametrize("name", ["gram", "mean", "mean_sq", "mean_abs", "std", "mean_std", "mmd_linear", "mmd_poly", "mmd_gaussian"])
def test_every_statistic_is_per_image_batched_and_differentiable(name: str) -> None:
    kw = {"num_samples": None} if name.startswith("mmd") else {}
    stat = get_statistic(name, **kw)
    x = _features(3, 4, 5, 5, seed=22).requires_grad_(True)
    y = _features(3, 4, 5, 5, seed=23, shift=0.5)
    target = stat.target(y)
    loss = stat.loss(x, target)
    assert loss.shape == (3,) and loss.dtype == torch.float32
    for i in range(3):  # per-image: row i only depends on image i
        alone = get_statistic(name, **kw).loss(x[i : i + 1], target[i : i + 1])
        torch.testing.assert_close(loss[i : i + 1], alone, rtol=1e-5, atol=1e-7)
    loss[1].backward()
    assert x.grad is not None and x.grad[1].abs().sum() > 0
    assert x.grad[0].abs().sum() == 0 and x.grad[2].abs().sum() == 0
    # a batch-1 target broadcasts over the batch
    one = stat.target(y[:1])
    torch.testing.assert_close(stat.loss(x, one)[0:1], stat.loss(x[:1], one), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["gram", "mean_std"])
def test_gradcheck_float64(name: str) -> None:
    stat = get_statistic(name)
    x = _features(2, 3, 3, 2, seed=24).double().requires_grad_(True)
    target = stat.target(_features(2, 3, 3, 2, seed=25).double()).detach()
    assert stat.loss(x, target).dtype == torch.float64  # float64 stays float64 for gradcheck
    assert torch.autograd.gradcheck(lambda f: stat.loss(f, target), (x,), eps=1e-6, atol=1e-6)


def test_registry_and_reprs() -> None:
    assert list_statistics() == sorted(
        ["gram", "mean", "mean_sq", "mean_abs", "std", "mean_std", "mmd_linear", "mmd_poly", "mmd_gaussian",
         "skewness", "kurtosis", "moments", "sliced_wasserstein", "cov", "corr"]
    )
    assert set(stats.STATISTICS) == set(list_statistics())
    assert repr(get_statistic("gram", normalization="chw")) == "Gram(normalization='chw', reduction='mean')"
    assert "num_samples=64" in repr(get_statistic("mmd_gaussian", num_samples=64))
    assert get_statistic("gram") == get_statistic("gram", normalization="hw")
    with pytest.raises(UnknownStatisticError, match="available: corr, cov, gram"):
        get_statistic("gramm")
    with pytest.raises(TypeError):
        stats.Gram("hw")  # type: ignore[misc]  (keyword-only)
    with pytest.raises(StatisticsError, match="sigma2"):
        get_statistic("mmd_gaussian", sigma2=-1.0)


def test_loss_rejects_mismatched_target() -> None:
    stat = get_statistic("gram")
    target = stat.target(_features(2, 4, 3, 3, seed=26))
    with pytest.raises(FeatureShapeError, match="target shape"):
        stat.loss(_features(2, 5, 3, 3, seed=27), target)
    with pytest.raises(FeatureShapeError, match="batch size"):
        stat.loss(_features(3, 4, 3, 3, seed=27), target)
