"""nstcore.optimize: batched L-BFGS with per-image state, checked against torch.optim.LBFGS/Adam."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import nstcore  # noqa: F401
from lbfgs_reference import torch_lbfgs
from nstcore.optimize import OptimizeError, adam_minimize, lbfgs_minimize

DT = torch.float64


# ---------------------------------------------------------------- test problems (float64)


def rosenbrock(x: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Chained Rosenbrock per image: sum_i (a - x_i)^2 + b (x_{i+1} - x_i^2)^2, x [B, n] -> [B]."""
    return ((a[:, None] - x[:, :-1]) ** 2).sum(1) + (b[:, None] * (x[:, 1:] - x[:, :-1] ** 2) ** 2).sum(1)


A4 = torch.tensor([1.0, 0.5, -0.3, 0.8], dtype=DT)
B4 = torch.tensor([2.0, 1.0, 3.0, 0.5], dtype=DT)


def x0_4() -> Tensor:
    g = torch.Generator().manual_seed(0)
    return 0.3 * torch.randn(4, 6, generator=g, dtype=DT)


def tracing(closure):
    points: list[Tensor] = []

    def wrapped(x: Tensor) -> Tensor:
        if x.requires_grad:  # count the evaluations with gradient, like torch's closure calls
            points.append(x.detach().clone())
        return closure(x)

    return wrapped, points


# ---------------------------------------------------------------- (1) B=1 equals torch.optim.LBFGS


@pytest.mark.parametrize("history_size", [100, 3])
@pytest.mark.parametrize("lr", [1.0, 0.5])
def test_single_image_matches_torch_lbfgs_step_for_step(history_size: int, lr: float) -> None:
    a, b = A4[:1], B4[:1]
    x0 = x0_4()[:1]
    max_iter = 40

    ref_x, ref_points, ref_state = torch_lbfgs(
        lambda p: rosenbrock(p, a, b).sum(), x0, lr=lr, max_iter=max_iter, history_size=history_size
    )
    closure, points = tracing(lambda x: rosenbrock(x, a, b))
    res = lbfgs_minimize(closure, x0, max_iter=max_iter, history_size=history_size, lr=lr)

    assert len(points) == len(ref_points) == int(res.n_evals[0]) == ref_state["func_evals"]
    for k, (mine, ref) in enumerate(zip(points, ref_points)):
        torch.testing.assert_close(mine, ref, atol=1e-9, rtol=0, msg=f"evaluation {k}")
    torch.testing.assert_close(res.x, ref_x, atol=1e-9, rtol=0)
    torch.testing.assert_close(res.losses, rosenbrock(ref_x, a, b), atol=1e-9, rtol=0)


def test_single_image_matches_torch_lbfgs_on_conv_feature_matching() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv2d(8, 8, 3, padding=1)
    ).to(DT)
    target_img = torch.rand(1, 3, 8, 8, dtype=DT)
    with torch.no_grad():
        target = net(target_img)
    x0 = torch.rand(1, 3, 8, 8, dtype=DT, generator=torch.Generator().manual_seed(1))

    def per_image(x: Tensor) -> Tensor:
        return ((net(x) - target) ** 2).flatten(1).sum(1)

    ref_x, ref_points, _ = torch_lbfgs(lambda p: per_image(p).sum(), x0, max_iter=25, history_size=10)
    closure, points = tracing(per_image)
    res = lbfgs_minimize(closure, x0, max_iter=25, history_size=10)
    assert len(points) == len(ref_points)
    for mine, ref in zip(points, ref_points):
        torch.testing.assert_close(mine, ref, atol=1e-8, rtol=0)
    torch.testing.assert_close(res.x, ref_x, atol=1e-8, rtol=0)


# ---------------------------------------------------------------- (2) batch == independent runs


def mixed_problem(x: Tensor) -> Tensor:
    """4 images that stop at different iterations for different reasons.

    0: Rosenbrock (runs long), 1: separable quadratic (gradient test after few steps),
    2: starts at its minimum (stops before any step), 3: another Rosenbrock.
    """
    c = torch.tensor([0.0, 0.7, -0.2, 0.0], dtype=DT)[:, None]
    quad = (torch.arange(1, 7, dtype=DT) * (x - c) ** 2).sum(1)
    ros = rosenbrock(x, A4, B4)
    return torch.stack([ros[0], quad[1], quad[2], ros[3]])


def mixed_x0() -> Tensor:
    x0 = x0_4()
    x0[2] = -0.2  # exactly at the minimum of image 2
    return x0


