"""Table parts: schema versions, encoding, listing, footers, and reading a table as a dataset.

Every part carries its table name and schema version in the Parquet footer's key-value metadata
(``texprobe.table``, ``texprobe.schema_version``). :data:`SCHEMA_VERSIONS` is bumped whenever a
column of a table changes type or is renamed; adding a nullable column is the one documented
migration that needs no bump (older parts read that column as NULL).

Readers skip a part whose footer cannot be read (zero bytes, truncated, not Parquet) with an
:class:`~analysis.storage.errors.UnreadablePartWarning` that names it, and refuse a part whose footer
schema disagrees with the table's schema (:class:`~analysis.storage.errors.PartSchemaError`), so a
type change or a renamed column is never silently unioned in.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypedDict, Unpack

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from analysis.schemas import TABLES
import analysis.storage.files as files
from analysis.storage.errors import PartSchemaError, StorageError, UnreadablePartWarning
from analysis.storage.layout import PART_SUFFIX, RUN_PREFIX, StoreLocation

__all__ = [
    "SCHEMA_VERSIONS", "PartInfo", "PartFooter", "PartSelection", "table_schema", "encode_part",
    "list_table_runs", "list_parts", "parquet_options", "read_footers", "readable_parts", "warn_unreadable", "schema_problems",
    "check_part_schemas", "table_dataset",
]

#: Schema version per table; bump on a type change or rename (not for an added nullable column).
SCHEMA_VERSIONS: dict[str, int] = {name: 1 for name in TABLES}
META_TABLE = b"texprobe.table"
META_VERSION = b"texprobe.schema_version"


@dataclass(frozen=True)
class PartInfo:
    """One part file: its table, run, name (without ``.parquet``) and path on the store's fs;
    ``described``: what the run's part index says of it when the listed size and mtime match (then its
    footer need not be opened), else None."""

    table: str
    run_id: str
    name: str
    path: str
    described: "PartFooter | None" = field(default=None, compare=False, repr=False)
    size: int = field(default=0, compare=False)
    mtime_ns: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PartFooter:
    """What a part's footer says; ``error`` is set (and the rest empty) when it is unreadable."""

    part: PartInfo
    schema: pa.Schema | None
    num_rows: int
    version: int | None
    error: str | None = None


def table_schema(table: str, schemas: Mapping[str, pa.Schema] | None = None) -> pa.Schema:
    """The Arrow schema of ``table``; :class:`StorageError` for an unknown table."""
    known = TABLES if schemas is None else schemas
    try:
        return known[table]
    except KeyError:
        raise StorageError(f"unknown table {table!r}; known tables: {sorted(known)}") from None


#: Below this many Arrow bytes a part is compressed with snappy, not zstd: zstd starts a context per column
#: chunk (~40 us each), which made it 1.2 of the 1.7 ms it took to write a 64-row trials part, for 2 % fewer
#: bytes. Such parts are short-lived: compaction rewrites them with zstd. Parts whose float lists (Grams,
#: feature maps) hold more than :data:`SMALL_FLOAT_LIST_BYTES` are always zstd: their bytes are the store's.
SMALL_PART_BYTES = 1 << 20
SMALL_FLOAT_LIST_BYTES = 64 << 10


def encode_part(table: str, data: pa.Table, *, units: Sequence[str] | None = None) -> bytes:
    """``data`` (already conformed) as Parquet bytes with the table name and schema version; ``units``:
    the work units a call part holds (footer metadata, :func:`analysis.storage.run_parts.part_units`)."""
    from analysis.storage.run_parts import META_UNITS

    meta = dict(data.schema.metadata or {})
    meta[META_TABLE] = table.encode()
    meta[META_VERSION] = str(SCHEMA_VERSIONS.get(table, 1)).encode()
    if units is not None:
        meta[META_UNITS] = "\n".join(units).encode("utf-8")
    buffer = io.BytesIO()
    float_bytes = sum(data.column(f.name).nbytes for f in data.schema if _is_float_list(f.type))
    small = data.nbytes < SMALL_PART_BYTES and float_bytes <= SMALL_FLOAT_LIST_BYTES
    compression = "snappy" if small else "zstd"  # Grams (large float lists) always zstd: their bytes are the store's
    pq.write_table(data.replace_schema_metadata(meta), buffer, **parquet_options(data.schema, compression=compression))
    return buffer.getvalue()


def _is_float_list(t: pa.DataType) -> bool:
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_floating(t.value_type)


