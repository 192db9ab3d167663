"""The float64 L-BFGS reference of the nstcore.optimize tests: torch.optim.LBFGS itself, one ``step()``
call, recording every point its closure evaluates (independent of the code under test)."""

from __future__ import annotations

import torch
from torch import Tensor


def torch_lbfgs(loss_fn, x0: Tensor, **kw) -> tuple[Tensor, list[Tensor], dict]:
    """Reference: torch.optim.LBFGS(**kw), one step() call; returns final x, evaluated points, state."""
    p = x0.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([p], **kw)
    points: list[Tensor] = []

    def closure() -> Tensor:
        opt.zero_grad()
        points.append(p.detach().clone())
        loss = loss_fn(p)
        loss.backward()
        return loss

    opt.step(closure)
    return p.detach(), points, opt.state[p]