def test_batched_equals_single_image_runs_with_different_stopping_iterations() -> None:
    x0 = mixed_x0()
    kw = dict(max_iter=60, history_size=5)
    res = lbfgs_minimize(mixed_problem, x0, **kw)

    # the images really stop at different iterations
    assert len(set(res.n_iter.tolist())) >= 3
    assert res.n_iter[2] == 0 and bool(res.converged[2])
    assert torch.equal(res.x[2], x0[2])  # frozen image never moves

    for b in range(4):
        def single(x: Tensor, b: int = b) -> Tensor:
            full = x0.clone()
            full = torch.cat([full[:b], x, full[b + 1 :]])
            return mixed_problem(full)[b : b + 1]

        ref_x, _, ref_state = torch_lbfgs(lambda p: single(p).sum(), x0[b : b + 1], lr=1.0, **kw)
        torch.testing.assert_close(res.x[b : b + 1], ref_x, atol=1e-10, rtol=0, msg=f"image {b}")
        assert int(res.n_evals[b]) == ref_state["func_evals"], f"image {b}"

        own = lbfgs_minimize(single, x0[b : b + 1], **kw)
        torch.testing.assert_close(res.x[b : b + 1], own.x, atol=1e-12, rtol=0)
        assert res.n_iter[b] == own.n_iter[0] and res.converged[b] == own.converged[0]
        torch.testing.assert_close(res.losses[b : b + 1], own.losses, atol=1e-12, rtol=0)


def test_batched_conv_net_equals_single_runs() -> None:
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.Softplus()).to(DT)
    targets = net(torch.rand(3, 3, 8, 8, dtype=DT)).detach()
    x0 = torch.rand(3, 3, 8, 8, dtype=DT, generator=torch.Generator().manual_seed(2))

    def loss(x: Tensor, t: Tensor = targets) -> Tensor:
        return ((net(x) - t) ** 2).flatten(1).sum(1)

    res = lbfgs_minimize(loss, x0, max_iter=20, history_size=7)
    for b in range(3):
        ref_x, _, _ = torch_lbfgs(lambda p, b=b: loss(p, targets[b : b + 1]).sum(), x0[b : b + 1],
                                  max_iter=20, history_size=7)
        torch.testing.assert_close(res.x[b : b + 1], ref_x, atol=1e-9, rtol=0)


# ---------------------------------------------------------------- (3) why per-image state matters


def test_stacked_torch_lbfgs_couples_images() -> None:
    x0 = x0_4()
    kw = dict(max_iter=10, history_size=5)
    stacked_x, _, _ = torch_lbfgs(lambda p: rosenbrock(p, A4, B4).sum(), x0, **kw)
    single_x, _, _ = torch_lbfgs(lambda p: rosenbrock(p, A4[:1], B4[:1]).sum(), x0[:1], **kw)
    ours = lbfgs_minimize(lambda x: rosenbrock(x, A4, B4), x0, **kw)

    # torch's shared state makes image 0 depend on its batch neighbours ...
    assert (stacked_x[0] - single_x[0]).abs().max() > 1e-2
    # ... per-image state does not
    torch.testing.assert_close(ours.x[:1], single_x, atol=1e-10, rtol=0)


# ---------------------------------------------------------------- (4) convex quadratic


def test_converges_to_known_minimum_of_convex_quadratics() -> None:
    g = torch.Generator().manual_seed(3)
    n, batch = 8, 3
    m = torch.randn(batch, n, n, generator=g, dtype=DT)
    hess = m @ m.transpose(1, 2) + n * torch.eye(n, dtype=DT)  # SPD, condition number moderate
    c = torch.randn(batch, n, generator=g, dtype=DT)

    def quad(x: Tensor) -> Tensor:
        r = x - c
        return 0.5 * torch.einsum("bi,bij,bj->b", r, hess, r) + 2.0

    res = lbfgs_minimize(
        quad, torch.zeros(batch, n, dtype=DT), max_iter=200, tolerance_grad=1e-9, tolerance_change=1e-16
    )
    assert bool(res.converged.all())
    assert bool((res.n_iter < 200).all())
    torch.testing.assert_close(res.x, c, atol=1e-8, rtol=0)  # |x-c| <= |g|/lambda_min
    torch.testing.assert_close(res.losses, torch.full((batch,), 2.0, dtype=DT), atol=1e-10, rtol=0)


