"""The Operation protocol every probe implements once, work units, and per-item error isolation.

An operation (``pipelines/ops/<name>.py``) is

* a frozen config dataclass: the run manifest's ``config`` and the actor's arguments at once;
* ``validate(config)``: driver-side checks (weights present and loadable, layers known) that run
  before Ray starts, so a bad option is a one-line error, not a failed actor;
* ``plan(config) -> [WorkUnit]``: deterministic units of JSON-able items (the manifest stores them, so
  ``--resume`` completes exactly the planned set);
* ``setup(config, device)`` in the actor, then per unit :meth:`Operation.run_unit`, which calls the
  operation's ``load(item)`` per item and ``compute(batch) -> {table: rows}`` per batch. Every exception
  of one item becomes one ``errors`` row naming that item; when a batch fails, its items are retried
  one by one so that only the culprit is lost;
* optional ``finish(store, run_id, config) -> dict`` after all units (inside the Ray session).

A unit id hashes the operation's config and its items' keys, so a retried or resumed unit writes the
same part names and replaces its own output instead of adding a duplicate.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Iterator, Sequence


def safe_text(value: Any) -> str:
    """``value`` as printable UTF-8 text: undecodable file-name bytes become ``\\xNN`` escapes."""
    text = os.fsdecode(value) if isinstance(value, (bytes, os.PathLike)) else str(value)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def config_hash(config: Any) -> str:
    """Stable short hash of a config dataclass or a JSON-able dict."""
    data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    blob = json.dumps(data, sort_keys=True, default=str).encode("utf-8", "surrogateescape")
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class WorkUnit:
    """A deterministic batch of JSON-able items for one actor call."""

    unit_id: str
    items: tuple[dict, ...]

    @property
    def size(self) -> int:
        return len(self.items)

    def to_json(self) -> dict:
        return {"unit_id": self.unit_id, "items": list(self.items)}

    @classmethod
    def from_json(cls, data: dict) -> "WorkUnit":
        return cls(unit_id=data["unit_id"], items=tuple(data["items"]))


def make_units(items: Iterable[dict], *, unit_size: int, key: Callable[[dict], str], salt: str) -> Iterator[WorkUnit]:
    """Split ``items`` (in a deterministic order) into units of ``unit_size``, lazily (a generator of items
    is consumed one unit at a time); the unit id hashes ``salt`` and the item keys (file names may hold
    any bytes: encoded with surrogateescape). A unit size below 1 is refused at the call."""
    if unit_size < 1:
        from pipelines.errors import OptionError

        raise OptionError(f"unit size must be >= 1, got {unit_size}")
    return _units(items, unit_size, key, salt)


def _units(items: Iterable[dict], unit_size: int, key: Callable[[dict], str], salt: str) -> Iterator[WorkUnit]:
    for chunk in batched(items, unit_size):
        blob = "\0".join([salt, *map(key, chunk)]).encode("utf-8", "surrogateescape")
        yield WorkUnit(unit_id=f"unit-{hashlib.sha256(blob).hexdigest()[:16]}", items=tuple(chunk))


def error_row(*, unit_id: str, input: str, stage: str, exc: BaseException) -> dict:
    """One ``errors`` row: what failed (input), where (stage), why (type and message)."""
    return {
        "unit_id": unit_id,
        "input": safe_text(input),
        "stage": stage,
        "error_type": type(exc).__name__,
        "message": safe_text(str(exc) or repr(exc)),
        "created_at": _dt.datetime.now(_dt.timezone.utc),
    }


class ItemInputError(Exception):
    """Raised by an operation's ``load`` to say which of an item's files failed (``cause`` is why)."""

    def __init__(self, input: str, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.input = input
        self.cause = cause


def batched(seq: Iterable, size: int) -> Iterator[list]:
    """Consecutive batches of ``size`` (the last may be shorter); lazy, so a batch is yielded as soon as
    its items have arrived from an iterator."""
    batch: list = []
    for entry in seq:
        batch.append(entry)
        if len(batch) >= max(1, size):
            yield batch
            batch = []
    if batch:
        yield batch


def batched_by_shape(loaded: Iterable[tuple[dict, Any]], size: int, shape: Callable[[Any], tuple]) -> Iterator[list]:
    """Batches of at most ``size`` loaded items whose tensors share one shape (``shape(value)``), so that
    images of different sizes never meet in one ``torch.stack``. Lazy: a full batch is yielded as soon as
    its items have arrived; the partial batches of each shape at the end."""
    groups: dict[tuple, list] = defaultdict(list)
    for entry in loaded:
        key = tuple(shape(entry[1]))
        groups[key].append(entry)
        if len(groups[key]) >= max(1, size):
            yield groups.pop(key)
    for _, group in sorted(groups.items()):
        yield group


def check_item(item: Any) -> None:
    """Raise an input problem found while collecting the item (symlink loop, unreadable), if any."""
    check = getattr(item, "check", None)
    if callable(check):
        check()


@dataclass
class UnitOutput:
    """What one unit produced: rows per table, its errors rows, and how many items succeeded."""

    tables: dict[str, list[dict]]
    errors: list[dict]
    n_ok: int


class Operation:
    """Base class of texprobe's probes (see the module doc). Subclasses set the class attributes and
    implement ``plan``, ``setup``, ``load`` and ``compute``."""

    name: ClassVar[str]
    config_type: ClassVar[type]
    #: Tables written once per unit besides ``errors``; the LAST one marks the unit as done.
    tables: ClassVar[tuple[str, ...]]
    #: Whether the actor must import torch and set its threads (False: an operation without a network).
    needs_torch: ClassVar[bool] = True

    def __init__(self) -> None:
        self.config: Any = None
        self.device = "cpu"

    # ----------------------------------------------------------------- driver side
    def validate(self, config: Any) -> None:
        """Driver-side checks before Ray starts (raise a user error)."""

    def plan(self, config: Any) -> Iterable[WorkUnit]:
        """The run's units in a deterministic order; may be a generator (the runner streams it to the
        store, so a million-image plan never sits in the driver's memory)."""
        raise NotImplementedError

    def output_tables(self, config: Any) -> tuple[str, ...]:
        return self.tables

    def finish(self, store: Any, run_id: str, config: Any) -> dict:
        """After every unit (inside the Ray session); the dict goes into the manifest."""
        return {}

    # ----------------------------------------------------------------- actor side
    def setup(self, config: Any, device: str) -> None:
        self.config = config
        self.device = device

    def bind(self, *, store: Any, run_id: str) -> None:
        """Called once in the actor after ``setup``: the store and run the outputs belong to."""
        self.store = store
        self.run_id = run_id

    def describe(self, item: dict) -> str:
        """The input an item's errors row names: its file path as printable text (non-UTF-8 bytes escaped)."""
        return safe_text(item.get("path", item))

    def load(self, item: dict) -> Any:
        raise NotImplementedError

    def batches(self, loaded: list[tuple[dict, Any]]) -> Iterable[list[tuple[dict, Any]]]:
        return batched(loaded, getattr(self.config, "batch_size", 1))

    def compute(self, batch: list[tuple[dict, Any]]) -> dict[str, list[dict]]:
        raise NotImplementedError

    def to_table(self, table: str, rows: list[dict]) -> Any:
        """Rows of one table as written to the store (a list of dicts, or an Arrow table)."""
        return rows

    #: Threads that decode a unit's inputs ahead of the forward passes (Pillow and zlib release the GIL);
    #: 0 decodes inline, before each batch's compute.
    load_threads: int = 4
    #: A load faster than this (seconds) is done inline: handing it to a thread costs more than it takes
    #: (a header read: 65 us per image inline, 166 us through 4 threads fighting over the GIL).
    inline_load_s: float = 0.0005

    def _prefetch(self, items: Sequence[dict], failed: Callable[[dict, str, BaseException], None]
                  ) -> Iterator[tuple[dict, Any]]:
        """``(item, load(item))`` in the items' order, decoded by :attr:`load_threads` threads ahead of the
        consumer: while batch k runs through the network, the inputs of batch k+1 are being decoded. The
        first item is loaded inline and timed: when it took less than :attr:`inline_load_s`, the rest are
        too (decode placement by measurement). A failing load becomes ``failed(item, 'load', exc)`` and is
        skipped."""
        from concurrent.futures import ThreadPoolExecutor

        def inline(some: Sequence[dict]) -> Iterator[tuple[dict, Any]]:
            for item in some:
                try:
                    yield item, self.load(item)
                except Exception as exc:  # noqa: BLE001
                    failed(item, "load", exc)

        if self.load_threads <= 0 or len(items) <= 1:  # inline: decode, then compute (the benchmarks' baseline)
            yield from inline(items)
            return
        started = time.perf_counter()
        first = list(inline(items[:1]))  # timed alone (nothing of the consumer's work in it)
        elapsed = time.perf_counter() - started
        yield from first
        rest = items[1:]
        if elapsed < self.inline_load_s:
            yield from inline(rest)
            return
        with ThreadPoolExecutor(max_workers=max(1, self.load_threads), thread_name_prefix="decode") as pool:
            futures = [pool.submit(self.load, item) for item in rest]
            for item, future in zip(rest, futures):
                try:
                    yield item, future.result()
                except Exception as exc:  # noqa: BLE001 - any failure of one input costs that input only
                    failed(item, "load", exc)

    def run_unit(self, unit: WorkUnit) -> UnitOutput:
        """Load every item and compute every batch; each failing item costs one errors row."""
        errors: list[dict] = []

        def failed(item: dict, stage: str, exc: BaseException) -> None:
            if isinstance(exc, ItemInputError):
                errors.append(error_row(unit_id=unit.unit_id, input=exc.input, stage=stage, exc=exc.cause))
            else:
                errors.append(error_row(unit_id=unit.unit_id, input=self.describe(item), stage=stage, exc=exc))

        loaded = self._prefetch(unit.items, failed)
        out: dict[str, list[dict]] = defaultdict(list)
        n_ok = 0
        for batch in self.batches(loaded):
            attempts = [batch]
            try:
                for table, rows in self.compute(batch).items():
                    out[table].extend(rows)
                n_ok += len(batch)
                continue
            except Exception as exc:  # noqa: BLE001
                if len(batch) == 1:
                    failed(batch[0][0], "compute", exc)
                    continue
                attempts = [[one] for one in batch]  # isolate the culprit
            for single in attempts:
                try:
                    for table, rows in self.compute(single).items():
                        out[table].extend(rows)
                    n_ok += 1
                except Exception as exc:  # noqa: BLE001
                    failed(single[0][0], "compute", exc)
        return UnitOutput(tables=dict(out), errors=errors, n_ok=n_ok)


