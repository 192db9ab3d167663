"""Keep large freed CPU blocks in the process instead of handing them back to the OS (glibc malloc).

Why: glibc's ``malloc`` serves a block above its mmap threshold (adjusted at run time, at most 32 MiB
on 64-bit) with a fresh ``mmap`` and unmaps it on ``free``. A VGG-19 style-transfer step on CPU
allocates activations above that size once the batch grows (conv1 at 256 px: 17 MB per image, 67 MB
at B = 4), so every L-BFGS step page-faults and zeroes them again. Measured on the 2-core CI machine,
one forward/backward of the Gatys objective at 256 px: about 400,000 minor page faults (1.6 GB) per
evaluation at B = 4 against 0 at B = 1, and B = 4 ran 0.85x per image of B = 1; with the blocks kept,
0 faults and B = 4 on par with B = 1 (BENCHMARKS.md, "Batching on CPU").

PyTorch's CPU performance guide recommends swapping in jemalloc or tcmalloc for the same reason; those
must be preloaded (``LD_PRELOAD``) before Python starts, which a library cannot do, so texprobe sets
glibc's own knobs with ``mallopt(3)`` instead: ``M_MMAP_THRESHOLD`` (blocks up to it come from the heap
and are reused) and ``M_TRIM_THRESHOLD`` (the heap top is not returned while under it). The cost: the
process keeps its peak heap (RSS does not shrink after a large batch), which is what a worker that runs
one transfer after another wants. Elsewhere than glibc (macOS, musl) nothing is changed.

Set ``TEXPROBE_KEEP_FREED_MEMORY=0`` to leave the allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["ENV_VAR", "keep_freed_memory"]

ENV_VAR = "TEXPROBE_KEEP_FREED_MEMORY"

_M_TRIM_THRESHOLD = -1  # <malloc.h>
_M_MMAP_THRESHOLD = -3
#: blocks up to this size are served from (and returned to) the heap; glibc before 2.35 refuses values
#: above 32 MiB, then the largest it accepts is used
_THRESHOLDS = (1 << 30, 32 << 20)

_state: bool | None = None


def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks up to 1 GiB for reuse (idempotent, process-wide).

    Returns whether the setting is in force: False where the C library is not glibc, where
    ``mallopt`` refuses every threshold, or where :data:`ENV_VAR` is ``0``.
    """
    global _state
    if _state is not None:
        return _state
    _state = False
    if os.environ.get(ENV_VAR, "1").strip() == "0":
        return _state
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return _state
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    for threshold in _THRESHOLDS:
        if mallopt(_M_MMAP_THRESHOLD, threshold) == 1:
            mallopt(_M_TRIM_THRESHOLD, 2 * threshold)
            _state = True
            break
    return _state
