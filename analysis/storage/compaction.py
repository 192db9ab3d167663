"""Compaction: a run's many unit parts of a table rewritten as a few large sorted files, crash-safe.

A run of 1.28 M images in 64-image units leaves 20,000 parts per table; every query then opens 20,000
files. :func:`compact_run` folds them into ``compacted-<digest>-<k>.parquet`` files (each at most
:data:`CHUNK_BYTES` of Arrow data, rows sorted by the columns the views group and join on, row groups of
at most 1 M rows or :data:`ROW_GROUP_BYTES`). The protocol, each step atomic (a local rename + fsync or
one object-store PUT), so a reader sees the old parts or the compacted files, never both, never neither
(the reading rule is in :mod:`analysis.storage.run_parts`):

1. ``wrote``     the compacted files are written; texprobe's readers ignore them until they are recorded;
2. ``recorded``  ``_compaction.json`` names them, the unit parts they replace (with size and mtime: a part
                 rewritten later is new, not replaced) and the work units folded in - the commit point;
3. ``indexed``   ``_index.json`` describes them (row count, schema), so readers need not open them;
4. ``removed:k`` the replaced files are removed one by one (a crash leaves them hidden; a re-run removes
                 the rest, and folds in any unit parts written since).

Nothing damaged is folded in silently: every input is read in full with page checksums first, and a
damaged part, or a quarantined file of this run and table, stops the compaction naming it.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

import analysis.storage.files as files
from analysis.storage.errors import StorageError
from analysis.storage.layout import PART_SUFFIX, StoreLocation
from analysis.storage.run_parts import (COMPACTED_PREFIX, COMPACTION_RECORD, PART_INDEX, RunFolder, encode_schema,
                                        part_units, read_run_folder)

__all__ = ["CompactionRefused", "CompactionReport", "SORT_KEYS", "compact_run", "write_part_index"]

#: Arrow bytes per compacted file (a run larger than this becomes several files, each sorted). It bounds the
#: compacting process's memory (the chunk, its sorted copy and its encoding: ~3x): 32 MiB keeps the driver
#: flat at a million images (benchmarks/driver_memory.py) and still makes row groups of ~100,000 trials.
CHUNK_BYTES = 32 * 2**20
#: Target bytes (Arrow, uncompressed) and rows of one row group.
ROW_GROUP_BYTES = 128 * 2**20
ROW_GROUP_ROWS = 1_000_000
#: Sort keys per table: what the views group and join on (identity, then the image).
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "trials": ("observer", "weights_sha256", "dataset", "image_id", "image"),
    "grams": ("backbone", "weights_sha256", "layer", "image_id"),
    "layer_stats": ("backbone", "weights_sha256", "layer", "image_id"),
    "reconstructions": ("backbone", "kind", "image_id"),
    "stimuli": ("stimulus_id",),
    "errors": ("unit_id", "input"),
}


class CompactionRefused(StorageError):
    """Compaction stopped before writing anything (a damaged or quarantined part, named)."""


@dataclass
class CompactionReport:
    table: str
    run_id: str
    parts_in: int = 0
    files_out: list[str] = field(default_factory=list)
    rows: int = 0
    removed: int = 0
    note: str = ""


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_json(loc: StoreLocation, path: str, body: dict) -> None:
    files.write_bytes(loc, path, json.dumps(body, indent=1, sort_keys=True).encode("utf-8"))


def _footer_entry(loc: StoreLocation, path: str, size: int, mtime_ns: int | None, schemas: list[str]) -> dict:
    from analysis.storage.tables import META_VERSION

    with loc.fs.open_input_file(path) as f:
        meta = pq.read_metadata(f)
    schema = meta.schema.to_arrow_schema()
    text = encode_schema(schema.remove_metadata())
    if text not in schemas:
        schemas.append(text)
    raw = (schema.metadata or {}).get(META_VERSION)
    return {"size": size, "mtime_ns": mtime_ns, "rows": meta.num_rows, "version": int(raw) if raw else None,
            "schema": schemas.index(text)}


def write_part_index(loc: StoreLocation, table: str, run_id: str, *, folder: RunFolder | None = None) -> int:
    """(Re)write the run folder's part index; entries still matching are kept, unreadable parts are left
    out (readers then open them and warn). Returns the number of parts indexed."""
    from analysis.storage.run_parts import decode_schema, indexed

    folder = folder or read_run_folder(loc, loc.run_dir(table, run_id))
    old_schemas = [decode_schema(t) for t in (folder.index or {}).get("schemas", [])]
    schemas: list[str] = []
    parts = {}
    for item in folder.visible:
        entry = indexed(folder, item)
        if entry is not None and entry.get("mtime_ns") is not None:
            text = encode_schema(old_schemas[entry["schema"]])
            if text not in schemas:
                schemas.append(text)
            parts[item.name] = {**entry, "schema": schemas.index(text)}
            continue
        if item.mtime_ns is None:
            continue  # no modification time on this file system: nothing to validate against
        try:
            parts[item.name] = _footer_entry(loc, f"{folder.directory}/{item.name}", item.size, item.mtime_ns, schemas)
        except (OSError, pa.ArrowException, ValueError):
            continue
    _write_json(loc, f"{folder.directory}/{PART_INDEX}", {"version": 1, "schemas": schemas, "parts": parts})
    return len(parts)


def _refuse_quarantined(loc: StoreLocation, table: str, run_id: str, folder: RunFolder) -> None:
    selector = pafs.FileSelector(loc.quarantine_path(folder.directory), allow_not_found=True, recursive=True)
    quarantined = [i.path for i in loc.fs.get_file_info(selector) if i.type == pafs.FileType.File]
    if quarantined:
        raise CompactionRefused(
            f"run {run_id} table {table}: {len(quarantined)} quarantined part(s) of this run, e.g. "
            f"{loc.relative(quarantined[0])}: restore or delete them (see `texprobe store check`), then compact")


def _read_checked(loc: StoreLocation, table: str, run_id: str, path: str, expected: pa.Schema) -> pa.Table:
    """The part's rows in the table's schema (missing nullable columns as NULL), read in full with its
    page checksums verified; a damaged part stops the compaction, named."""
    from analysis.storage.tables import schema_problems

    try:
        with loc.fs.open_input_file(path) as f:
            data = pq.ParquetFile(f, page_checksum_verification=True).read(use_threads=False)
        problems = schema_problems(data.schema, expected, table=table)
    except (OSError, pa.ArrowException, ValueError) as exc:
        problems = [f"unreadable: {type(exc).__name__}: {exc}"]
    if problems:
        raise CompactionRefused(
            f"run {run_id} table {table}: part {loc.relative(path)} is damaged ({'; '.join(problems)}); nothing "
            "was compacted. Run `texprobe store check --quarantine`, resume the run, then compact")
    if data.schema.remove_metadata().equals(expected.remove_metadata()):  # the common case: nothing to cast
        return data.replace_schema_metadata(expected.metadata)
    columns = [data.column(f.name).cast(f.type) if f.name in data.column_names else pa.nulls(data.num_rows, f.type)
               for f in expected]
    return pa.Table.from_arrays(columns, schema=expected)


def _encode(table: str, data: pa.Table) -> bytes:
    from analysis.storage.tables import META_TABLE, META_VERSION, SCHEMA_VERSIONS, parquet_options

    meta = dict(data.schema.metadata or {})
    meta[META_TABLE] = table.encode()
    meta[META_VERSION] = str(SCHEMA_VERSIONS.get(table, 1)).encode()
    per_row = max(1, data.nbytes // max(1, data.num_rows))
    rows_per_group = max(1, min(ROW_GROUP_ROWS, ROW_GROUP_BYTES // per_row))
    buffer = io.BytesIO()
    pq.write_table(data.replace_schema_metadata(meta), buffer, row_group_size=rows_per_group,
                   **parquet_options(data.schema))
    return buffer.getvalue()


#: Unit parts read before they are combined into one contiguous table: thousands of 64-row tables would
#: each keep their own small, aligned buffers (about four times their bytes in resident memory).
COMBINE_PARTS = 64


#: Parts read at once by :data:`READ_THREADS` threads (Parquet decoding releases the GIL), in order.
READ_THREADS = 4
READ_AHEAD = 16


def _read_ahead(paths: Sequence[str], read: Callable[[str], pa.Table]) -> Iterator[pa.Table]:
    """``read(path)`` for every path, in order, :data:`READ_AHEAD` at a time by :data:`READ_THREADS`
    threads (memory holds the parts in flight only; the first failure is raised in order)."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="compact-read") as pool:
        pending: deque = deque()
        for path in paths:
            pending.append(pool.submit(read, path))
            if len(pending) >= READ_AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _chunks(paths: Sequence[str], read: Callable[[str], pa.Table]) -> Iterator[pa.Table]:
    """The inputs' rows (``read`` of each path), cut into tables of about :data:`CHUNK_BYTES` (streamed:
    at most one chunk in memory, held in contiguous pieces of :data:`COMBINE_PARTS` parts)."""
    batch, pending, size = [], [], 0
    for part in _read_ahead(paths, read):
        pending.append(part)
        size += part.nbytes
        if len(pending) >= COMBINE_PARTS:
            batch.append(pa.concat_tables(pending).combine_chunks())
            pending = []
        if size >= CHUNK_BYTES:
            yield pa.concat_tables(batch + pending)
            batch, pending, size = [], [], 0
    if batch or pending:
        yield pa.concat_tables(batch + pending)


