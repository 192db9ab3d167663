"""A set of text keys that stays small in memory however many keys it holds.

The plan of a million-image run meets a million paths: keeping every one in a Python set costs the
driver ~150 bytes per key (~150 MB per million). :class:`SpillSet` keeps the first
:data:`MEMORY_KEYS` keys in a set and moves them to an on-disk SQLite table (standard library; the
B-tree answers "seen before?" in a few microseconds with a page cache of a few MB) once there are more.
Why SQLite and not a hand-written structure: it is the one disk-backed, ordered, exact set in the
standard library; a Bloom filter would drop real inputs on a false positive.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable

#: Keys held in memory before the set moves to disk.
MEMORY_KEYS = 50_000


def _blob(key: str) -> bytes:
    """The key's bytes (file names may hold undecodable bytes as surrogate escapes: kept as they are)."""
    return key.encode("utf-8", "surrogateescape")


class SpillSet:
    """``add(key) -> bool`` (True when the key is new) and ``key in s``, in bounded memory."""

    def __init__(self, *, memory_keys: int = MEMORY_KEYS) -> None:
        self.memory_keys = memory_keys
        self._keys: set[str] | None = set()
        self._db: sqlite3.Connection | None = None
        self._folder: tempfile.TemporaryDirectory | None = None
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def _spill(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="texprobe-keys-")
        self._db = sqlite3.connect(os.path.join(self._folder.name, "keys.sqlite"), isolation_level=None)
        self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-4096;"
                               "CREATE TABLE k (key BLOB PRIMARY KEY) WITHOUT ROWID; BEGIN;")
        self._db.executemany("INSERT INTO k VALUES (?)", ((_blob(k),) for k in self._keys or ()))
        self._keys = None

    def add(self, key: str) -> bool:
        """Add ``key``; True when it was not there yet."""
        if self._keys is not None:
            if key in self._keys:
                return False
            self._keys.add(key)
            self._n += 1
            if self._n > self.memory_keys:
                self._spill()
            return True
        assert self._db is not None
        new = self._db.execute("INSERT OR IGNORE INTO k VALUES (?)", (_blob(key),)).rowcount == 1
        self._n += new
        return new

    def update(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.add(key)

    def __contains__(self, key: object) -> bool:
        if self._keys is not None:
            return key in self._keys
        assert self._db is not None
        if not isinstance(key, str):
            return False
        return self._db.execute("SELECT 1 FROM k WHERE key = ?", (_blob(key),)).fetchone() is not None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        self._keys = set()
        self._n = 0

    def __enter__(self) -> "SpillSet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a generator abandoned half-way still removes its temporary folder
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

