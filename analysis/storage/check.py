"""``store check``: find damaged parts (and manifests) and quarantine them, never deleting anything.

A part is damaged when it cannot be read in full (zero bytes, truncated, corrupt pages, not
Parquet), when a page's CRC-32 does not match its bytes (parts are written with page checksums), or
when its footer schema disagrees with its table's schema. Quarantine moves a damaged
file to ``<store>/quarantine/<its path relative to the store>``, where the views no longer see it
and a person can inspect or restore it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from analysis.schemas import TABLES
import analysis.storage.files as files
from analysis.storage.layout import StoreLocation
from analysis.storage.tables import list_parts, list_table_runs, schema_problems

__all__ = ["DamagedFile", "find_damaged", "quarantine"]


@dataclass(frozen=True)
class DamagedFile:
    """A damaged file: its path on the store's fs, path relative to the store, and why."""

    path: str
    relative: str
    reason: str


def _part_problem(loc: StoreLocation, path: str, expected: pa.Schema) -> str | None:
    try:
        with loc.fs.open_input_file(path) as f:
            data = pq.read_table(f, page_checksum_verification=True)  # every page read and its CRC checked
        problems = schema_problems(data.schema, expected)
    except (OSError, pa.ArrowException, ValueError) as exc:  # UnicodeDecodeError too: a damaged footer's names
        return f"unreadable: {type(exc).__name__}: {exc}"
    return "schema mismatch: " + "; ".join(problems) if problems else None


def _run_json_problems(loc: StoreLocation, directory: str) -> list[DamagedFile]:
    """A run folder's compaction record and part index that are not JSON objects (quarantining them is
    safe: without the index readers open the footers; without the record the compacted files are unseen and
    the unit parts not yet removed are seen again; nothing is deleted)."""
    from analysis.storage.run_parts import COMPACTION_RECORD, PART_INDEX

    out = []
    for name in (COMPACTION_RECORD, PART_INDEX):
        path = f"{directory}/{name}"
        try:
            body = json.loads(files.read_bytes(loc, path).decode("utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            out.append(DamagedFile(path, loc.relative(path), f"unreadable {name}: {type(exc).__name__}: {exc}"))
            continue
        if not isinstance(body, dict):
            out.append(DamagedFile(path, loc.relative(path), f"{name} is not a JSON object"))
    return out


def find_damaged(loc: StoreLocation, *, schemas: Mapping[str, pa.Schema] | None = None) -> list[DamagedFile]:
    """Every damaged part of every table, and every manifest that is not a JSON object."""
    known = TABLES if schemas is None else schemas
    damaged = []
    for table in files.list_dirs(loc, loc.tables_dir()):
        if table not in known:
            continue
        for run_id in list_table_runs(loc, table):
            bad_json = _run_json_problems(loc, loc.run_dir(table, run_id))
            damaged.extend(bad_json)
            if bad_json:
                continue  # the run's parts cannot be listed until the record or index is set aside
            for part in list_parts(loc, table, run_id=run_id):
                reason = _part_problem(loc, part.path, known[table])
                if reason:
                    damaged.append(DamagedFile(part.path, loc.relative(part.path), reason))
    for name in files.list_files(loc, loc.runs_dir(), ".json"):
        path = f"{loc.runs_dir()}/{name}"
        try:
            body = json.loads(files.read_bytes(loc, path).decode("utf-8"))
            reason = None if isinstance(body, dict) else "manifest is not a JSON object"
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            reason = f"unreadable manifest: {type(exc).__name__}: {exc}"
        if reason:
            damaged.append(DamagedFile(path, loc.relative(path), reason))
    return damaged


def quarantine(loc: StoreLocation, damaged: Sequence[DamagedFile]) -> list[str]:
    """Move each damaged file under ``<store>/quarantine/`` keeping its relative path.

    Returns the new paths. A file already quarantined under that name is kept: the newcomer gets a
    numeric suffix, so nothing is ever overwritten or deleted.
    """
    moved = []
    for item in damaged:
        target = loc.quarantine_path(item.path)
        n = 1
        while files.exists(loc, target):
            target = f"{loc.quarantine_path(item.path)}.{n}"
            n += 1
        files.move(loc, item.path, target)
        moved.append(target)
    return moved
