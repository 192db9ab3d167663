"""The one generic unit actor: holds one operation (model loaded once), runs units, writes their parts.

Per unit it calls :meth:`Operation.run_unit` (every failing item costs one ``errors`` row) and writes
one part per table, named after the unit, atomically (the store writes a temporary name and renames
it); a call of several units (:mod:`pipelines.call_plan`) writes one part per table for all of them,
named after the call, its footer listing the units. Order matters: ``errors`` first (replacing rows of
an earlier failed attempt), the operation's done-table LAST, so a unit counts as done only when all its
parts are there.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from pipelines.ops.base import WorkUnit


class UnitActor:
    """Created by the runner as a Ray actor (``ray.remote(UnitActor)``); plain class for tests."""

    def __init__(self, *, op_name: str, config: Any, store_root: str, run_id: str, device: str = "cpu",
                 threads: int | None = None) -> None:
        from pipelines.ops import get_operation
        from pipelines.store import Store

        started = time.perf_counter()
        op_cls = get_operation(op_name)
        if threads and op_cls.needs_torch:  # an operation without a network does not pay torch's import (~1 s)
            import torch

            torch.set_num_threads(max(1, int(threads)))
        self.device = device
        self.store = Store(store_root)
        self.run_id = run_id
        self.op = op_cls()
        self.op.load_threads = decode_threads(self.op.load_threads, device=device, cpus=threads)
        self.config = config
        self.op.setup(config, device)
        self.op.bind(store=self.store, run_id=run_id)
        self.tables = self.op.output_tables(config)
        self.setup_seconds = time.perf_counter() - started

    def ready(self) -> dict:
        """Where this actor runs and on what device (the manifest's ``actors`` entries)."""
        import sys

        torch = sys.modules.get("torch")  # imported by the operation if it uses a network

        try:
            import ray

            ctx = ray.get_runtime_context()
            node_id, gpu_ids, node_ip = ctx.get_node_id(), [str(g) for g in ray.get_gpu_ids()], ray.util.get_node_ip_address()
        except Exception:  # noqa: BLE001 - outside Ray (tests)
            node_id, gpu_ids, node_ip = None, [], None
        cuda = torch is not None and self.device.startswith("cuda") and torch.cuda.is_available()
        return {
            "pid": os.getpid(), "node_id": node_id, "node_ip": node_ip, "hostname": socket.gethostname(),
            "device": self.device, "device_name": torch.cuda.get_device_name(0) if cuda else "cpu",
            "gpu_ids": gpu_ids, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "torch_threads": torch.get_num_threads() if torch is not None else None,
            "decode_threads": self.op.load_threads,
            "setup_seconds": round(self.setup_seconds, 3),
        }

    def process(self, unit: WorkUnit, *, first_attempt: bool = False) -> dict:
        """Run one unit and write its parts, durably; returns counts and timing (the driver's progress).

        An empty ``errors`` part is written only when it may replace the rows of an earlier attempt: never
        on the ``first_attempt`` of a unit in a new run (half the files, half the writes of a clean run)."""
        return self._process([unit], part=unit.unit_id, first_attempt=first_attempt, synced=None)[0]

    def process_many(self, units: list[WorkUnit], *, first_attempts: list[bool], part: str | None = None) -> list[dict]:
        """:meth:`process` for the units of one call. One unit: its own parts (a failure as a whole returns
        ``{"unit_id", "error"}``). Several: ONE part per table named ``part``, written only once every unit
        has run (a unit failing as a whole fails the call, which is retried whole under the same name).
        The folders written are synced once, at the end, before any unit is reported done."""
        pending: set[str] = set()
        try:
            results = self._process(units, part=part or units[0].unit_id, first_attempt=all(first_attempts),
                                    synced=pending)
        except Exception as exc:  # noqa: BLE001 - a lone unit's failure is that unit's; a call's fails the call
            if len(units) > 1:
                raise
            text = str(exc).strip().splitlines()
            results = [{"unit_id": units[0].unit_id, "error": f"{type(exc).__name__}: {text[0] if text else ''}"[:500]}]
        self.store.sync_folders(pending)
        return results

    def _process(self, units: list[WorkUnit], *, part: str, first_attempt: bool, synced: set[str] | None) -> list[dict]:
        """Run ``units``, then write their rows as one part per table named ``part`` (a call part's footer
        lists its units). Every part but the done-table's is synced at once (the order of the module doc
        holds across a power loss); the done-table part's folder is added to ``synced`` when the caller
        syncs it before reporting the units done (a lost rename there only means they run again on
        resume), else synced at once too."""
        started = time.perf_counter()
        ids = [u.unit_id for u in units]
        members = ids if len(units) > 1 else None
        rows: dict[str, list[dict]] = {table: [] for table in self.tables}
        errors: list[dict] = []
        summaries = []
        for unit in units:
            t0 = time.perf_counter()
            out = self.op.run_unit(unit)
            for row in out.errors:
                row["unit_id"] = unit.unit_id
            errors += out.errors
            counts = {}
            for table in self.tables:
                data = out.tables.get(table, [])
                for row in data:
                    row["unit_id"] = unit.unit_id
                rows[table] += data
                counts[table] = len(data)
            summaries.append({"unit_id": unit.unit_id, "n_items": unit.size, "n_ok": out.n_ok,
                              "n_errors": len(out.errors), "rows": counts, "compute_seconds": time.perf_counter() - t0,
                              "part": part, "pid": os.getpid()})
        if errors or not first_attempt:
            self.store.write_table("errors", self.run_id, errors, part=part, units=members)
        for table in self.tables:  # the done-table is the last one
            last = table == self.tables[-1]
            self.store.write_table(table, self.run_id, self.op.to_table(table, rows[table]), part=part,
                                   defer_sync=synced if last else None, units=members)
        share = (time.perf_counter() - started) / len(units)
        return [{**summary, "seconds": share} for summary in summaries]


def decode_threads(default: int, *, device: str, cpus: int | None) -> int:
    """Threads decoding a unit's inputs: the operation's ``default``, or on a GPU actor every CPU it was
    given, when more (its CPUs have nothing else to do there: the network runs on the device; so
    ``--cpus-per-actor`` buys decoding on GPU nodes). An operation that decodes nothing (0) stays at 0."""
    if default <= 0 or not device.startswith("cuda") or not cpus:
        return default
    return max(default, int(cpus))
