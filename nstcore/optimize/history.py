"""Per-image L-BFGS history in compact form, for a whole batch at once, without copies or syncs.

The direction ``-H g`` of L-BFGS (Nocedal & Wright 2006, Algorithm 7.4, the two-loop recursion)
equals the compact representation of Byrd, Nocedal & Schnabel (1994), "Representations of
quasi-Newton matrices and their use in limited memory methods", Theorem 2.2, with ``H0 = gamma I``:

    H g = gamma g + S a - gamma Y w,   w = R^-1 S^T g,   a = R^-T ((D + gamma Y^T Y) w - gamma Y^T g)

with ``S, Y`` the stored pairs (oldest to newest), ``R`` the upper triangle of ``S^T Y`` and ``D``
its diagonal. This form needs only two passes over the history per iteration, each one batched
matrix product over all B images and all pairs (``[S Y]^T [g y s]`` and ``[S Y] c``), instead of
the 4 m dependent dot products / axpys of the two-loop recursion; the m x m algebra is negligible.

Storage: one preallocated buffer ``[B, m + 1, 2, D]`` (slot ``k`` holds ``s_k`` and ``y_k``
interleaved, so the first ``n`` slots are one contiguous ``[B, 2n, D]`` block; slot ``m`` is a
scratch slot that receives the writes of images that do not store a pair this iteration, so a write
is one ``index_copy_`` with no branch), a per-slot timestamp that orders the pairs per image, and
the small matrices ``S^T Y`` and ``Y^T Y`` updated from the same product. The history may be kept
in a lower precision (``history_dtype``, e.g. ``torch.bfloat16``) with float32 coefficients.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nstcore.long_bmm import long_bmm

__all__ = ["CompactHistory", "CURVATURE_EPS"]

#: curvature threshold of torch.optim.LBFGS: a (s, y) pair enters the history only if y.s exceeds it
CURVATURE_EPS = 1e-10


class CompactHistory:
    """The (s, y) pairs of B images (``m`` per image) and the matrices of the compact form."""

    def __init__(
        self, batch: int, dim: int, mem: int, *, dtype: torch.dtype, device: torch.device,
        history_dtype: torch.dtype | None = None,
    ) -> None:
        self.batch, self.dim, self.mem = batch, dim, mem
        self.dtype = dtype
        self.hdtype = history_dtype or dtype
        self.pairs = torch.zeros(batch, mem + 1, 2, dim, dtype=self.hdtype, device=device)
        self.flat_rows = self.pairs.view(batch * (mem + 1) * 2, dim)
        self.stamp = torch.full((batch, mem), -1, dtype=torch.long, device=device)  # -1: empty slot
        self.sy = torch.zeros(batch, mem, mem, dtype=dtype, device=device)  # s_i . y_j
        self.yy = torch.zeros(batch, mem, mem, dtype=dtype, device=device)  # y_i . y_j
        self.head = torch.zeros(batch, dtype=torch.long, device=device)  # next slot per image
        self.gamma = torch.ones(batch, dtype=dtype, device=device)  # H0 = gamma I (N&W eq. 7.20)
        self.work = torch.zeros(batch, 3, dim, dtype=dtype, device=device)  # rows: g, y, s
        self.rows = torch.arange(batch, device=device)
        self.used = 0  # slots that may hold a pair (host-side upper bound, no sync)
        self._u = torch.zeros(batch, mem, dtype=dtype, device=device)
        self._v = torch.zeros(batch, mem, dtype=dtype, device=device)
        self._lowp = self.hdtype != dtype
        self._work_h = torch.zeros(batch, 3, dim, dtype=self.hdtype, device=device) if self._lowp else self.work

    @staticmethod
    def nbytes(batch: int, dim: int, mem: int, *, dtype: torch.dtype, history_dtype: torch.dtype | None = None) -> int:
        """Bytes held by a history of ``mem`` pairs (buffers of this class)."""
        item = torch.empty((), dtype=dtype).element_size()
        hitem = torch.empty((), dtype=history_dtype or dtype).element_size()
        extra = 3 * batch * dim * hitem if (history_dtype or dtype) != dtype else 0
        return 2 * (mem + 1) * batch * dim * hitem + 3 * batch * dim * item + extra + 2 * batch * mem * mem * item

    # ------------------------------------------------------------------------------ products

    def _dots(self, n: int) -> Tensor:
        """``[B, 2n, 3]``: rows ``s_0, y_0, s_1, y_1, ...`` of the first ``n`` slots dotted with the
        work rows ``g, y, s``; accumulated in the working dtype."""
        block = self.pairs[:, :n].reshape(self.batch, 2 * n, self.dim)  # a view: slots are contiguous
        if not self._lowp:
            return long_bmm(block, self.work.transpose(1, 2))
        self._work_h.copy_(self.work)
        return long_bmm(block, self._work_h.transpose(1, 2), out_dtype=self.dtype)

    def _combine(self, coef: Tensor, n: int, out: Tensor) -> Tensor:
        """``out = sum_k coef[:, k] * row_k`` over the ``2n`` rows of the first ``n`` slots."""
        block = self.pairs[:, :n].reshape(self.batch, 2 * n, self.dim)
        if not self._lowp:
            torch.bmm(coef.unsqueeze(1), block, out=out.unsqueeze(1))
        else:
            out.copy_(long_bmm(coef.unsqueeze(1).to(self.hdtype), block, out_dtype=self.dtype).squeeze(1))
        return out

    # ------------------------------------------------------------------------------ update

    def update_and_direction(
        self, g: Tensor, y: Tensor, s: Tensor, *, active: Tensor, iteration: int, out: Tensor
    ) -> Tensor:
        """Store ``(s, y)`` for the active images that meet the curvature test ``y.s > 1e-10`` and
        write ``-H g`` (``g`` may be a masked gradient) into ``out`` ``[B, D]``."""
        work = self.work
        work[:, 0].copy_(g)
        work[:, 1].copy_(y)
        work[:, 2].copy_(s)
        small = long_bmm(work[:, 1:], work[:, 1:].transpose(1, 2))  # [[yy, ys], [sy, ss]]
        ys, yy = small[:, 0, 1], small[:, 0, 0]
        add = active & (ys > CURVATURE_EPS)

        # write the pair: slot head for adding images, the scratch slot for the others
        slot = torch.where(add, self.head, torch.full_like(self.head, self.mem))
        base = (self.rows * (self.mem + 1) + slot) * 2
        self.flat_rows.index_copy_(0, base, work[:, 2].to(self.hdtype))
        self.flat_rows.index_copy_(0, base + 1, work[:, 1].to(self.hdtype))
        self.used = min(self.used + 1, self.mem)
        n = self.used

        dots = self._dots(n)  # one pass over the history
        s_dot, y_dot = dots[:, 0::2], dots[:, 1::2]  # [B, n, 3]
        self._u[:, :n] = s_dot[:, :, 0]
        self._v[:, :n] = y_dot[:, :, 0]

        # small matrices: row/column `slot` of S^T Y and Y^T Y for the adding images
        onehot = torch.zeros(self.batch, self.mem, dtype=torch.bool, device=g.device)
        onehot[:, :n] = (torch.arange(n, device=g.device) == self.head.unsqueeze(1)) & add.unsqueeze(1)
        row = torch.zeros(self.batch, self.mem, dtype=self.dtype, device=g.device)
        col = torch.zeros_like(row)
        yrow = torch.zeros_like(row)
        row[:, :n] = y_dot[:, :, 2]  # s_new . y_l
        col[:, :n] = s_dot[:, :, 1]  # s_l . y_new
        yrow[:, :n] = y_dot[:, :, 1]  # y_l . y_new
        rk, ck = onehot.unsqueeze(2), onehot.unsqueeze(1)
        torch.where(rk, row.unsqueeze(1), self.sy, out=self.sy)
        torch.where(ck, col.unsqueeze(2), self.sy, out=self.sy)
        torch.where(rk, yrow.unsqueeze(1), self.yy, out=self.yy)
        torch.where(ck, yrow.unsqueeze(2), self.yy, out=self.yy)
        self.stamp[:, :n] = torch.where(onehot[:, :n], iteration, self.stamp[:, :n])
        self.head = torch.where(add, (self.head + 1) % self.mem, self.head)
        torch.where(add, ys / yy, self.gamma, out=self.gamma)
        return self._direction(g, n, out)

    def _direction(self, g: Tensor, n: int, out: Tensor) -> Tensor:
        """``out = -H g`` from the compact form (see the module docstring)."""
        stamp = self.stamp[:, :n]
        valid = stamp >= 0
        order = torch.argsort(torch.where(valid, stamp, torch.iinfo(torch.long).max), dim=1, stable=True)
        vo = torch.gather(valid, 1, order).to(self.dtype)  # [B, n] valid, oldest first
        idx_r, idx_c = order.unsqueeze(2).expand(-1, n, n), order.unsqueeze(1).expand(-1, n, n)
        sy = torch.gather(torch.gather(self.sy[:, :n, :n], 1, idx_r), 2, idx_c)
        yy = torch.gather(torch.gather(self.yy[:, :n, :n], 1, idx_r), 2, idx_c)
        mask2 = vo.unsqueeze(2) * vo.unsqueeze(1)
        eye = torch.eye(n, dtype=self.dtype, device=g.device)
        r = torch.triu(sy) * mask2 + eye * (1.0 - vo).unsqueeze(1)  # identity rows for empty slots
        diag = torch.diagonal(sy, dim1=1, dim2=2) * vo
        yy = yy * mask2
        u = torch.gather(self._u[:, :n], 1, order) * vo
        v = torch.gather(self._v[:, :n], 1, order) * vo
        gamma = self.gamma.unsqueeze(1)
        w = torch.linalg.solve_triangular(r, u.unsqueeze(2), upper=True).squeeze(2)
        rhs = diag * w + gamma * torch.bmm(yy, w.unsqueeze(2)).squeeze(2) - gamma * v
        a = torch.linalg.solve_triangular(r.transpose(1, 2), rhs.unsqueeze(2), upper=False).squeeze(2)
        # d = -gamma g - S a + gamma Y w ; coefficients back in slot order, interleaved (s, y)
        coef = torch.empty(self.batch, n, 2, dtype=self.dtype, device=g.device)
        coef[:, :, 0].scatter_(1, order, -a * vo)
        coef[:, :, 1].scatter_(1, order, gamma * w * vo)
        self._combine(coef.view(self.batch, 2 * n), n, out)
        out.addcmul_(g, self.gamma.unsqueeze(1), value=-1.0)
        return out

