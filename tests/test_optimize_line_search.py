"""nstcore.optimize line searches: per-image strong Wolfe (== torch.optim.LBFGS's) and Armijo."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import nstcore  # noqa: F401
from lbfgs_reference import torch_lbfgs
from nstcore.optimize import lbfgs_minimize
from nstcore.optimize.line_search import cubic_interpolate

DT = torch.float64


def rosenbrock(x: Tensor, b: float = 100.0) -> Tensor:
    """Chained Rosenbrock per image, minimum 0 at (1, ..., 1)."""
    return ((1 - x[:, :-1]) ** 2).sum(1) + (b * (x[:, 1:] - x[:, :-1] ** 2) ** 2).sum(1)


def starts(n: int, scale: float, batch: int, seed: int = 0) -> Tensor:
    return scale * torch.randn(batch, n, generator=torch.Generator().manual_seed(seed), dtype=DT)


def torch_lbfgs_wolfe(loss_fn, x0: Tensor, **kw) -> tuple[Tensor, list[Tensor], dict]:
    return torch_lbfgs(loss_fn, x0, line_search_fn="strong_wolfe", **kw)


def tracing(fn):
    points: list[Tensor] = []

    def wrapped(x: Tensor) -> Tensor:
        points.append(x.detach().clone())
        return fn(x)

    return wrapped, points


def test_cubic_interpolate_matches_hand_computed_minimiser() -> None:
    # cubic p(t) = t^3 - 3t (slopes 3t^2 - 3): through t=0 (f 0, g -3) and t=2 (f 2, g 9), minimum at t=1
    one = lambda v: torch.tensor([v], dtype=DT)  # noqa: E731
    t = cubic_interpolate(one(0.0), one(0.0), one(-3.0), one(2.0), one(2.0), one(9.0))
    torch.testing.assert_close(t, one(1.0), atol=1e-12, rtol=0)
    # clamped to the given interval
    t = cubic_interpolate(one(0.0), one(0.0), one(-3.0), one(2.0), one(2.0), one(9.0), one(1.5), one(3.0))
    torch.testing.assert_close(t, one(1.5), atol=0, rtol=0)


@pytest.mark.parametrize("n,scale,seed", [(2, 2.0, 0), (6, 1.0, 1), (6, 3.0, 2)])
def test_strong_wolfe_single_image_matches_torch(n: int, scale: float, seed: int) -> None:
    x0 = starts(n, scale, 1, seed)
    ref_x, ref_points, state = torch_lbfgs_wolfe(lambda p: rosenbrock(p).sum(), x0, max_iter=60, history_size=10)
    closure, points = tracing(rosenbrock)
    res = lbfgs_minimize(closure, x0, max_iter=60, history_size=10, line_search="strong_wolfe")
    assert len(points) == len(ref_points) == int(res.n_evals[0]) == state["func_evals"]
    for k, (mine, ref) in enumerate(zip(points, ref_points)):
        torch.testing.assert_close(mine, ref, atol=1e-9, rtol=0, msg=f"trial point {k}")
    torch.testing.assert_close(res.x, ref_x, atol=1e-9, rtol=0)


@pytest.mark.parametrize("line_search", ["strong_wolfe", "armijo"])
def test_batched_line_search_equals_single_image_runs(line_search: str) -> None:
    x0 = torch.cat([starts(6, 1.0, 1, 1), starts(6, 3.0, 1, 2), starts(6, 2.0, 1, 3), torch.ones(1, 6, dtype=DT)])
    res = lbfgs_minimize(rosenbrock, x0, max_iter=80, history_size=8, line_search=line_search)
    assert res.n_iter[3] == 0 and bool(res.converged[3])  # starts at the minimum
    assert len(set(res.n_evals.tolist())) >= 3  # images take different numbers of trials
    for b in range(4):
        own = lbfgs_minimize(rosenbrock, x0[b : b + 1], max_iter=80, history_size=8, line_search=line_search)
        torch.testing.assert_close(res.x[b : b + 1], own.x, atol=1e-10, rtol=0, msg=f"image {b}")
        assert res.n_evals[b] == own.n_evals[0] and res.n_iter[b] == own.n_iter[0]
        if line_search == "strong_wolfe":
            ref_x, _, _ = torch_lbfgs_wolfe(lambda p: rosenbrock(p).sum(), x0[b : b + 1], max_iter=80, history_size=8)
            torch.testing.assert_close(res.x[b : b + 1], ref_x, atol=1e-9, rtol=0)


def test_line_searches_converge_where_fixed_step_overshoots() -> None:
    x0 = starts(2, 2.0, 1, 16)  # Rosenbrock 2-D
    fixed = lbfgs_minimize(rosenbrock, x0, max_iter=100, record_every=1)
    trace = torch.stack([loss[0] for _, loss in fixed.history])
    assert float(trace.max()) > 100 * float(trace[0])  # fixed step overshoots by orders of magnitude
    assert not bool(fixed.converged[0]) and float(fixed.losses[0]) > 0.05  # minimum: 0 at (1, 1)
    for line_search in ("armijo", "strong_wolfe"):
        res = lbfgs_minimize(rosenbrock, x0, max_iter=100, line_search=line_search, record_every=1)
        trace = torch.stack([loss[0] for _, loss in res.history])
        assert bool((trace[1:] <= trace[:-1]).all()), line_search  # monotone: sufficient decrease
        assert bool(res.converged[0]), line_search
        torch.testing.assert_close(res.x, torch.ones_like(x0), atol=1e-5, rtol=0)


def test_armijo_accepts_only_sufficient_decrease_and_backtracks_from_nan() -> None:
    # f = x^2 / 2 but NaN for |x| > 2: the first trial (lr = 8) lands in the NaN region and must shrink
    def f(x: Tensor) -> Tensor:
        val = 0.5 * (x**2).sum(1)
        return torch.where(x.abs().amax(1) > 2, torch.full_like(val, float("nan")), val)

    x0 = torch.tensor([[1.5], [-1.0]], dtype=DT)
    res = lbfgs_minimize(f, x0, max_iter=30, lr=8.0, line_search="armijo", record_every=1)
    trace = torch.stack([loss for _, loss in res.history])
    assert bool(torch.isfinite(trace).all())
    assert bool((trace[1:] <= trace[:-1]).all())
    torch.testing.assert_close(res.x, torch.zeros_like(x0), atol=1e-6, rtol=0)
