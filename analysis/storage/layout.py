"""The store layout: the one place that knows folder and file names, and where the store lives.

A store is a local directory, a ``file://`` URI, or an object-store URI that
:func:`pyarrow.fs.FileSystem.from_uri` understands, e.g.
``s3://bucket/prefix?endpoint_override=127.0.0.1:9000&scheme=http`` (credentials from the standard
``AWS_*`` environment variables)::

    <store>/tables/<table>/run_id=<run_id>/<part>.parquet   one file per work unit
    <store>/runs/<run_id>.json                              run manifest
    <store>/runs/plans/<run_id>.jsonl.gz                    the run's planned work units (JSON lines)
    <store>/images/<sha256>.png                             generated stimuli, reconstructions
    <store>/quarantine/<relative path>                      damaged files moved aside by `store check`
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs

from analysis.storage.errors import StorageError

__all__ = ["StoreLocation", "open_location", "check_name", "is_uri", "PART_SUFFIX"]

TABLES_DIR = "tables"
RUNS_DIR = "runs"
PLANS_DIR = "runs/plans"
IMAGES_DIR = "images"
QUARANTINE_DIR = "quarantine"
PART_SUFFIX = ".parquet"
RUN_PREFIX = "run_id="

# Names that become one path component: no separators, no '=' (hive partitions), no leading dot.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(root: str) -> bool:
    """Whether ``root`` is a URI (``scheme://...``) rather than a local path."""
    return bool(_URI.match(root))


def check_name(value: str, *, what: str) -> str:
    """``value`` if it is safe as one path component, else :class:`StorageError`."""
    if not isinstance(value, str) or not _SAFE_NAME.match(value):
        raise StorageError(
            f"invalid {what} {value!r}: use letters, digits, '.', '_' and '-' only, starting with a "
            "letter or digit (it becomes a file or folder name)"
        )
    return value


@dataclass(frozen=True)
class StoreLocation:
    """Where a store lives: its file system, base path on it, and every path inside it.

    Attributes:
        root: the root as given (absolute for local paths; a URI keeps its query string).
        fs: the :class:`pyarrow.fs.FileSystem` holding the store.
        base: the store's path on ``fs`` (no trailing slash).
        local: whether ``fs`` is the local file system (durable rename possible).
    """

    root: str
    fs: pafs.FileSystem
    base: str
    local: bool

    def path(self, *parts: str) -> str:
        """The path on :attr:`fs` of ``parts`` joined under the store's base."""
        return "/".join([self.base, *parts]) if self.base else "/".join(parts)

    def relative(self, path: str) -> str:
        """``path`` (on :attr:`fs`) relative to the store's base."""
        prefix = self.base + "/" if self.base else ""
        if not path.startswith(prefix):
            raise StorageError(f"{path!r} is not inside the store {self.root!r}")
        return path[len(prefix):]

    def uri(self, rel: str) -> str:
        """A path (local) or URI (object store) a user or another process can open ``rel`` with."""
        parts = rel.split("/")
        if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise StorageError(f"{rel!r} is not a path relative to the store root (e.g. images/<sha>.png)")
        if self.local:
            return os.path.join(self.base, *parts)
        head, sep, query = self.root.partition("?")
        return f"{head.rstrip('/')}/{rel}{sep}{query}"

    # ----------------------------------------------------------------- tables
    def tables_dir(self) -> str:
        return self.path(TABLES_DIR)

    def table_dir(self, table: str) -> str:
        return self.path(TABLES_DIR, check_name(table, what="table name"))

    def run_dir(self, table: str, run_id: str) -> str:
        return f"{self.table_dir(table)}/{RUN_PREFIX}{check_name(run_id, what='run_id')}"

    def part_path(self, table: str, run_id: str, part: str) -> str:
        check_name(part, what="part name")
        if part.endswith(PART_SUFFIX):
            raise StorageError(f"part name {part!r} must not include the {PART_SUFFIX!r} suffix")
        return f"{self.run_dir(table, run_id)}/{part}{PART_SUFFIX}"

    # ----------------------------------------------------------------- runs, images, quarantine
    def runs_dir(self) -> str:
        return self.path(RUNS_DIR)

    def manifest_path(self, run_id: str) -> str:
        return self.path(RUNS_DIR, f"{check_name(run_id, what='run_id')}.json")

    def plan_path(self, run_id: str) -> str:
        """The plan as one JSON list (texprobe <= 0.4; still read)."""
        return self.path(PLANS_DIR, f"{check_name(run_id, what='run_id')}.json")

    def plan_lines_path(self, run_id: str) -> str:
        """The plan as gzip-compressed JSON lines, one unit per line (streamed in and out)."""
        return self.path(PLANS_DIR, f"{check_name(run_id, what='run_id')}.jsonl.gz")

    def image_rel(self, sha256_hex: str) -> str:
        return f"{IMAGES_DIR}/{sha256_hex}.png"

    def quarantine_path(self, path: str) -> str:
        """Where ``path`` goes when quarantined: ``quarantine/<its path relative to the store>``."""
        return self.path(QUARANTINE_DIR, self.relative(path))


def _single_put(uri: str) -> str:
    """``s3://`` URIs get ``allow_delayed_open=true``: a small file is then one PutObject of its
    final key (atomic) instead of a multipart upload; the URI the user gave is kept for display."""
    if not uri.lower().startswith("s3://") or "allow_delayed_open" in uri:
        return uri
    return uri + ("&" if "?" in uri else "?") + "allow_delayed_open=true"


def open_location(root: str | os.PathLike[str]) -> StoreLocation:
    """The :class:`StoreLocation` of a local path or URI; a missing local directory is created by the first
    write, not here."""
    root_str = os.fspath(root)
    if not root_str:
        raise StorageError("store root is empty: pass a directory or a URI such as s3://bucket/x")
    if is_uri(root_str):
        try:
            fs, base = pafs.FileSystem.from_uri(_single_put(root_str))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError) as exc:
            raise StorageError(
                f"cannot open store {root_str!r}: {exc}. Use a local path, file:///abs/path or "
                "s3://bucket/prefix?endpoint_override=HOST:PORT&scheme=http"
            ) from exc
        local = isinstance(fs, pafs.LocalFileSystem)
        root_str = root_str.rstrip("/")
    else:
        fs = pafs.LocalFileSystem()
        base = os.path.abspath(os.path.expanduser(root_str))
        root_str, local = base, True
    base = base.rstrip("/") if base not in ("/", "") else base
    if local:
        _check_local_base(base)
    return StoreLocation(root=root_str, fs=fs, base=base, local=local)


def _check_local_base(base: str) -> None:
    """A local store directory need not exist yet (the first write creates it: a command refused for bad
    input leaves nothing on disk), but it must be creatable: an existing non-directory, or a missing one
    under a folder this process cannot write, is refused now."""
    if os.path.exists(base):
        if not os.path.isdir(base):
            raise StorageError(f"store {base!r} exists and is not a directory; pass a directory (new or a store)")
        return
    parent = os.path.dirname(base)
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise StorageError(f"cannot create store directory {base!r}: {parent!r} is not a writable directory")
