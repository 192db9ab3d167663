"""The texprobe Parquet store for writers: a thin layer over :mod:`analysis.storage`.

:mod:`analysis.storage` owns the layout (``tables/<table>/run_id=<id>/<part>.parquet``,
``runs/<id>.json``, ``images/<sha256>.png``, ``quarantine/``), durable writes (temporary file, fsync,
rename, fsync of the directory on local stores; one PUT on object stores), schema versions and
write-time validation. This module adds the writer-facing :class:`Store`; run manifests and their
life cycle are in :mod:`pipelines.manifests`. Loads without torch.

A store root is a local path or a URI (``file:///abs``, ``s3://bucket/prefix?endpoint_override=
HOST:PORT&scheme=http`` with the standard ``AWS_*`` variables). Part names must be deterministic per
work unit (:func:`part_name`), so a retried unit replaces its own file instead of adding one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads

from analysis import storage
from analysis.schemas import SETTLE_TABLES
from analysis.storage import StorageError, check_name, conform_table, files
from pipelines.manifests import LEGACY_STATUSES, RUN_STATUSES, new_manifest, new_run_id, software_versions, utc_now_iso

__all__ = [
    "RUN_STATUSES", "Store", "StoreError", "conform_table", "new_manifest", "new_run_id",
    "part_name", "software_versions", "utc_now_iso",
]

#: The store's error base class (an alias: :class:`analysis.storage.StorageError`).
StoreError = StorageError
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def part_name(*keys: Any) -> str:
    """A short, stable part name for a work unit: ``unit-<16 hex>`` of the sha256 of ``keys``
    serialised as canonical JSON (same keys, same name, in every process and run)."""
    if not keys:
        raise StoreError("part_name() needs at least one key identifying the work unit")
    payload = json.dumps(list(keys), sort_keys=True, separators=(",", ":"), default=str)
    return "unit-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


class Store:
    """A texprobe store rooted at a local directory or a URI.

    Args:
        root: a local path (created if missing) or a URI (``s3://``, ``gs://``, ``file://``).
        schemas: table name -> Arrow schema; defaults to :data:`analysis.schemas.TABLES`.

    Attributes: ``root`` (absolute path, or the URI as given), ``fs`` (the pyarrow file system),
    ``location`` (the :class:`analysis.storage.StoreLocation` that knows every path).
    """

    def __init__(self, root: str | os.PathLike[str], *,
                 schemas: Mapping[str, pa.Schema] | None = None) -> None:
        self.location = storage.open_location(root)
        self.root: str = self.location.root
        self.fs = self.location.fs
        self._schemas = schemas

    def __repr__(self) -> str:
        return f"Store(root={self.root!r}, fs={self.fs.type_name!r})"

    @property
    def schemas(self) -> Mapping[str, pa.Schema]:
        """Table name -> Arrow schema the store validates against."""
        if self._schemas is None:
            from analysis.schemas import TABLES

            self._schemas = TABLES
        return self._schemas

    def _schema(self, table: str) -> pa.Schema:
        check_name(table, what="table name")
        return storage.table_schema(table, self.schemas)

    # ---------------------------------------------------------------- tables
    def table_dir(self, table: str, run_id: str) -> str:
        """The partition directory of one run of one table (a path on :attr:`fs`)."""
        return self.location.run_dir(table, run_id)

    def write_table(self, table: str, run_id: str,
                    data: pa.Table | pa.RecordBatch | Sequence[Mapping[str, Any]], *, part: str,
                    defer_sync: set[str] | None = None, units: Sequence[str] | None = None) -> str:
        """Validate ``data`` against the table's schema and write it as one part, durably.

        A part that exists already is replaced (a retried work unit). Returns the path on
        :attr:`fs`. Raises :class:`analysis.storage.SchemaValidationError` naming the column.
        ``defer_sync``: the part's folder is added to this set instead of being synced now (the caller
        then calls :meth:`sync_folders`; the file itself is always synced before it is renamed).
        ``units``: the work units whose rows a call part holds (recorded in its footer; see
        :func:`analysis.storage.run_parts.part_units`).
        """
        schema = self._schema(table)
        path = self.location.part_path(table, run_id, part)
        conformed = conform_table(table, data, schema, run_id=run_id)
        files.write_bytes(self.location, path, storage.encode_part(table, conformed, units=units),
                          sync_dir=defer_sync is None)
        if defer_sync is not None and self.location.local:
            defer_sync.add(path.rsplit("/", 1)[0])
        return path

    def sync_folders(self, folders: set[str]) -> None:
        """fsync the folders whose new entries :meth:`write_table` deferred (local stores; object stores
        have nothing to sync)."""
        files.sync_dirs(self.location, sorted(folders))

    def has_part(self, table: str, run_id: str, part: str) -> bool:
        """Whether ``part`` of ``run_id`` has been written to ``table`` (as its own file or folded into the
        run's compacted files)."""
        self.location.part_path(table, run_id, part)  # checks the names
        return part in self.done_units(table, run_id)

    def parts(self, table: str, run_id: str) -> set[str]:
        """The names of the parts written to ``table`` by ``run_id``."""
        return {p.name for p in storage.list_parts(self.location, table, run_id=run_id)}

    def done_units(self, table: str, run_id: str) -> set[str]:
        """The work units of ``run_id`` whose rows of ``table`` are in the store (what ``--resume`` skips).

        The one question the driver asks to know which units are done: the unit parts present, the units
        the call parts present hold (their footers say which), and the units a compaction folded into the
        run's compacted files (its record says which).
        """
        from analysis.storage.run_parts import COMPACTED_PREFIX, part_units, read_run_folder

        directory = self.location.run_dir(table, run_id)
        folder = read_run_folder(self.location, directory, with_index=False)
        units = {u for item in folder.visible if not item.name.startswith(COMPACTED_PREFIX)
                 for u in part_units(self.location, directory, item.name)}
        return units | folder.folded_units

    def table_runs(self, table: str) -> list[str]:
        """Run ids that have written at least one part of ``table`` (sorted as strings)."""
        return storage.list_table_runs(self.location, table)

    def footers(self, table: str, run_id: str | None = None) -> list[storage.PartFooter]:
        """The footers (schema, row count) of ``table``'s readable parts; unreadable ones warn."""
        parts = storage.list_parts(self.location, table, run_id=run_id)
        return storage.tables.warn_unreadable(storage.read_footers(self.location, parts))

    def dataset(self, table: str, *, run_id: str | None = None, check_schema: bool = True) -> pads.Dataset:
        """``table`` (one run or all) as a pyarrow dataset; see :func:`analysis.storage.table_dataset`."""
        return storage.table_dataset(self.location, table, run_id=run_id,
                                     schema=self._schema(table), check_schema=check_schema)

    def read_table(self, table: str, run_id: str | None = None) -> pa.Table:
        """All rows of ``table`` (of one run, or of every run) in the table's schema; unreadable
        parts are skipped with a warning naming them; no parts -> an empty table."""
        return self.dataset(table, run_id=run_id).to_table()

    # ---------------------------------------------------------------- images
    def write_image(self, png_bytes: bytes) -> str:
        """Store a PNG under ``images/<sha256>.png`` (durable, idempotent); returns that path."""
        if not isinstance(png_bytes, (bytes, bytearray, memoryview)):
            raise StoreError(f"write_image expects PNG bytes, got {type(png_bytes).__name__}")
        payload = bytes(png_bytes)
        if not payload.startswith(_PNG_SIGNATURE):
            raise StoreError(
                "write_image expects PNG-encoded bytes (no PNG signature found); encode the image "
                "with PIL.Image.save(buf, format='PNG') first"
            )
        rel = self.location.image_rel(hashlib.sha256(payload).hexdigest())
        path = self.location.path(rel)
        if not files.exists(self.location, path):
            files.write_bytes(self.location, path, payload)
        return rel

    def image_path(self, rel: str) -> str:
        """The full path (local) or URI (object store) of a path relative to the root."""
        return self.location.uri(rel)

    # ---------------------------------------------------------------- manifests and plans
    def write_manifest(self, run_id: str, manifest: Mapping[str, Any]) -> None:
        """Write (or overwrite) ``runs/<run_id>.json`` durably; see :mod:`pipelines.manifests`."""
        if not isinstance(manifest, Mapping):
            raise StoreError(f"a manifest must be a dict, got {type(manifest).__name__}")
        body = dict(manifest)
        if body.setdefault("run_id", run_id) != run_id:
            raise StoreError(f"manifest run_id {body['run_id']!r} does not match the run {run_id!r} "
                             "it is written for")
        status = body.get("status")
        if status is not None and status not in RUN_STATUSES + LEGACY_STATUSES:
            raise StoreError(f"manifest status {status!r} is not one of {RUN_STATUSES}")
        self._write_json(self.location.manifest_path(run_id), body, what=f"manifest of run {run_id!r}")

    def _write_json(self, path: str, body: Any, *, what: str) -> None:
        try:
            text = json.dumps(body, indent=2, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"{what} is not JSON-serialisable: {exc}") from exc
        files.write_bytes(self.location, path, (text + "\n").encode("utf-8"))

    def has_run(self, run_id: str) -> bool:
        """Whether ``run_id`` has a manifest."""
        return files.exists(self.location, self.location.manifest_path(run_id))

    def read_manifest(self, run_id: str) -> dict[str, Any]:
        """The manifest of ``run_id``; StoreError if the run has none or it is not JSON."""
        path = self.location.manifest_path(run_id)
        try:
            body = json.loads(files.read_bytes(self.location, path).decode("utf-8"))
        except FileNotFoundError:
            raise StoreError(f"no manifest for run {run_id!r} in store {self.root!r}; "
                             f"known runs: {self.run_ids()[-5:]} (last 5)") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"manifest {path} is damaged ({exc}); run `texprobe store check`") from exc
        if not isinstance(body, dict):
            raise StoreError(f"manifest {path} is not a JSON object; run `texprobe store check`")
        return body

    def update_manifest(self, run_id: str, **changes: Any) -> dict[str, Any]:
        """Read, update with ``changes`` and rewrite a manifest; ``counts`` is merged. A terminal
        status stamps ``finished_at`` unless given."""
        manifest = self.read_manifest(run_id)
        counts = changes.pop("counts", None)
        manifest.update(changes)
        if counts:
            manifest["counts"] = {**manifest.get("counts", {}), **counts}
        if changes.get("status") not in (None, "running") and not changes.get("finished_at"):
            manifest["finished_at"] = utc_now_iso()
        self.write_manifest(run_id, manifest)
        return manifest

    def run_ids(self) -> list[str]:
        """Ids of the runs that have a manifest, sorted as strings (not by time)."""
        names = files.list_files(self.location, self.location.runs_dir(), ".json")
        return [n[: -len(".json")] for n in names]

    def list_runs(self) -> list[str]:
        """Ids of the runs that have a manifest, oldest first by manifest ``started_at``."""
        from pipelines.manifests import list_runs

        return [s.run_id for s in list_runs(self)]

    def write_plan(self, run_id: str, units: Iterable[Any]) -> tuple[int, int]:
        """Store the run's planned units (``runs/plans/<run_id>.jsonl.gz``, one JSON value per line),
        streamed: ``units`` may be a generator of a million units, memory holds one chunk of lines.
        Returns ``(units, items)`` (items: the lengths of the units' ``items`` lists, when they have one).
        Nothing is stored when ``units`` raises."""
        import zlib

        counts = [0, 0]

        def chunks() -> Iterator[bytes]:
            packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip framing, fastest level: plans are text
            lines: list[str] = []
            for unit in units:
                counts[0] += 1
                counts[1] += len(unit.get("items", ())) if isinstance(unit, dict) else 0
                try:
                    lines.append(json.dumps(unit, sort_keys=True, allow_nan=False))
                except (TypeError, ValueError) as exc:
                    raise StoreError(f"plan of run {run_id!r}: a unit is not JSON-serialisable: {exc}") from exc
                if len(lines) >= 256:
                    yield packer.compress(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
                    lines = []
            if lines:
                yield packer.compress(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
            yield packer.flush()

        files.write_stream(self.location, self.location.plan_lines_path(run_id), chunks())
        return counts[0], counts[1]

    def iter_plan(self, run_id: str) -> Iterator[Any] | None:
        """The run's planned units, streamed from the store (None if it stored no plan)."""
        import gzip

        path = self.location.plan_lines_path(run_id)
        if files.exists(self.location, path):
            def lines() -> Iterator[Any]:
                with self.fs.open_input_stream(path, compression=None) as raw, gzip.open(raw, "rt", encoding="utf-8",
                                                                       errors="surrogateescape") as text:
                    for line in text:
                        if line.strip():
                            yield json.loads(line)
            return lines()
        try:
            return iter(json.loads(files.read_bytes(self.location, self.location.plan_path(run_id))))
        except FileNotFoundError:
            return None

    def remove_plan(self, run_id: str) -> None:
        """Delete the stored plan of a run that never started (no manifest refers to it)."""
        for path in (self.location.plan_lines_path(run_id), self.location.plan_path(run_id)):
            try:
                self.fs.delete_file(path)
            except (FileNotFoundError, OSError):
                pass

    def read_plan(self, run_id: str) -> list[Any] | None:
        """The run's planned units as a list, or None if it stored none (:meth:`iter_plan` streams them)."""
        units = self.iter_plan(run_id)
        return None if units is None else list(units)

    # ---------------------------------------------------------------- layout at scale
    def compact(self, run_id: str, *, tables: Sequence[str] | None = None, only: Sequence[str] | None = None,
                on_step: Callable[[str], None] | None = None) -> list[storage.CompactionReport]:
        """Compact ``run_id``'s tables (all it wrote, or ``tables``); see :mod:`analysis.storage.compaction`.
        The errors parts of calls the manifest lists as missing are left out (a resume replaces them);
        ``only``: fold just these units' parts (a running run's done units)."""
        try:
            manifest = {} if only is not None else self.read_manifest(run_id)
            # the errors parts of the calls still missing (older manifests: of the units)
            missing = manifest.get("missing_parts", manifest.get("missing_units")) or []
        except Exception:  # noqa: BLE001 - no readable manifest: compact everything
            missing = []
        reports = []
        for table in tables or [t for t in self.schemas if run_id in self.table_runs(t) and t not in SETTLE_TABLES]:
            if run_id not in self.table_runs(table):
                continue
            reports.append(storage.compact_run(self.location, table, run_id, schema=self._schema(table),
                                               exclude=missing if table == "errors" else (), only=only,
                                               on_step=on_step))
        return reports

    def index_parts(self, run_id: str, tables: Sequence[str]) -> None:
        """Record the part index of ``run_id``'s ``tables`` (readers then skip opening their footers)."""
        for table in tables:
            if run_id in self.table_runs(table):
                storage.write_part_index(self.location, table, run_id)

    # ---------------------------------------------------------------- integrity
    def check(self, *, quarantine: bool = False) -> tuple[list[storage.DamagedFile], list[str]]:
        """Damaged parts and manifests, and (with ``quarantine``) where they were moved."""
        damaged = storage.find_damaged(self.location, schemas=self.schemas)
        moved = storage.quarantine(self.location, damaged) if quarantine else []
        return damaged, moved