def compact_run(loc: StoreLocation, table: str, run_id: str, *, schema: pa.Schema,
                exclude: Sequence[str] = (), only: Collection[str] | None = None,
                on_step: Callable[[str], None] | None = None) -> CompactionReport:
    """Compact ``table`` of ``run_id`` (see the module doc). ``exclude``: unit part names to leave as they
    are (e.g. the errors parts of units still missing, which a resume replaces). ``only``: fold just these
    unit parts (a running run's units known to be done; the others may still be written). Compacted files
    already recorded are kept as they are: new files are added beside them, so compacting while a run goes
    on, batch after batch, reads every row once. ``on_step``: called after each protocol step with its
    name (the crash tests kill the process there)."""
    step = on_step or (lambda _: None)
    report = CompactionReport(table, run_id)
    directory = loc.run_dir(table, run_id)
    folder = read_run_folder(loc, directory)
    skip = {f"{name}{PART_SUFFIX}" for name in exclude}
    wanted = None if only is None else {f"{name}{PART_SUFFIX}" for name in only}
    units = [i for i in folder.visible if not i.name.startswith(COMPACTED_PREFIX) and i.name not in skip
             and (wanted is None or i.name in wanted)]
    compacted = [i for i in folder.visible if i.name.startswith(COMPACTED_PREFIX)]
    if not units and folder.record:
        report.removed = _remove(loc, directory, folder.replaced_present + folder.stray, step)
        report.files_out = [i.name for i in compacted]
        report.note = "already compact" + (f"; removed {report.removed} leftover file(s)" if report.removed else "")
        return report
    if not units and not compacted:
        report.note = "no parts"
        return report
    _refuse_quarantined(loc, table, run_id, folder)
    inputs = units
    digest = hashlib.sha256("\n".join(sorted(i.name for i in inputs)).encode()).hexdigest()[:16]
    keys = [k for k in SORT_KEYS.get(table, ()) if k in schema.names]
    names = []
    chunks = _chunks([f"{directory}/{i.name}" for i in inputs],
                     lambda path: _read_checked(loc, table, run_id, path, schema))
    try:
        for k, chunk in enumerate(chunks):
            if keys:
                chunk = chunk.sort_by([(key, "ascending") for key in keys])
            name = f"{COMPACTED_PREFIX}{digest}-{k:03d}{PART_SUFFIX}"
            files.write_bytes(loc, f"{directory}/{name}", _encode(table, chunk))
            names.append(name)
            report.rows += chunk.num_rows
    except CompactionRefused:
        _remove(loc, directory, names, lambda _: None)  # unrecorded, so never seen; tidy up all the same
        raise
    step("wrote")
    record = folder.record or {}
    replaces = dict(record.get("replaces", {}))
    replaces.update({i.name: [i.size, i.mtime_ns] for i in units})
    members = {u for i in units for u in part_units(loc, directory, i.name)}  # a call part holds several units
    folded = sorted(set(record.get("units", [])) | members)
    kept = [i.name for i in compacted]
    _write_json(loc, f"{directory}/{COMPACTION_RECORD}", {
        "version": 1, "table": table, "run_id": run_id, "files": kept + names, "replaces": replaces,
        "units": folded, "rows": int(record.get("rows", 0)) + report.rows, "sorted_by": keys,
        "compacted_at": _now()})
    step("recorded")
    write_part_index(loc, table, run_id)
    step("indexed")
    stale = [i.name for i in inputs] + folder.replaced_present + [s for s in folder.stray if s not in names]
    report.removed = _remove(loc, directory, stale, step)
    report.parts_in, report.files_out = len(inputs), kept + names
    return report


def _remove(loc: StoreLocation, directory: str, names: Sequence[str], step: Callable[[str], None]) -> int:
    removed = 0
    for name in names:
        try:
            loc.fs.delete_file(f"{directory}/{name}")
            removed += 1
        except FileNotFoundError:
            pass
        step(f"removed:{removed}")
    return removed