class ImageOperation(Operation):
    """An operation over an image set (``config.inputs``, ``config.dataset``): one image per item, units of
    ``config.unit_size``, batches of one tensor shape (``load`` returns ``(item, id, tensor, ...)``), and a
    network ``self.model`` run with the config's ``bf16`` and ``channels_last``."""

    def plan(self, config: Any) -> Iterator[WorkUnit]:
        from pipelines.imagesets import iter_images

        items = map(image_item_dict, iter_images(list(config.inputs), dataset=config.dataset))
        salt = config_hash({k: v for k, v in vars(config).items() if k not in ("batch_size", "channels_last")})
        return make_units(items, unit_size=config.unit_size, key=lambda it: it["path"], salt=salt)

    def batches(self, loaded: Iterable[tuple[dict, Any]]) -> Iterator[list]:
        return batched_by_shape(loaded, self.config.batch_size, lambda value: value[2].shape)

    def memory_format(self, model: Any) -> Any:
        """``model`` in channels_last memory format when the config asks for it."""
        import torch

        return model.to(memory_format=torch.channels_last) if self.config.channels_last else model

    def forward(self, x: Any, run: Callable[[Any], Any]) -> Any:
        """``run`` on the batch ``x`` moved to the device and normalised, in inference mode (channels_last
        and bf16 autocast as configured)."""
        import torch

        with torch.inference_mode():
            x = self.model.normalize(x.to(self.device))
            if self.config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=self.device, dtype=torch.bfloat16, enabled=self.config.bf16):
                return run(x)


def image_item_dicts(items: Iterable[Any]) -> list[dict]:
    """``ImageItem``s as JSON-able dicts (their dataclass fields)."""
    return [image_item_dict(it) for it in items]


def image_item_dict(item: Any) -> dict:
    """One ``ImageItem`` as a JSON-able dict (its fields are plain values: a copy of ``vars``, which is
    ten times cheaper than ``dataclasses.asdict``'s deep copy)."""
    return dict(vars(item))


def image_item(data: dict) -> Any:
    """An ``ImageItem`` from :func:`image_item_dicts`' dict."""
    from pipelines.imagesets import ImageItem

    return ImageItem(**data)
