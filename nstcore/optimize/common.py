"""Shared pieces of the batched optimisers: errors, the result type, input checks, closure
evaluation, box projection and the NaN-safe best-iterate tracker (``keep_best``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from nstcore.long_bmm import long_bmm

__all__ = [
    "BestIterate",
    "Bounds",
    "Callback",
    "Closure",
    "OptimizeError",
    "OptimizeMemoryError",
    "OptimizeResult",
    "nan_safe_better",
]

Closure = Callable[[Tensor], Tensor]
Callback = Callable[[int, Tensor], None]
Bounds = tuple[float, float]


class OptimizeError(ValueError):
    """Invalid optimiser input or a closure that breaks the contract ``x [B,...] -> losses [B]``."""


class OptimizeMemoryError(OptimizeError, MemoryError):
    """The optimiser state for this batch would not fit in the memory available for it."""


@dataclass(repr=False)
class OptimizeResult:
    """Outcome of a batched minimisation; every tensor field has one entry per image.

    Attributes:
        x: the optimised images, same shape and dtype as ``x0`` (detached).
        losses: ``[B]`` loss of each image at ``x`` (with ``keep_best``: of the returned best iterate).
        n_iter: ``[B]`` number of updates applied to each image.
        converged: ``[B]`` True where a convergence test stopped the image (gradient, step or loss
            change below tolerance), False where it ran out of iterations or evaluations.
        n_evals: ``[B]`` closure evaluations with gradient counted for each image, torch's rule
            (initial evaluation + one per step that is followed by an evaluation, + line-search trials).
        history: ``(iteration, losses[B])`` pairs, recorded every ``record_every`` iterations
            (iteration 0 is the start); empty when ``record_every == 0``.
        history_size: the number of (s, y) pairs kept per image (L-BFGS; 0 for Adam).
    """

    x: Tensor
    losses: Tensor
    n_iter: Tensor
    converged: Tensor
    n_evals: Tensor
    history: list[tuple[int, Tensor]] = field(default_factory=list)
    history_size: int = 0

    def __repr__(self) -> str:
        return (
            f"OptimizeResult(x={tuple(self.x.shape)}, losses={self.losses.tolist()}, "
            f"n_iter={self.n_iter.tolist()}, converged={self.converged.tolist()}, "
            f"n_evals={self.n_evals.tolist()}, history={len(self.history)} records)"
        )


# -------------------------------------------------------------------------------------- checks


def check_x0(x0: Tensor) -> None:
    if not isinstance(x0, Tensor):
        raise OptimizeError(f"x0 must be a torch.Tensor [B, ...], got {type(x0).__name__}")
    if x0.dim() < 1 or x0.shape[0] == 0 or x0.numel() == 0:
        raise OptimizeError(f"x0 must be a non-empty batch [B, ...] with B >= 1, got shape {tuple(x0.shape)}")
    if not x0.is_floating_point():
        raise OptimizeError(f"x0 must be a floating-point tensor, got dtype {x0.dtype}")


def check_box(name: str, box: Bounds | None) -> None:
    if box is None:
        return
    ok = isinstance(box, (tuple, list)) and len(box) == 2
    if ok:
        lo, hi = box
        ok = isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and not math.isnan(lo) and lo < hi
    if not ok:
        raise OptimizeError(f"{name} must be a pair (low, high) of numbers with low < high, got {box!r}")


def check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise OptimizeError(f"{name} must be > 0, got {value!r}")


def check_losses(losses: object, *, batch: int) -> None:
    if not isinstance(losses, Tensor) or tuple(losses.shape) != (batch,):
        got = tuple(losses.shape) if isinstance(losses, Tensor) else type(losses).__name__
        raise OptimizeError(
            f"the closure must return one loss per image, a tensor of shape ({batch},), got {got}; "
            "reduce each image's loss over everything but the batch dimension"
        )


# ---------------------------------------------------------------------------------- evaluation


def evaluate(closure: Closure, x_flat: Tensor, shape: torch.Size) -> tuple[Tensor, Tensor]:
    """Per-image losses ``[B]`` and flat gradients ``[B, D]`` at ``x_flat``.

    The gradient of ``sum_b loss_b`` is taken: for independent images its row ``b`` is the
    gradient of ``loss_b`` alone. No host synchronisation happens here.
    """
    x = x_flat.detach().view(shape).requires_grad_(True)
    with torch.enable_grad():
        losses = closure(x)
        check_losses(losses, batch=shape[0])
        if not losses.requires_grad:
            raise OptimizeError(
                "the closure returned losses that do not require grad: compute them from its "
                "argument x with differentiable torch operations (not under torch.no_grad())"
            )
        (grad,) = torch.autograd.grad(losses.sum(), x)
    return losses.detach().to(x_flat.dtype), grad.detach().reshape(x_flat.shape)


def evaluate_no_grad(closure: Closure, x_flat: Tensor, shape: torch.Size) -> Tensor:
    with torch.no_grad():
        losses = closure(x_flat.view(shape))
    check_losses(losses, batch=shape[0])
    return losses.detach().to(x_flat.dtype)


def bdot(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise dot products of ``[B, D]`` tensors -> ``[B]`` (batched products, no temporary product)."""
    return long_bmm(a.unsqueeze(1), b.unsqueeze(2)).view(-1)