def parquet_options(schema: pa.Schema, *, compression: str = "zstd") -> dict:
    """How every part is written: zstd (snappy for small unit parts: :data:`SMALL_PART_BYTES`); page
    checksums (CRC-32 of every page, Parquet format spec), which
    `store check` verifies, so a flipped byte in a data page is found even where it still decodes; float
    columns (and lists of floats, e.g. Grams) byte-stream-split instead of dictionary-encoded: their
    exponent bytes compress well apart, and the zeroed low bytes of reduced-precision Grams vanish."""
    floats, others = [], []
    for field in schema:
        t = field.type
        if pa.types.is_floating(t):
            floats.append(field.name)
        elif (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_floating(t.value_type):
            floats.append(f"{field.name}.list.element")
        else:
            others.append(field.name)
    return {"compression": compression, "write_page_checksum": True, "use_dictionary": others,
            "use_byte_stream_split": floats or False}


def list_table_runs(loc: StoreLocation, table: str) -> list[str]:
    """Run ids that have a partition folder in ``table`` (sorted as strings; no time order)."""
    names = files.list_dirs(loc, loc.table_dir(table))
    return [n[len(RUN_PREFIX):] for n in names if n.startswith(RUN_PREFIX)]


def list_parts(loc: StoreLocation, table: str, *, run_id: str | None = None) -> list[PartInfo]:
    """The visible parts of ``table`` (of one run, or of all), in run then part-name order: unit parts
    and recorded compacted files, never both for the same rows (:mod:`analysis.storage.run_parts`)."""
    from analysis.storage.run_parts import read_run_folder

    run_ids = [run_id] if run_id is not None else list_table_runs(loc, table)
    out = []
    for rid in run_ids:
        folder = read_run_folder(loc, loc.run_dir(table, rid))
        described = _index_footers(folder, table, rid)
        for item in folder.visible:
            name = item.name[: -len(PART_SUFFIX)]
            out.append(PartInfo(table, rid, name, f"{folder.directory}/{item.name}", described.get(item.name),
                                item.size, item.mtime_ns))
    return out


def _index_footers(folder, table: str, run_id: str) -> dict[str, "PartFooter"]:
    """file name -> PartFooter of the folder's parts whose index entry still matches the listing."""
    from analysis.storage.run_parts import decode_schema, indexed

    if not folder.index:
        return {}
    schemas = [decode_schema(text) for text in folder.index.get("schemas", [])]
    out = {}
    for item in folder.visible:
        entry = indexed(folder, item)
        if entry is not None and 0 <= entry.get("schema", -1) < len(schemas):
            part = PartInfo(table, run_id, item.name[: -len(PART_SUFFIX)], f"{folder.directory}/{item.name}",
                            size=item.size, mtime_ns=item.mtime_ns)
            out[item.name] = PartFooter(part, schemas[entry["schema"]], int(entry["rows"]), entry.get("version"))
    return out


def _read_footer(loc: StoreLocation, part: PartInfo) -> PartFooter:
    if part.described is not None:
        return part.described
    try:
        with loc.fs.open_input_file(part.path) as f:
            meta = pq.read_metadata(f)
        schema = meta.schema.to_arrow_schema()
        raw = (schema.metadata or {}).get(META_VERSION)
        return PartFooter(part, schema, meta.num_rows, int(raw) if raw else None)
    except (OSError, pa.ArrowException, ValueError) as exc:
        return PartFooter(part, None, 0, None, error=f"{type(exc).__name__}: {exc}")


def parts_fingerprint(footers: Sequence[PartFooter]) -> str:
    """One run's parts as a string that changes when any part is added, removed, replaced, rewritten or
    quarantined (names, listed sizes and mtimes, row counts): what a summary of them (``trial_counts``) is
    valid for."""
    import hashlib

    lines = sorted(f"{f.part.name}\t{f.part.size}\t{f.part.mtime_ns}\t{f.num_rows}" for f in footers)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def read_footers(loc: StoreLocation, parts: Sequence[PartInfo], *, threads: int = 8) -> list[PartFooter]:
    """The footers of ``parts`` (read in parallel: object stores have latency), in order."""
    unread = [p for p in parts if p.described is None]  # the index describes the others
    if len(unread) <= 1 or threads <= 1:
        return [_read_footer(loc, p) for p in parts]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        read = dict(zip((p.path for p in unread), pool.map(lambda p: _read_footer(loc, p), unread)))
    return [p.described if p.described is not None else read[p.path] for p in parts]


def schema_problems(found: pa.Schema, expected: pa.Schema, *, table: str | None = None) -> list[str]:
    """Why a part's footer schema ``found`` cannot be read as ``expected`` (empty: compatible).

    Compatible means: every column the part shares with the table has the same *kind* of type
    (:func:`analysis.parts.type_kind`: integer, float and string widths are unified when read, a
    documented migration); the table's key columns (:data:`analysis.schemas.KEY_COLUMNS`) and
    non-nullable columns are present; a column the table does not know is an error (a renamed column
    would otherwise read as NULL and shadow older runs). Missing nullable columns read as NULL.
    """
    from analysis.parts import type_kind
    from analysis.schemas import KEY_COLUMNS

    problems = []
    for field in found:
        i = expected.get_field_index(field.name)
        if i < 0:
            problems.append(f"column {field.name!r} is not in the table schema (renamed or a typo?)")
        elif type_kind(field.type) != type_kind(expected.field(i).type):
            problems.append(
                f"column {field.name!r} is {field.type}, the table schema says {expected.field(i).type}"
            )
    keys = set(KEY_COLUMNS.get(table or "", ()))
    for field in expected:
        if (not field.nullable or field.name in keys) and found.get_field_index(field.name) < 0:
            problems.append(f"required column {field.name!r} is missing")
    return problems


def check_part_schemas(table: str, footers: Sequence[PartFooter], expected: pa.Schema) -> None:
    """Raise :class:`PartSchemaError` for the first readable part that does not fit ``expected``."""
    current = SCHEMA_VERSIONS.get(table, 1)
    fine: set[tuple[pa.Schema, int | None]] = set()  # 20,000 parts of a run share one schema: check it once
    for footer in footers:
        if footer.schema is None or (footer.schema, footer.version) in fine:
            continue
        problems = schema_problems(footer.schema, expected, table=table)
        if footer.version is not None and footer.version > current:
            problems.append(f"written with schema version {footer.version}; this texprobe knows "
                            f"version {current} (upgrade texprobe)")
        if problems:
            raise PartSchemaError(footer.part.path, table, problems)
        fine.add((footer.schema, footer.version))


def warn_unreadable(footers: Sequence[PartFooter]) -> list[PartFooter]:
    """Warn once per unreadable part (naming it); returns the readable ones."""
    good = []
    for footer in footers:
        if footer.error is None:
            good.append(footer)
        else:
            warnings.warn(
                f"skipping unreadable part {footer.part.path} ({footer.error}); run "
                "`texprobe store check --quarantine` to move it aside",
                UnreadablePartWarning, stacklevel=3,
            )
    return good


class PartSelection(TypedDict, total=False):
    """The keywords of :func:`readable_parts`, which :func:`table_dataset` passes on: ``run_id`` (one
    run; default all), ``schema`` (default the table's), ``check_schema`` (default True)."""

    run_id: str | None
    schema: pa.Schema | None
    check_schema: bool


def readable_parts(
    loc: StoreLocation,
    table: str,
    *,
    run_id: str | None = None,
    schema: pa.Schema | None = None,
    check_schema: bool = True,
) -> list[PartFooter]:
    """The footers of ``table``'s readable parts: unreadable ones are skipped with a warning naming
    each; with ``check_schema`` a part that disagrees with the schema raises PartSchemaError."""
    expected = schema if schema is not None else table_schema(table)
    footers = warn_unreadable(read_footers(loc, list_parts(loc, table, run_id=run_id)))
    if check_schema:
        check_part_schemas(table, footers, expected)
    return footers


def table_dataset(loc: StoreLocation, table: str, **selection: Unpack[PartSelection]) -> pads.Dataset:
    """``table`` as a :class:`pyarrow.dataset.Dataset` in the table's schema (DuckDB can scan it).

    Unreadable parts are skipped with a warning naming each; with ``check_schema`` a part whose
    footer disagrees with the schema raises :class:`PartSchemaError`. No parts: an empty dataset.
    """
    schema = selection.pop("schema", None)
    expected = schema if schema is not None else table_schema(table)
    paths = [f.part.path for f in readable_parts(loc, table, schema=expected, **selection)]
    if not paths:
        return pads.dataset(expected.empty_table())
    return pads.dataset(paths, schema=expected, format="parquet", filesystem=loc.fs)
