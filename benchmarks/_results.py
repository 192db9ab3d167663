"""The results files of the CPU benchmarks: the machine they ran on, and how they are written.

Only the standard library and torch, like the benchmarks that use it.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch


def machine(*, processor: bool = False) -> str:
    """``<arch> [<processor>] <N> threads, python <version>, torch <version>``; ``processor`` adds
    ``platform.processor()`` (empty where the platform does not say)."""
    cpu = f" {platform.processor() or ''}" if processor else ""
    return (f"{platform.machine()}{cpu} {torch.get_num_threads()} threads, python {platform.python_version()}, "
            f"torch {torch.__version__}")


def write_results(out: Path, result: dict[str, Any]) -> None:
    """Write ``result`` as indented JSON to ``out`` (creating its folder) and say so."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
