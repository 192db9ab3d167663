"""Batched L-BFGS with per-image state (optionally box-constrained and with a per-image line search).

Gatys-style transfer and feature inversion (Gatys et al. 2016; Mahendran & Vedaldi 2015) optimise
the pixels of an image. texprobe optimises B images in one forward/backward pass, each with its own
targets. One ``torch.optim.LBFGS`` over the stacked batch would couple the images through its shared
history, step size and stopping test, so a stimulus would depend on its batch neighbours.
:func:`lbfgs_minimize` keeps every piece of L-BFGS state per image, vectorised across the batch (the
only Python loops run over iterations and line-search trials; on CUDA the long dot products are issued
as one GEMM per image, :mod:`nstcore.long_bmm`, without a host sync): image ``b``
follows the trajectory of a single-image run up to floating-point error, and images that meet a
stopping test freeze while the others continue.

The algorithm is that of ``torch.optim.LBFGS`` (one ``step`` call with ``max_iter`` iterations):
Nocedal & Wright (2006), Algorithm 7.4, with ``H0 = s.y / y.y`` (N&W eq. 7.20), a history update
only when ``y.s > 1e-10``, a first step of ``lr * min(1, 1/|g|_1)`` and torch's stopping tests. The
direction is computed from the compact representation (:mod:`nstcore.optimize.history`).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from nstcore.optimize import line_search as ls
from nstcore.optimize.common import (
    BestIterate, Bounds, Callback, Closure, OptimizeError, OptimizeResult, bdot, bound_active, check_box,
    check_positive, check_x0, evaluate, evaluate_no_grad, project, projected_gradient_max, record,
)
from nstcore.optimize.history import CompactHistory
from nstcore.optimize.memory import plan_history_size

__all__ = ["lbfgs_minimize"]

LineSearch = Literal[None, "armijo", "strong_wolfe"]


def lbfgs_minimize(
    closure: Closure,
    x0: Tensor,
    *,
    max_iter: int = 500,
    max_eval: int | None = None,
    history_size: int | Literal["auto"] = 100,
    lr: float = 1.0,
    tolerance_grad: float = 1e-7,
    tolerance_change: float = 1e-9,
    line_search: LineSearch = None,
    bounds: Bounds | None = None,
    clamp: Bounds | None = None,
    keep_best: bool = False,
    history_dtype: torch.dtype | None = None,
    memory_budget: int | None = None,
    sync_every: int = 1,
    callback: Callback | None = None,
    record_every: int = 0,
) -> OptimizeResult:
    """Minimise B independent losses with L-BFGS whose whole state is per image.

    For ``B == 1`` and no ``bounds`` the iterates equal those of one
    ``torch.optim.LBFGS([x], lr=lr, max_iter=max_iter, line_search_fn=...).step(closure)`` call
    (``line_search=None`` or ``"strong_wolfe"``), up to rounding.

    Args:
        closure: maps images ``x [B, ...]`` to per-image losses ``[B]``, differentiably; ``loss_b``
            must depend on ``x_b`` only. It should not synchronise with the host (no ``.item()``).
        x0: starting images ``[B, ...]`` (floating point; computation runs in its dtype/device).
        max_iter, max_eval: iterations / closure evaluations per image (torch's; ``max_eval``
            defaults to ``max_iter * 5 // 4``).
        history_size: (s, y) pairs kept per image, or ``"auto"``: the largest value <= 100 whose
            state fits in ``memory_budget`` (see :mod:`nstcore.optimize.memory`).
        lr: step length (the first step is ``lr * min(1, 1/|g|_1)``); the initial trial step of a
            line search.
        tolerance_grad: stop an image when ``max|g| <= tolerance_grad`` (with ``bounds``: of the
            projected gradient ``P(x - g) - x``).
        tolerance_change: stop an image when ``g.d``, ``max|step|`` or its loss change fall below it.
        line_search: ``None`` (fixed step: torch's default, Gatys' code); ``"armijo"`` (backtracking
            to sufficient decrease, per image; with ``bounds`` along the projection arc);
            ``"strong_wolfe"`` (torch's strong-Wolfe search, per image; not with bounds or clamp).
        bounds: ``(low, high)``: projected L-BFGS on the box. ``x0`` is projected, every iterate is
            ``P(x + t d)``, the gradient components of coordinates held at a bound with the gradient
            pointing outward are zeroed before the direction is built and the direction is zero
            there (Bertsekas 1982, two-metric projection), the history uses the actual displacement,
            and the reported losses are those of the projected iterates.
        clamp: ``(low, high)``: the PyTorch NST tutorial's projection of every moved image onto the
            box, with no other change to L-BFGS (``x0`` is not clamped). Prefer ``bounds``.
        keep_best: return, per image, the evaluated iterate with the lowest loss when the last one is
            worse (a NaN loss never wins); ``losses`` are then those of the returned iterates.
        history_dtype: dtype of the stored pairs (e.g. ``torch.bfloat16`` halves the history's
            memory; coefficients and products accumulate in ``x0``'s dtype). Default: ``x0``'s.
        memory_budget: bytes the optimiser's state may use (default: half the free memory of
            ``x0``'s device); a batch whose state would not fit raises :class:`OptimizeMemoryError`.
        sync_every: check "all images stopped" on the host only every this many iterations (the
            fixed-step loop has no other host synchronisation, so CUDA work queues up); stopped
            images stay frozen in between. Line searches sync once per trial.
        callback: ``callback(iteration, x)`` after every iteration (``x`` detached; do not modify it).
        record_every: record ``(iteration, losses)`` every this many iterations (0: never).

    Evaluation rule (torch's, with ``line_search=None``): one closure call with gradient at the
    start and one after every step except a step taken in iteration ``max_iter``; the losses at
    those final iterates come from one extra forward-only call (not counted in ``n_evals``).
    """
    _check_options(x0, max_iter, history_size, lr, line_search, bounds, clamp, record_every, sync_every)
    max_eval = max_iter * 5 // 4 if max_eval is None else max_eval
    if max_eval < 1:
        raise OptimizeError(f"max_eval must be >= 1, got {max_eval}")

    shape = x0.shape
    batch = shape[0]
    device, dtype = x0.device, x0.dtype
    x = project(x0.detach().reshape(batch, -1), bounds).clone()
    dim = x.shape[1]
    cap = max(1, max_iter - 1)  # at most max_iter - 1 pairs can ever be stored
    mem = plan_history_size(
        batch, dim, history_size, cap=cap, dtype=dtype, history_dtype=history_dtype, device=device,
        budget=memory_budget, extra_vectors=_work_vectors(line_search, keep_best),
    )

    def evaluate_flat(point: Tensor) -> tuple[Tensor, Tensor]:
        return evaluate(closure, point, shape)

    history: list[tuple[int, Tensor]] = []
    loss, g = evaluate_flat(x)
    record(history, record_every, 0, loss)
    best = BestIterate(x, loss) if keep_best else None

    n_evals = torch.ones(batch, dtype=torch.long, device=device)
    n_iter = torch.zeros(batch, dtype=torch.long, device=device)
    converged = projected_gradient_max(x, g, bounds) <= tolerance_grad
    active = ~converged
    loss_known = torch.ones(batch, dtype=torch.bool, device=device)

    hist = CompactHistory(batch, dim, mem, dtype=dtype, device=device, history_dtype=history_dtype)
    d = torch.zeros_like(x)
    direction = torch.zeros_like(x)
    t = torch.zeros(batch, dtype=dtype, device=device)
    prev_g = torch.zeros_like(x)
    y = torch.zeros_like(x)
    prev_loss = torch.zeros_like(loss)
    step = torch.zeros_like(x)  # the last displacement s
    actual_steps = bounds is not None or clamp is not None  # s = x_new - x instead of t d
    box = bounds if bounds is not None else clamp

    iteration = 0
    while iteration < max_iter:
        if iteration % sync_every == 0 and not bool(active.any()):
            break
        iteration += 1
        act = active.unsqueeze(1)
        g_free = g if bounds is None else g.masked_fill(bound_active(x, g, bounds), 0.0)

        # ---------------- direction ----------------
        if iteration == 1:
            torch.where(act, g_free.neg(), d, out=d)
        else:
            torch.sub(g, prev_g, out=y)
            if not actual_steps:
                torch.mul(d, t.unsqueeze(1), out=step)
            hist.update_and_direction(g_free, y, step, active=active, iteration=iteration, out=direction)
            if bounds is not None:
                direction.masked_fill_(bound_active(x, g, bounds), 0.0)
            torch.where(act, direction, d, out=d)
        torch.where(act, g, prev_g, out=prev_g)
        prev_loss = torch.where(active, loss, prev_loss)

        # ---------------- step length ----------------
        if iteration == 1:
            t_new = torch.clamp(1.0 / g_free.abs().sum(dim=1), max=1.0) * lr
        else:
            t_new = torch.full_like(t, lr)
        t = torch.where(active, t_new, t)
        gtd = bdot(g, d)
        no_descent = active & (gtd > -tolerance_change)
        converged |= no_descent
        moving = active & ~no_descent
        mov = moving.unsqueeze(1)

        # ---------------- step (and evaluation) ----------------
        if line_search is None:
            x_new = project(x + t.unsqueeze(1) * d, box)
            if actual_steps:
                torch.where(mov, x_new - x, step, out=step)
            torch.where(mov, x_new, x, out=x)
            evaluated = iteration != max_iter
            # with sync_every == 1 skip the call when no image moved (torch's count); otherwise no sync
            if evaluated and (sync_every > 1 or bool(moving.any())):
                new_loss, new_g = evaluate_flat(x)
                loss = torch.where(moving, new_loss, loss)
                torch.where(mov, new_g, g, out=g)
                n_evals += moving.long()
            else:
                loss_known &= ~moving
        elif bool(moving.any()):
            max_ls = max_eval - n_evals
            if line_search == "strong_wolfe":
                x_new, f_new, g_new, t_ls, ls_evals = ls.strong_wolfe(
                    evaluate_flat, x, t, d, loss, g, gtd, moving, max_ls)
            else:
                x_new, f_new, g_new, t_ls, ls_evals = ls.armijo(
                    evaluate_flat, x, t, d, loss, g, moving, max_ls, bounds=bounds)
            if actual_steps:
                torch.where(mov, x_new - x, step, out=step)
            torch.where(mov, x_new, x, out=x)
            loss = torch.where(moving, f_new, loss)
            torch.where(mov, g_new, g, out=g)
            t = torch.where(moving, t_ls, t)
            n_evals += ls_evals
            evaluated = True
        else:
            evaluated = True  # nothing moved: losses and gradients are still current
        n_iter += moving.long()
        opt_cond = moving & (projected_gradient_max(x, g, bounds) <= tolerance_grad) if evaluated else moving & False

        # ---------------- stopping tests (per image, torch's order) ----------------
        out_of_budget = (iteration == max_iter) | (n_evals >= max_eval)
        moved = step if actual_steps else d * t.unsqueeze(1)
        small_step = moved.abs().amax(dim=1) <= tolerance_change
        small_change = ((loss - prev_loss).abs() < tolerance_change) & evaluated
        done = moving & (opt_cond | small_step | small_change)
        converged |= done
        active = moving & ~done & ~out_of_budget
        if best is not None and evaluated:
            best.update(x, loss, moving)

        if callback is not None:
            callback(iteration, x.view(shape))
        if record_every > 0 and iteration % record_every == 0 and bool(loss_known.all()):
            record(history, record_every, iteration, loss)

    if not bool(loss_known.all()):
        loss = torch.where(loss_known, loss, evaluate_no_grad(closure, x, shape))
        record(history, record_every, iteration, loss)
    if best is not None:
        x, loss = best.select(x, loss)
    return OptimizeResult(
        x=x.view(shape), losses=loss, n_iter=n_iter, converged=converged, n_evals=n_evals,
        history=history, history_size=mem,
    )


def _work_vectors(line_search: LineSearch, keep_best: bool) -> int:
    """``[B, D]`` working vectors of the loop besides the history (x, g, d, direction, prev_g, y,
    step, the new gradient and x_new temporaries), the line search's and keep_best's."""
    extra = {None: 0, "armijo": 4, "strong_wolfe": 6}[line_search]
    return 9 + extra + (1 if keep_best else 0)


def _check_options(
    x0: Tensor, max_iter: int, history_size: int | str, lr: float, line_search: object,
    bounds: Bounds | None, clamp: Bounds | None, record_every: int, sync_every: int,
) -> None:
    if line_search not in (None, "armijo", "strong_wolfe"):
        raise OptimizeError(f"line_search must be None, 'armijo' or 'strong_wolfe', got {line_search!r}")
    check_x0(x0)
    check_box("bounds", bounds)
    check_box("clamp", clamp)
    if bounds is not None and clamp is not None:
        raise OptimizeError("give bounds (projected L-BFGS) or clamp (tutorial clamping), not both")
    if line_search == "strong_wolfe" and (bounds is not None or clamp is not None):
        raise OptimizeError(
            "line_search='strong_wolfe' does not support bounds or clamp (the Wolfe curvature test is "
            "not defined along a projection arc); use line_search='armijo' with bounds"
        )
    if line_search == "armijo" and clamp is not None:
        raise OptimizeError("line_search='armijo' with a box: pass it as bounds=, not clamp=")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise OptimizeError(f"max_iter must be an int >= 1, got {max_iter!r}")
    if history_size != "auto" and (not isinstance(history_size, int) or history_size < 1):
        raise OptimizeError(f"history_size must be an int >= 1 or 'auto', got {history_size!r}")
    if record_every < 0:
        raise OptimizeError(f"record_every must be >= 0, got {record_every}")
    if not isinstance(sync_every, int) or sync_every < 1:
        raise OptimizeError(f"sync_every must be an int >= 1, got {sync_every!r}")
    check_positive("lr", lr)