def record(history: list[tuple[int, Tensor]], record_every: int, iteration: int, losses: Tensor) -> None:
    if record_every > 0 and iteration % record_every == 0:
        history.append((iteration, losses.detach().clone()))


# ------------------------------------------------------------------------------------- the box


def project(x: Tensor, bounds: Bounds | None) -> Tensor:
    """``x`` clamped to ``[low, high]`` (a new tensor), or ``x`` itself without bounds."""
    return x if bounds is None else x.clamp(bounds[0], bounds[1])


def bound_active(x: Tensor, g: Tensor, bounds: Bounds) -> Tensor:
    """Coordinates held at a bound with the gradient pointing out of the box (the active set of
    Bertsekas 1982, "Projected Newton methods for optimization problems with simple constraints",
    with epsilon 0): ``x_i <= low and g_i > 0`` or ``x_i >= high and g_i < 0``."""
    return ((x <= bounds[0]) & (g > 0)) | ((x >= bounds[1]) & (g < 0))


def projected_gradient_max(x: Tensor, g: Tensor, bounds: Bounds | None) -> Tensor:
    """``max_i |P(x - g) - x|_i`` per image: L-BFGS-B's first-order optimality measure (Byrd, Lu,
    Nocedal & Zhu 1995, sec. 6); equals ``max |g|`` without bounds."""
    if bounds is None:
        return g.abs().amax(dim=1)
    return ((x - g).clamp_(bounds[0], bounds[1]).sub_(x)).abs().amax(dim=1)


# ----------------------------------------------------------------------------------- keep_best


def nan_safe_better(new: Tensor, old: Tensor) -> Tensor:
    """``new < old`` per image, where a NaN never wins and always loses: a finite value beats NaN
    (``x < NaN`` is False in IEEE arithmetic, which would keep a NaN best forever), NaN beats nothing."""
    return (new < old) | (torch.isnan(old) & ~torch.isnan(new))


class BestIterate:
    """Per-image best evaluated iterate (lowest loss, NaN-safe), kept on the device without syncs."""

    def __init__(self, x: Tensor, losses: Tensor) -> None:
        self.x = x.detach().clone()
        self.losses = losses.detach().clone()

    def update(self, x: Tensor, losses: Tensor, mask: Tensor | None = None) -> None:
        better = nan_safe_better(losses, self.losses)
        if mask is not None:
            better &= mask
        torch.where(better, losses, self.losses, out=self.losses)
        torch.where(better.view(-1, *([1] * (x.dim() - 1))), x, self.x, out=self.x)

    def select(self, x: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        """The best iterate where it beats ``(x, losses)`` (a NaN final loss never wins), else ``x``."""
        take = nan_safe_better(self.losses, losses)
        out_x = torch.where(take.view(-1, *([1] * (x.dim() - 1))), self.x, x)
        return out_x, torch.where(take, self.losses, losses)
