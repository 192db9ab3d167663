"""Optimising images in [0, 1] pixel space: box policy, precision, keep-best, the two losses.

Shared by :mod:`nstcore.transfer` (style transfer) and :mod:`nstcore.reconstruct` (content
reconstruction, texture synthesis), so that both store exactly what they say they store.

Box policies (:data:`BOX_POLICIES`):

* ``bounded`` (default): the optimiser keeps every iterate inside ``[0, 1]`` (projected L-BFGS / Adam
  through the optimiser's ``bounds`` keyword; an optimiser without it gets the same box through its
  ``clamp`` projection after each step). The stored image IS the optimised one, its recorded loss is
  its own, and with ``keep_best`` more steps never give a worse stored result (a longer run evaluates a
  superset of the shorter run's iterates).
* ``clip-at-end``: Gatys' code: unconstrained optimisation, the result clipped to ``[0, 1]`` when
  stored. The stored image then differs from the optimum, so both losses are reported.
* ``clamp-each-step``: clamp after every step (the PyTorch NST tutorial), whatever the optimiser.

Precision (:data:`PRECISIONS`): ``float64`` runs network, statistics, losses and optimiser in float64;
a batched run then equals its single-image runs (B=1 vs B=2 identical on CPU). In float32 the same
command twice gives identical bytes on the same machine, but batch size changes the floating-point
reduction order, so images of different batch sizes differ slightly.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from nstcore.backbones import FeatureExtractor
from nstcore.cpu_allocator import keep_freed_memory
from nstcore.errors import NstcoreError
from nstcore.optimize import adam_minimize, lbfgs_minimize

__all__ = [
    "BOX_POLICIES",
    "PRECISIONS",
    "PixelOptError",
    "PixelOptOptions",
    "PixelOptResult",
    "at_precision",
    "check_line_search_and_steps",
    "minimize_pixels",
    "optimizer_accepts_bounds",
]

BOX_POLICIES = ("bounded", "clip-at-end", "clamp-each-step")
PRECISIONS = ("float32", "float64")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}

Objective = Callable[[Tensor], Tensor]


class PixelOptError(NstcoreError):
    """An invalid pixel-optimisation option."""


def optimizer_accepts_bounds(fn: Callable) -> bool:
    """Whether optimiser ``fn`` takes a ``bounds=(low, high)`` keyword (projected, box-constrained)."""
    return "bounds" in inspect.signature(fn).parameters


def at_precision(model: FeatureExtractor, layers: Sequence[str], precision: str) -> FeatureExtractor:
    """``model`` trimmed after ``layers`` in ``precision`` (a float64 copy when the weights are not)."""
    if precision not in PRECISIONS:
        raise PixelOptError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
    trimmed = model.trimmed(layers)
    p = next(trimmed.parameters(), None)
    dtype = _DTYPES[precision]
    if p is None or p.dtype == dtype:
        return trimmed
    return copy.deepcopy(trimmed).to(dtype)


def check_line_search_and_steps(line_search: str | None, optimizer: str, box: str, steps: object, *,
                                prefix: str = "", error: type[NstcoreError] = PixelOptError) -> None:
    """Raise ``error`` unless ``line_search`` is None or ``strong_wolfe`` (then with L-BFGS and ``clip-at-end``)
    and ``steps`` is an int >= 1; ``prefix`` names the owner of the options in the messages."""
    if line_search not in (None, "strong_wolfe"):
        raise error(f"{prefix}line_search must be None or 'strong_wolfe', got {line_search!r}.")
    if line_search is not None and (optimizer != "lbfgs" or box != "clip-at-end"):
        raise error(
            f"{prefix}line_search='strong_wolfe' needs optimizer='lbfgs' and box='clip-at-end' (torch.optim.LBFGS "
            "has no box constraint)."
        )
    if not isinstance(steps, int) or steps < 1:
        raise error(f"{prefix}steps must be an int >= 1, got {steps!r}.")


@dataclass(frozen=True, kw_only=True)
class PixelOptOptions:
    """How to optimise: optimiser, steps, step size, box policy and robustness options.

    ``normalize_loss``: minimise each image's objective divided by its value at ``x0`` (same minimiser;
    L-BFGS's absolute thresholds then do not depend on the activation scale). ``keep_best``: return,
    per image, the evaluated iterate with the lowest finite objective when the last one is worse or not
    finite. ``line_search="strong_wolfe"``: torch.optim.LBFGS one image at a time (``clip-at-end`` only).
    """

    optimizer: str = "lbfgs"
    steps: int = 200
    lr: float = 1.0
    box: str = "bounded"
    keep_best: bool = True
    normalize_loss: bool = False
    line_search: str | None = None
    history_size: int = 100
    tolerance_grad: float = 1e-7
    tolerance_change: float = 1e-9
    record_every: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in ("lbfgs", "adam"):
            raise PixelOptError(f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}.")
        if self.box not in BOX_POLICIES:
            raise PixelOptError(f"box must be one of {BOX_POLICIES}, got {self.box!r}.")
        check_line_search_and_steps(self.line_search, self.optimizer, self.box, self.steps)


@dataclass(repr=False)
class PixelOptResult:
    """``optimized``: the iterate the optimiser ends with (the best one with ``keep_best``);
    ``stored``: the image to store, ``optimized`` clipped to ``[0, 1]`` (the same tensor values unless
    ``box='clip-at-end'``); ``objective_optimized``: the objective at ``optimized`` (unnormalised);
    ``box_method``: ``bounds`` (optimiser's box constraint), ``projection`` (clamp after each step) or
    ``none``; ``history``: ``(step, objective[B])`` every ``record_every`` steps."""

    optimized: Tensor
    stored: Tensor
    objective_optimized: Tensor
    n_iter: Tensor
    box_method: str
    history: list[tuple[int, Tensor]] = field(default_factory=list)


def _box_kwargs(fn: Callable, box: str) -> tuple[dict, str]:
    if box == "clip-at-end":
        return {}, "none"
    if box == "bounded" and optimizer_accepts_bounds(fn):
        return {"bounds": (0.0, 1.0)}, "bounds"
    return {"clamp": (0.0, 1.0)}, "projection"


def _torch_lbfgs_per_image(objective_of: Callable[[int], Objective], x0: Tensor, scale: Tensor,
                           options: PixelOptOptions, track: Callable) -> tuple[Tensor, Tensor]:
    """L-BFGS with torch's strong-Wolfe line search, one image at a time."""
    out, n_iter = [], []
    for b in range(x0.shape[0]):
        single = objective_of(b)
        x = x0[b : b + 1].detach().clone().requires_grad_(True)
        opt = torch.optim.LBFGS(
            [x], lr=options.lr, max_iter=options.steps, history_size=options.history_size,
            tolerance_grad=options.tolerance_grad, tolerance_change=options.tolerance_change,
            line_search_fn="strong_wolfe",
        )

        def closure() -> Tensor:
            opt.zero_grad(set_to_none=True)
            loss = single(x) * scale[b]
            track(x.detach(), loss.detach(), b)
            loss.sum().backward()
            return loss.sum()

        opt.step(closure)
        out.append(x.detach())
        n_iter.append(int(opt.state[x].get("n_iter", 0)))
    return torch.cat(out), torch.tensor(n_iter, dtype=torch.long, device=x0.device)


def minimize_pixels(
    objective: Objective,
    x0: Tensor,
    *,
    options: PixelOptOptions,
    callback: Callable[[int, Tensor], None] | None = None,
    objective_of: Callable[[int], Objective] | None = None,
) -> PixelOptResult:
    """Minimise ``objective`` (images ``[B, 3, H, W]`` -> per-image losses ``[B]``) from ``x0``.

    ``callback(step, x)`` after every optimiser step; ``objective_of(b)``: the objective of image ``b``
    alone (needed by ``line_search='strong_wolfe'``). See the module docstring for the box policies.
    """
    if x0.device.type == "cpu":
        keep_freed_memory()  # no page faults on every step's large activations (see nstcore.cpu_allocator)
    if options.box != "clip-at-end":
        x0 = x0.clamp(0.0, 1.0)
    scale = torch.ones(x0.shape[0], dtype=x0.dtype, device=x0.device)
    if options.normalize_loss:
        with torch.no_grad():
            initial = objective(x0).to(x0.dtype)
        scale = torch.where(initial > 0, 1.0 / initial, scale)

    best_x = x0.detach().clone()
    best_loss = torch.full((x0.shape[0],), math.inf, dtype=x0.dtype, device=x0.device)

    def track(x: Tensor, losses: Tensor, index: int | None = None) -> None:
        nonlocal best_x, best_loss
        losses = losses.detach().to(best_loss.dtype)
        if index is None:
            better = losses < best_loss  # False for NaN: a NaN iterate is never the best
            best_loss = torch.where(better, losses, best_loss)
            best_x = torch.where(better.view(-1, 1, 1, 1), x.detach(), best_x)
        elif bool(losses.reshape(()) < best_loss[index]):
            best_loss[index] = losses.reshape(())
            best_x[index] = x.detach()[0]

    def closure(x: Tensor) -> Tensor:
        losses = objective(x) * scale
        track(x, losses)
        return losses

    history: list[tuple[int, Tensor]] = []
    if options.line_search == "strong_wolfe":
        if objective_of is None:
            raise PixelOptError("line_search='strong_wolfe' needs objective_of (the per-image objective).")
        x, n_iter = _torch_lbfgs_per_image(objective_of, x0, scale, options, track)
        box_method = "none"
    elif options.optimizer == "adam":
        kwargs, box_method = _box_kwargs(adam_minimize, options.box)
        result = adam_minimize(closure, x0, steps=options.steps, lr=options.lr, callback=callback,
                               record_every=options.record_every, **kwargs)
        x, n_iter, history = result.x, result.n_iter, result.history
    else:
        kwargs, box_method = _box_kwargs(lbfgs_minimize, options.box)
        result = lbfgs_minimize(
            closure, x0, max_iter=options.steps, history_size=options.history_size, lr=options.lr,
            tolerance_grad=options.tolerance_grad, tolerance_change=options.tolerance_change,
            callback=callback, record_every=options.record_every, **kwargs,
        )
        x, n_iter, history = result.x, result.n_iter, result.history
    history = [(step, (losses.to(scale.dtype) / scale).detach()) for step, losses in history]
    with torch.no_grad():
        last = objective(x).to(best_loss.dtype) * scale
    if options.keep_best:
        use_best = torch.isfinite(best_loss) & ((best_loss < last) | ~torch.isfinite(last))
        x = torch.where(use_best.view(-1, 1, 1, 1), best_x, x)
        last = torch.where(use_best, best_loss, last)
    x = x.detach()
    stored = x.clamp(0.0, 1.0)
    return PixelOptResult(optimized=x, stored=stored, objective_optimized=last / scale, n_iter=n_iter,
                          box_method=box_method, history=history)
