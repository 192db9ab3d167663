"""The CPU allocator setting behind batched style transfer on CPU (nstcore.cpu_allocator, issue 12).

glibc unmaps freed blocks above its mmap threshold, so re-allocating one page-faults every page
again; that made B = 4 style transfer at 256 px slower per image than B = 1. Counted, not timed:
minor page faults (``getrusage``) of touching a 64 MiB tensor a second time, in a fresh interpreter
(the setting is process-wide). A control run without the setting shows the faults are there to
count on this machine; where they are not (not glibc), the test skips.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = (64 << 20) // 4096

PROBE = """
import json, resource, torch
from nstcore.pixelopt import PixelOptOptions, minimize_pixels
if {optimise}:
    minimize_pixels(lambda x: (x ** 2).flatten(1).sum(1), torch.rand(1, 3, 8, 8),
                    options=PixelOptOptions(steps=2))
def faults_of_a_fresh_64mib_tensor():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.ones(16 << 20)  # 64 MiB of float32, every page written
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    del t
    return after - before
faults_of_a_fresh_64mib_tensor()
print(json.dumps([faults_of_a_fresh_64mib_tensor() for _ in range(3)]))
"""


def _second_allocation_faults(*, optimise: bool, env: dict[str, str] | None = None) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(optimise=optimise)], cwd=REPO, capture_output=True, text=True,
        timeout=120, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return min(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def control_faults() -> int:
    faults = _second_allocation_faults(optimise=False)
    if faults < PAGES // 2:
        pytest.skip(f"this C library reuses large freed blocks by itself ({faults} faults for {PAGES} pages)")
    return faults


def test_cpu_pixel_optimisation_keeps_large_freed_blocks(control_faults: int) -> None:
    faults = _second_allocation_faults(optimise=True)
    assert faults < PAGES // 20, (
        f"re-allocating 64 MiB after minimize_pixels on CPU page-faulted {faults} times "
        f"(control without it: {control_faults}; {PAGES} pages)"
    )


def test_the_setting_can_be_switched_off(control_faults: int) -> None:
    faults = _second_allocation_faults(optimise=True, env={"TEXPROBE_KEEP_FREED_MEMORY": "0"})
    assert faults >= PAGES // 2, f"TEXPROBE_KEEP_FREED_MEMORY=0 still kept freed blocks ({faults} faults)"
