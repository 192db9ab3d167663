"""A test-only operation (imported by path, ``ops_for_tests:StallOp``) whose units stall on demand: the
first attempt at an item listed in ``stall`` blocks forever (until the watchdog replaces its actor),
unless a file ``<marker_dir>/<item>.allow`` exists; every attempt leaves ``<item>.attempt-<n>``; each item
takes ``delay_s`` (the call-part tests: units of milliseconds)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from benchmarks.header_op import PathItemsOp


@dataclass(frozen=True)
class StallConfig:
    items: tuple[str, ...]
    marker_dir: str
    stall: tuple[str, ...] = ()
    stall_every_attempt: bool = False
    unit_size: int = 1
    batch_size: int = 1
    delay_s: float = 0.0


class StallOp(PathItemsOp):
    name: ClassVar[str] = "stall-test"
    config_type: ClassVar[type] = StallConfig
    salt: ClassVar[str] = "stall"

    def items(self, config: StallConfig) -> list[dict]:
        return [{"path": i} for i in config.items]

    def load(self, item: dict) -> Any:
        return item["path"]

    def compute(self, batch: list[tuple[dict, Any]]) -> dict[str, list[dict]]:
        rows = []
        for _, name in batch:
            marker = Path(self.config.marker_dir)
            n = len(list(marker.glob(f"{name}.attempt-*")))
            (marker / f"{name}.attempt-{n + 1}").touch()
            allowed = (marker / f"{name}.allow").exists()
            if name in self.config.stall and not allowed and (n == 0 or self.config.stall_every_attempt):
                time.sleep(3600)
            time.sleep(self.config.delay_s)
            rows.append({"source": "texprobe", "observer": "stall-test", "observer_kind": "model", "image": name,
                         "conflict": False, "dataset": "stall-test"})
        return {"trials": rows}
