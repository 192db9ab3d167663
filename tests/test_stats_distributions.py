"""Issue 21 part 1: higher moments, centred Grams and the sliced Wasserstein distance as style statistics,
against independent references (scipy.stats, numpy.corrcoef / cov, sorted numpy arrays), plus the command
line's parsing of `--statistic NAME[:VALUE]` and `texprobe stats`."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from typer.testing import CliRunner

from nstcore.stats import StatisticsError, get_statistic, parse_statistic


def _features(seed: int = 0, shape=(3, 5, 6, 7)) -> torch.Tensor:
    """Skewed, heavy-tailed float64 features (exponentials and squares), [B, C, H, W]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    return torch.where(torch.arange(shape[1])[None, :, None, None] % 2 == 0, x.exp(), x ** 2 - 0.3 * x)


def _flat_np(x: torch.Tensor) -> np.ndarray:
    b, c, h, w = x.shape
    return x.reshape(b, c, h * w).numpy()


def test_skewness_kurtosis_and_moments_equal_scipy():
    x = _features()
    flat = _flat_np(x)
    skew = get_statistic("skewness", eps=0.0).target(x)
    kurt = get_statistic("kurtosis", eps=0.0).target(x)
    np.testing.assert_allclose(skew.numpy(), scipy.stats.skew(flat, axis=2), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(kurt.numpy(), scipy.stats.kurtosis(flat, axis=2), rtol=1e-6, atol=1e-9)
    k = 5
    got = get_statistic("moments", k=k, eps=0.0).target(x).reshape(3, 5, k).numpy()
    sd = flat.std(axis=2)
    want = [flat.mean(axis=2), sd] + [scipy.stats.moment(flat, j, axis=2) / sd ** j for j in range(3, k + 1)]
    np.testing.assert_allclose(got, np.stack(want, axis=2), rtol=1e-6, atol=1e-9)


def test_centred_grams_equal_numpy_cov_and_corrcoef():
    x = _features(1)
    flat = _flat_np(x)
    cov = get_statistic("cov").target(x).numpy()
    corr = get_statistic("corr", eps=0.0).target(x).numpy()
    for b in range(x.shape[0]):
        np.testing.assert_allclose(cov[b], np.cov(flat[b], bias=True), rtol=1e-10)
        np.testing.assert_allclose(corr[b], np.corrcoef(flat[b]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("spec", ["skewness", "kurtosis", "moments:3", "cov", "corr", "sliced_wasserstein"])
def test_each_image_loss_depends_only_on_its_own_features(spec):
    name, options = parse_statistic(spec)
    stat = get_statistic(name, **({"seed": 3} if name == "sliced_wasserstein" else {}), **options)
    x = _features(2).float()
    target = stat.target(_features(3).float())
    before = stat.loss(x, target)
    changed = x.clone()
    changed[1] = changed[1] * 3 + 1
    after = stat.loss(changed, target)
    assert before.shape == (3,)
    assert after[0] == before[0] and after[2] == before[2] and after[1] != before[1]


def test_sliced_wasserstein_zero_for_the_same_set_and_blind_to_positions():
    sw = get_statistic("sliced_wasserstein", projections=16, seed=0)
    x = _features(4)
    assert torch.all(sw.loss(x, sw.target(x)) == 0)
    b, c, h, w = x.shape
    shuffled = x.reshape(b, c, h * w)[:, :, torch.randperm(h * w, generator=torch.Generator().manual_seed(1))]
    assert torch.allclose(sw.loss(shuffled.reshape(b, c, h, w), sw.target(x)), torch.zeros(b, dtype=x.dtype),
                          atol=1e-12)
    # another image size: the target's quantiles; a set repeated twice has the same distribution
    doubled = torch.cat([x, x], dim=3)
    assert torch.allclose(sw.loss(x, sw.target(doubled)), torch.zeros(b, dtype=x.dtype), atol=1e-12)


def test_sliced_wasserstein_with_one_projection_is_the_1d_squared_w2_of_the_projections():
    sw = get_statistic("sliced_wasserstein", projections=1, seed=7)
    x, t = _features(5), _features(6) * 0.5 + 1.0
    v = sw.directions(x.shape[1], dtype=torch.float64, device=x.device)[0].numpy()
    got = sw.loss(x, sw.target(t)).numpy()
    for b in range(x.shape[0]):
        a = np.sort(v @ _flat_np(x)[b])
        c = np.sort(v @ _flat_np(t)[b])
        assert got[b] == pytest.approx(np.mean((a - c) ** 2), rel=1e-12)


def test_sliced_wasserstein_gradient_is_right():
    sw = get_statistic("sliced_wasserstein", projections=4, seed=1)
    x = _features(7, shape=(2, 3, 3, 4)).requires_grad_(True)
    target = sw.target(_features(8, shape=(2, 3, 3, 4)))
    assert torch.autograd.gradcheck(lambda f: sw.loss(f, target), (x,))


def test_sliced_wasserstein_matches_a_bimodal_distribution_that_first_moments_cannot():
    """Features optimised directly: the sliced Wasserstein loss pulls a Gaussian cloud onto a two-cluster
    target (the distance, measured with 64 other fixed directions, falls more than 10x); matching channel
    means and standard deviations (AdaIN) leaves it far: the first two moments do not make the shape."""
    torch.manual_seed(0)
    target_features = torch.cat([torch.randn(1, 4, 16, 8) * 0.3 + 2.0, torch.randn(1, 4, 16, 8) * 0.5 - 1.0], dim=3)
    judge = get_statistic("sliced_wasserstein", projections=64, seed=1)
    distances = {}
    for name in ("sliced_wasserstein", "mean_std"):
        stat = get_statistic(name)
        target = stat.target(target_features)
        x = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
        start = judge.loss(x, judge.target(target_features)).item()
        opt = torch.optim.Adam([x], lr=0.05)
        for _ in range(300):
            opt.zero_grad()
            stat.loss(x, target).sum().backward()
            opt.step()
        distances[name] = (start, judge.loss(x, judge.target(target_features)).item())
    assert distances["sliced_wasserstein"][0] / distances["sliced_wasserstein"][1] > 10
    assert distances["mean_std"][1] > 20 * distances["sliced_wasserstein"][1]


def test_statistic_specs_parse_with_clear_errors():
    assert parse_statistic("moments:4") == ("moments", {"k": 4})
    assert parse_statistic("sliced_wasserstein:32") == ("sliced_wasserstein", {"projections": 32})
    assert parse_statistic("gram") == ("gram", {})
    with pytest.raises(StatisticsError, match="takes no ':3'"):
        parse_statistic("gram:3")
    with pytest.raises(StatisticsError, match="must be an integer"):
        parse_statistic("moments:four")
    with pytest.raises(StatisticsError, match="unknown statistic 'momentz'"):
        parse_statistic("momentz")
    with pytest.raises(StatisticsError, match="k must be an integer from 1 to 8"):
        get_statistic("moments", k=0)


@pytest.mark.parametrize("spec", ["mean_std", "moments:3", "sliced_wasserstein:8", "corr", "gram"])
def test_every_statistic_builds_a_transfer_config_from_the_command_line(spec):
    """`stylize --statistic NAME` used to keep the Gram's normalization option for every statistic, so any
    statistic without one (mean_std, ...) was refused."""
    from pipelines.ops.transfer_options import build_transfer_config

    config = build_transfer_config(backbone="vgg19", weights="random", preset_name=None, statistic=spec, size=32)
    stat = config.build_statistic()
    assert stat.name == spec.split(":")[0]
    assert ("normalization" in config.statistic_options) == (stat.name == "gram")


def test_stats_command_lists_every_statistic():
    from pipelines.cli import app
    from nstcore.stats import list_statistics

    out = CliRunner().invoke(app, ["stats"])
    assert out.exit_code == 0
    text = "".join(out.output.split())  # the table may wrap long cells
    for name in list_statistics():
        assert name in text


def test_fixed_directions_reuse_the_sorted_target_until_it_changes():
    fixed = get_statistic("sliced_wasserstein", projections=8, seed=4)
    x, t = _features(9), _features(10)
    target = fixed.target(t.clone())  # (the target may be a view of its features)
    first = fixed.loss(x, target)
    assert torch.equal(fixed.loss(x, target), first)
    target.mul_(2.0)  # changed in place: the cached projections must not be used
    fresh = get_statistic("sliced_wasserstein", projections=8, seed=4)
    assert torch.equal(fixed.loss(x, target), fresh.loss(x, fresh.target(t * 2.0)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sort_last_equals_torch_sort_in_values_and_gradient(dtype):
    """The sliced Wasserstein distance sorts with numpy on CPU (SIMD; BENCHMARKS.md): same values as
    torch.sort, and the same gradient (back through the permutation)."""
    from nstcore.stats.sliced_wasserstein import sort_last

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 257, generator=g, dtype=dtype, requires_grad=True)
    upstream = torch.randn(2, 3, 257, generator=g, dtype=dtype)
    ours = sort_last(x)
    (grad_ours,) = torch.autograd.grad((ours * upstream).sum(), x)
    ref = torch.sort(x, dim=-1).values
    (grad_ref,) = torch.autograd.grad((ref * upstream).sum(), x)
    assert torch.equal(ours.detach(), ref.detach()) and torch.equal(grad_ours, grad_ref)
    assert torch.equal(sort_last(x.detach()), ref.detach())  # no grad: the values only
