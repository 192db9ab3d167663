"""analysis.storage: the one owner of the texprobe store layout (pyarrow only; no torch, no DuckDB).

:func:`open_location` turns a path or URI into a :class:`StoreLocation` that knows every path;
:mod:`~analysis.storage.files` writes durably; :mod:`~analysis.storage.tables` lists parts, reads
footers and exposes a table as a pyarrow dataset (skipping unreadable parts with a warning);
:mod:`~analysis.storage.validate` checks rows at write time; :mod:`~analysis.storage.check` finds and
quarantines damaged files; :mod:`~analysis.storage.compaction` folds a run's unit parts into a few large
files and writes the part index that :mod:`~analysis.storage.run_parts` reads.
"""

from __future__ import annotations

from analysis.storage.check import DamagedFile, find_damaged, quarantine
from analysis.storage.compaction import CompactionRefused, CompactionReport, compact_run, write_part_index
from analysis.storage.errors import (
    PartSchemaError,
    SchemaValidationError,
    StorageError,
    UnreadablePartWarning,
)
from analysis.storage.layout import StoreLocation, check_name, is_uri, open_location
from analysis.storage.tables import (
    SCHEMA_VERSIONS,
    PartFooter,
    PartInfo,
    check_part_schemas,
    encode_part,
    list_parts,
    list_table_runs,
    parts_fingerprint,
    read_footers,
    readable_parts,
    schema_problems,
    table_dataset,
    table_schema,
)
from analysis.storage.validate import conform_table

__all__ = [
    "CompactionRefused", "CompactionReport", "compact_run", "write_part_index",
    "DamagedFile", "PartFooter", "PartInfo", "PartSchemaError", "SCHEMA_VERSIONS",
    "SchemaValidationError", "StorageError", "StoreLocation", "UnreadablePartWarning",
    "check_name", "check_part_schemas", "conform_table", "encode_part", "find_damaged", "is_uri",
    "list_parts", "list_table_runs", "open_location", "parts_fingerprint", "quarantine", "read_footers", "readable_parts",
    "schema_problems", "table_dataset", "table_schema",
]