def test_clamp_keeps_iterates_in_box_and_finds_box_minimum() -> None:
    c = torch.tensor([[-0.5, 0.3, 1.7, 0.9]], dtype=DT).repeat(2, 1)
    c[1] = torch.tensor([0.2, 2.0, 0.5, -1.0], dtype=DT)
    seen: list[Tensor] = []
    res = lbfgs_minimize(
        lambda x: ((x - c) ** 2).sum(1), torch.full_like(c, 0.5), max_iter=50, clamp=(0.0, 1.0),
        callback=lambda k, x: seen.append(x.clone()),
    )
    assert all(bool(((s >= 0) & (s <= 1)).all()) for s in seen)
    torch.testing.assert_close(res.x, c.clamp(0, 1), atol=1e-6, rtol=0)


# ---------------------------------------------------------------- (5) determinism, bookkeeping


def test_deterministic_bitwise() -> None:
    runs = [lbfgs_minimize(mixed_problem, mixed_x0(), max_iter=40, history_size=4) for _ in range(2)]
    assert torch.equal(runs[0].x, runs[1].x)
    assert torch.equal(runs[0].losses, runs[1].losses)
    assert torch.equal(runs[0].n_iter, runs[1].n_iter)


def test_max_iter_budget_history_and_callback() -> None:
    x0 = x0_4()
    calls: list[int] = []
    res = lbfgs_minimize(
        lambda x: rosenbrock(x, A4, B4), x0, max_iter=7, record_every=2,
        callback=lambda k, x: calls.append(k),
    )
    assert calls == list(range(1, 8))
    assert res.n_iter.tolist() == [7, 7, 7, 7] and not bool(res.converged.any())
    # final losses are at the returned x even though torch skips the last evaluation
    torch.testing.assert_close(res.losses, rosenbrock(res.x, A4, B4), atol=0, rtol=0)
    assert [k for k, _ in res.history] == [0, 2, 4, 6]
    torch.testing.assert_close(res.history[0][1], rosenbrock(x0, A4, B4), atol=0, rtol=0)
    assert res.n_evals.tolist() == [7, 7, 7, 7]  # initial + steps 1..6 (torch: none after step 7)


def test_errors() -> None:
    x0 = torch.zeros(2, 3, dtype=DT)
    with pytest.raises(OptimizeError, match="line_search must be"):
        lbfgs_minimize(lambda x: (x**2).sum(1), x0, line_search="wolfe")
    with pytest.raises(OptimizeError, match="armijo"):
        lbfgs_minimize(lambda x: (x**2).sum(1), x0, line_search="strong_wolfe", bounds=(0.0, 1.0))
    with pytest.raises(OptimizeError, match="bounds"):
        lbfgs_minimize(lambda x: (x**2).sum(1), x0, bounds=(1.0, 1.0))
    with pytest.raises(OptimizeError, match="not both"):
        lbfgs_minimize(lambda x: (x**2).sum(1), x0, bounds=(0.0, 1.0), clamp=(0.0, 1.0))
    with pytest.raises(OptimizeError, match="sync_every"):
        lbfgs_minimize(lambda x: (x**2).sum(1), x0, sync_every=0)
    with pytest.raises(OptimizeError, match=r"shape \(2,\)"):
        lbfgs_minimize(lambda x: (x**2).sum(), x0)
    with pytest.raises(OptimizeError, match="require grad"):
        lbfgs_minimize(lambda x: (x.detach() ** 2).sum(1), x0)
    with pytest.raises(OptimizeError, match="floating-point"):
        lbfgs_minimize(lambda x: x.sum(1), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(OptimizeError, match="clamp"):
        lbfgs_minimize(lambda x: (x**2).sum(1), x0, clamp=(1.0, 0.0))


# ---------------------------------------------------------------- Adam


def test_adam_batched_equals_torch_adam_single_runs() -> None:
    x0 = x0_4()
    res = adam_minimize(lambda x: rosenbrock(x, A4, B4), x0, steps=30, lr=0.05, betas=(0.8, 0.99))
    for b in range(4):
        p = x0[b : b + 1].clone().requires_grad_(True)
        opt = torch.optim.Adam([p], lr=0.05, betas=(0.8, 0.99))
        for _ in range(30):
            opt.zero_grad()
            rosenbrock(p, A4[b : b + 1], B4[b : b + 1]).sum().backward()
            opt.step()
        torch.testing.assert_close(res.x[b : b + 1], p.detach(), atol=1e-12, rtol=0)
    torch.testing.assert_close(res.losses, rosenbrock(res.x, A4, B4), atol=0, rtol=0)
    assert res.n_iter.tolist() == [30] * 4 and not bool(res.converged.any())
