"""Operation.run_unit without Ray: per-item error isolation, batch-failure isolation, and decoding that
runs ahead of (overlaps) the forward passes."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from pipelines.ops.base import Operation, WorkUnit, batched, batched_by_shape


@dataclass(frozen=True)
class Cfg:
    batch_size: int = 2


class Probe(Operation):
    name: ClassVar[str] = "probe-test"
    tables: ClassVar[tuple[str, ...]] = ("trials",)

    def __init__(self, *, bad_load=(), bad_compute=(), gate: threading.Event | None = None) -> None:
        super().__init__()
        self.config = Cfg()
        self.bad_load, self.bad_compute, self.gate = set(bad_load), set(bad_compute), gate
        self.calls: list[list[str]] = []

    def load(self, item: dict) -> Any:
        if item["path"] == "last" and self.gate is not None:
            if not self.gate.wait(timeout=20):  # set by the FIRST batch's compute: decoding ran ahead
                raise TimeoutError("the first batch was not computed while later inputs were still loading")
        if item["path"] in self.bad_load:
            raise MemoryError(f"cannot decode {item['path']}")
        return item["path"]

    def compute(self, batch: list[tuple[dict, Any]]) -> dict[str, list[dict]]:
        names = [v for _, v in batch]
        self.calls.append(names)
        if self.gate is not None:
            self.gate.set()
        if self.bad_compute & set(names):
            raise RuntimeError("conv on a 1x1 input")
        return {"trials": [{"image": n} for n in names]}


def unit(*names: str) -> WorkUnit:
    return WorkUnit(unit_id="unit-x", items=tuple({"path": n} for n in names))


def test_one_bad_input_costs_one_row_and_the_rest_of_its_batch_lands():
    op = Probe(bad_load={"b"}, bad_compute={"d"})
    out = op.run_unit(unit("a", "b", "c", "d", "e"))
    assert sorted(r["image"] for r in out.tables["trials"]) == ["a", "c", "e"]
    assert sorted((e["input"], e["stage"], e["error_type"]) for e in out.errors) == [
        ("b", "load", "MemoryError"), ("d", "compute", "RuntimeError")]
    assert out.n_ok == 3


def test_decoding_runs_ahead_of_the_forward_passes():
    """The last input's load blocks until the first batch has been computed: only a prefetching run
    (decode in threads while the network works) completes without an errors row."""
    op = Probe(gate=threading.Event())
    out = op.run_unit(unit("a", "b", "c", "d", "last"))
    assert out.errors == [] and op.calls[0] == ["a", "b"]
    inline = Probe(gate=threading.Event())
    inline.load_threads = 0
    inline.gate.set()  # inline decoding cannot overlap: it would deadlock on the gate
    assert inline.run_unit(unit("a", "last")).n_ok == 2


def test_lazy_batching_yields_full_batches_first_and_never_mixes_shapes():
    items = [({"i": i}, shape) for i, shape in enumerate([(2, 2), (3, 3), (2, 2), (2, 2), (3, 3)])]
    batches = list(batched_by_shape(iter(items), 2, lambda s: s))
    assert [[e[0]["i"] for e in b] for b in batches] == [[0, 2], [1, 4], [3]]
    assert list(batched(iter(range(5)), 2)) == [[0, 1], [2, 3], [4]]


def test_grams_table_is_written_under_the_run_it_belongs_to(tmp_path):
    """The column-wise grams table leaves run_id to the store (a None run_id column was refused by it)."""
    import numpy as np

    from pipelines.ops.grams import _grams_table
    from pipelines.store import Store

    rows = [{"image_id": f"id{i}", "backbone": "vgg19", "layer": "conv1_1", "channels": 2,
             "gram": np.arange(3, dtype=np.float32) + i} for i in range(2)]
    store = Store(str(tmp_path))
    store.write_table("grams", "20260101T000000Z-abcdef", _grams_table(rows), part="unit-1")
    back = store.read_table("grams").to_pylist()
    assert [r["run_id"] for r in back] == ["20260101T000000Z-abcdef"] * 2
    assert [list(r["gram"]) for r in back] == [[0, 1, 2], [1, 2, 3]]


def test_gpu_actors_decode_with_every_cpu_they_were_given():
    """On a GPU actor the CPUs only decode (the network runs on the device): --cpus-per-actor 12 means 12
    decoding threads there; CPU actors keep the operation's default (their CPUs run the network), and an
    operation that decodes nothing stays inline."""
    from pipelines.actor import decode_threads

    assert decode_threads(4, device="cuda", cpus=12) == 12
    assert decode_threads(4, device="cuda:1", cpus=2) == 4
    assert decode_threads(4, device="cpu", cpus=12) == 4
    assert decode_threads(0, device="cuda", cpus=12) == 0
    assert decode_threads(4, device="cuda", cpus=None) == 4
