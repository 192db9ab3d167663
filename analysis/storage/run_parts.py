"""What a reader sees in one run folder of a table: its unit parts, its compacted files, its part index.

A run folder ``<store>/tables/<table>/run_id=<run>/`` holds, besides the unit parts ``<unit>.parquet``:

* ``_compaction.json`` - the compaction record (:mod:`analysis.storage.compaction`): the compacted files
  (``compacted-*.parquet``) that replace the unit parts it lists, and the work units folded in;
* ``_index.json`` - the part index: per part its size, modification time, row count, schema version and
  schema, recorded when the run finished or was compacted, so readers need not open every footer.

The reading rule (one listing of the folder, one read of each small JSON file):

* a compacted file is visible only when the record names it (a file written by a compaction that crashed
  before recording it is never seen);
* a unit part the record says it replaced is invisible (a crash half-way through removing them is
  harmless);
* so a reader sees the old parts or the compacted files, never both, never neither.

A part holds the rows of one work unit (``unit-<hash>.parquet``) or, for units that take milliseconds, of
one *call* of several units (``call-<hash of their ids>.parquet``, written in one go; its footer metadata
``texprobe.units`` lists them: :func:`part_units`). Either way a part is all-or-nothing for its units.

A part whose listed size and mtime equal its index entry is described from the index; any other part
(not indexed yet, replaced, truncated) has its footer read as before, so damage is still found.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

import analysis.storage.files as files
from analysis.storage.layout import PART_SUFFIX, StoreLocation

__all__ = ["COMPACTION_RECORD", "PART_INDEX", "COMPACTED_PREFIX", "CALL_PREFIX", "META_UNITS", "RunFolder",
           "read_run_folder", "indexed", "encode_schema", "decode_schema", "part_units"]

COMPACTION_RECORD = "_compaction.json"
PART_INDEX = "_index.json"
COMPACTED_PREFIX = "compacted-"
CALL_PREFIX = "call-"
#: Footer metadata key of a call part: its work units, one per line.
META_UNITS = b"texprobe.units"


@dataclass(frozen=True)
class Listed:
    """A file of the folder: base name, size and modification time (ns) from the listing."""

    name: str
    size: int
    mtime_ns: int | None


@dataclass
class RunFolder:
    """One run folder as a reader sees it (see the module doc)."""

    directory: str
    visible: list[Listed] = field(default_factory=list)        # parts to read (unit parts + recorded compacted)
    replaced_present: list[str] = field(default_factory=list)   # replaced unit parts not yet removed
    record: dict[str, Any] | None = None
    index: dict[str, Any] | None = None
    stray: list[str] = field(default_factory=list)              # unrecorded compacted files (a crashed compaction)

    @property
    def folded_units(self) -> set[str]:
        """Work units whose rows live in the compacted files."""
        return set((self.record or {}).get("units", []))


def _read_json(loc: StoreLocation, path: str) -> dict[str, Any] | None:
    try:
        body = json.loads(files.read_bytes(loc, path).decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        from analysis.storage.errors import StorageError

        raise StorageError(f"{path}: unreadable ({type(exc).__name__}: {exc}); run `texprobe store check`") from None
    return body if isinstance(body, dict) else None


def _mtime_ns(info: pafs.FileInfo) -> int | None:
    ns = getattr(info, "mtime_ns", None)
    return int(ns) if ns is not None else None


def read_run_folder(loc: StoreLocation, directory: str, *, with_index: bool = True) -> RunFolder:
    """List ``directory`` once and apply the compaction record (see the module doc)."""
    infos = loc.fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
    listed = {i.base_name: Listed(i.base_name, int(i.size or 0), _mtime_ns(i))
              for i in infos if i.type == pafs.FileType.File}
    folder = RunFolder(directory)
    if COMPACTION_RECORD in listed:
        folder.record = _read_json(loc, f"{directory}/{COMPACTION_RECORD}")
    if with_index and PART_INDEX in listed:
        folder.index = _read_json(loc, f"{directory}/{PART_INDEX}")
    recorded = set((folder.record or {}).get("files", []))
    replaced = (folder.record or {}).get("replaces", {})  # name -> [size, mtime_ns] when it was folded in
    for name in sorted(listed):
        if not name.endswith(PART_SUFFIX) or name.startswith("."):
            continue
        if name.startswith(COMPACTED_PREFIX):
            if name in recorded:
                folder.visible.append(listed[name])
            else:
                folder.stray.append(name)
        elif name.startswith("_"):
            continue
        elif name in replaced and _same_file(listed[name], replaced[name]):
            folder.replaced_present.append(name)  # folded in, not removed yet (a rewritten part is new: kept)
        else:
            folder.visible.append(listed[name])
    return folder


def part_units(loc: StoreLocation, directory: str, name: str) -> list[str]:
    """The work units whose rows part ``name`` (a file of ``directory``) holds: the unit a unit part is
    named after, or the units a call part's footer lists. A call part whose footer cannot be read holds
    no unit known to be done (its units run again on resume; ``store check`` names the part)."""
    stem = name[: -len(PART_SUFFIX)] if name.endswith(PART_SUFFIX) else name
    if not stem.startswith(CALL_PREFIX):
        return [stem]
    import pyarrow.parquet as pq

    try:
        with loc.fs.open_input_file(f"{directory}/{name}") as f:
            meta = pq.read_metadata(f).metadata or {}
    except (OSError, pa.ArrowException, ValueError):
        return []
    raw = meta.get(META_UNITS, b"")
    return [u for u in raw.decode("utf-8").split("\n") if u]


def _same_file(item: Listed, signature: Any) -> bool:
    return isinstance(signature, list) and len(signature) == 2 and [item.size, item.mtime_ns] == signature


def indexed(folder: RunFolder, item: Listed) -> dict[str, Any] | None:
    """The index entry of ``item`` when its size and mtime are the indexed ones (else None)."""
    entry = ((folder.index or {}).get("parts") or {}).get(item.name)
    if not entry or item.mtime_ns is None:
        return None
    if entry.get("size") != item.size or entry.get("mtime_ns") != item.mtime_ns:
        return None
    return entry


def encode_schema(schema: pa.Schema) -> str:
    """An Arrow schema as base64 text (its IPC serialisation), for the part index."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def decode_schema(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))
