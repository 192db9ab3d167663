"""The rows of an image manifest, CSV or Parquet, streamed: ``(where, row)`` pairs for
:func:`pipelines.imagesets.iter_manifest`, ``where`` naming the file and the line (CSV) or row (Parquet).

Parquet manifests suit datasets of millions of images (a Stylized-ImageNet listing is a few MB of
Parquet); they are read by record batches (pyarrow), so memory stays bounded like the CSV reader's.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

__all__ = ["MANIFEST_SUFFIXES", "ManifestReadError", "manifest_rows"]

#: File suffixes read as manifests (any case).
MANIFEST_SUFFIXES = (".csv", ".parquet")
_BATCH_ROWS = 65_536


class ManifestReadError(OSError):
    """The manifest file cannot be opened or is not valid CSV/Parquet."""


def manifest_rows(path: Path, required: tuple[str, ...]) -> tuple[list[str], Iterator[tuple[str, dict]]]:
    """``(header, rows)``: the column names (checked by the caller against ``required``) and the rows as
    dicts of strings (None for empty / null cells)."""
    if path.suffix.lower() == ".parquet":
        return _parquet(path, required)
    return _csv(path)


def _csv(path: Path) -> tuple[list[str], Iterator[tuple[str, dict]]]:
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ManifestReadError(exc.strerror or str(exc)) from exc
    reader = csv.DictReader(handle)
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header

    def rows() -> Iterator[tuple[str, dict]]:
        with handle:
            for row in reader:
                yield f"manifest {str(path)!r}, line {reader.line_num}", row

    return header, rows()


def _parquet(path: Path, required: tuple[str, ...]) -> tuple[list[str], Iterator[tuple[str, dict]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise ManifestReadError(f"not a readable Parquet file ({exc})") from exc
    header = list(source.schema_arrow.names)
    wanted = [c for c in ("path", "shape_category", "texture_category", "dataset") if c in header]

    def rows() -> Iterator[tuple[str, dict]]:
        n = 0
        for batch in source.iter_batches(batch_size=_BATCH_ROWS, columns=wanted):
            columns = {name: batch.column(name).cast(pa.string()).to_pylist() for name in wanted}
            for i in range(batch.num_rows):
                n += 1
                yield f"manifest {str(path)!r}, row {n}", {name: values[i] for name, values in columns.items()}

    return header, rows()
