"""DuckDB over a texprobe store: one view per table, the run manifests, and the canned views.

Layout (ARCHITECTURE.md)::

    <store>/tables/<table>/run_id=<run_id>/<name>.parquet
    <store>/runs/<run_id>.json

The Parquet files carry their ``run_id`` column themselves, so the views read them with
``hive_partitioning=false`` and ``union_by_name=true`` (older files may lack newer columns). Every
part's footer is checked first (:func:`analysis.parts.check_parts`): an unreadable part is left out
with a warning naming it, a schema mismatch is a :class:`~analysis.errors.SchemaMismatchError`. Every
table in :data:`analysis.schemas.TABLES` gets a view, also when it has no files yet: then the view is
empty but has the schema's columns. The canned views come from ``analysis/sql/*.sql``, executed in
file-name order (numeric prefixes; see ``analysis/sql/00_macros.sql`` for the numbering).
"""

from __future__ import annotations

import glob
import importlib.resources
import json
import os
import warnings
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads

from analysis import storage
from analysis.bootstrap import register as register_bootstrap
from analysis.crossed_bootstrap import register as register_crossed_bootstrap
from analysis.errors import StoreNotFoundError, ViewDefinitionError
from analysis.schemas import TABLES

__all__ = ["connect", "table_glob", "canned_sql_files", "RUNS_COLUMNS"]

#: Columns of the ``runs`` view (JSON-valued ones keep the manifest's nested objects as JSON).
RUNS_COLUMNS: dict[str, str] = {
    "run_id": "VARCHAR",
    "command": "VARCHAR",
    "status": "VARCHAR",
    "started_at": "TIMESTAMPTZ",
    "finished_at": "TIMESTAMPTZ",
    "config": "JSON",
    "versions": "JSON",
    "counts": "JSON",
    "manifest": "JSON",
    "manifest_file": "VARCHAR",
}


def _is_uri(store: str) -> bool:
    return "://" in store


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_glob(store: str | os.PathLike, table: str) -> str:
    """The glob of ``table``'s Parquet files in ``store``."""
    return f"{os.fspath(store).rstrip('/')}/tables/{table}/run_id=*/*.parquet"


def _has_files(pattern: str, store: str) -> bool:
    if _is_uri(store):
        return True  # object stores: let DuckDB list them
    return any(True for _ in glob.iglob(pattern))


def _duckdb_types(con: duckdb.DuckDBPyConnection, schema: pa.Schema) -> list[tuple[str, str]]:
    """(column, DuckDB type) for a pyarrow schema, mapped by DuckDB itself."""
    name = "__texprobe_schema_probe"
    con.register(name, schema.empty_table())
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {name}").fetchall()
    finally:
        con.unregister(name)
    return [(row[0], row[1]) for row in rows]


def _empty_select(columns: list[tuple[str, str]]) -> str:
    cols = ", ".join(f"CAST(NULL AS {type_}) AS {_ident(col)}" for col, type_ in columns)
    return f"SELECT {cols} WHERE false"


def _create_table_view(con: duckdb.DuckDBPyConnection, store: str, table: str,
                       schema: pa.Schema, *, run_id: str | None = None) -> list[storage.PartFooter]:
    """View ``table`` over the parts :mod:`analysis.storage` lists as readable (unreadable ones are
    skipped with a warning naming them; a part whose footer schema disagrees raises PartSchemaError), of
    one run or of all; the footers it reads."""
    loc = storage.open_location(store)
    footers = storage.readable_parts(loc, table, schema=schema, run_id=run_id)
    _create_parts_view(con, loc, table, footers, schema)
    return footers


def _create_parts_view(con: duckdb.DuckDBPyConnection, loc: storage.StoreLocation, name: str,
                       footers: list[storage.PartFooter], schema: pa.Schema) -> None:
    """View ``name`` over the parts ``footers`` (of a table with ``schema``). Local stores: DuckDB's read_parquet over
    exactly those files (fastest); object stores: a pyarrow dataset DuckDB scans, so no DuckDB extension
    (httpfs) is needed."""
    if not loc.local:
        registered = f"__texprobe_table_{name}"
        paths = [f.part.path for f in footers]
        dataset = (pads.dataset(paths, schema=schema, format="parquet", filesystem=loc.fs) if paths
                   else pads.dataset(schema.empty_table()))
        con.register(registered, dataset)
        con.execute(f"CREATE OR REPLACE VIEW {_ident(name)} AS SELECT * FROM {_ident(registered)}")
        return
    empty = _empty_select(_duckdb_types(con, schema))
    # Parts with exactly the schema's columns (types already checked) need no union_by_name, which
    # would re-read every file's schema at each bind; older parts lacking a newer nullable column do.
    full = [f.part.path for f in footers if f.schema.names == schema.names]
    older = [f.part.path for f in footers if f.schema.names != schema.names]
    # The file lists are DuckDB variables, not SQL literals: a view over 20,000 parts then binds in
    # microseconds instead of re-parsing megabytes of paths each time a canned view refers to it.
    selects = []
    for kind, paths, extra in (("full", full, ""), ("older", older, ", union_by_name = true")):
        if paths:
            variable = f"__texprobe_{name}_{kind}_files"
            con.execute(f"SET VARIABLE {variable} = $files", {"files": paths})
            selects.append(f"SELECT * FROM read_parquet(getvariable('{variable}'), hive_partitioning = false{extra})")
    # UNION ALL BY NAME with the typed empty select: every schema column exists, typed.
    body = " UNION ALL BY NAME ".join([*selects, empty])
    con.execute(f"CREATE OR REPLACE VIEW {_ident(name)} AS {body}")


def _create_summary_views(con: duckdb.DuckDBPyConnection, store: str, trials: list[storage.PartFooter], *,
                          summaries: bool) -> list[str]:
    """Which runs' ``trial_counts`` still describe their trials parts (same parts fingerprint), as the
    variable ``__texprobe_summarised_runs``, and the view ``trials_unsummarised`` over the other runs'
    trials parts: the shape-bias views count the first from their summaries and only the second from
    the trials (:mod:`analysis.trial_counts`). ``summaries=False``: no run is summarised."""
    valid: list[str] = []
    if summaries:
        by_run: dict[str, list[storage.PartFooter]] = {}
        for footer in trials:
            by_run.setdefault(footer.part.run_id, []).append(footer)
        recorded = con.execute("SELECT run_id, min(parts_fingerprint), max(parts_fingerprint) FROM trial_counts "
                               "GROUP BY run_id").fetchall()
        valid = sorted(run for run, low, high in recorded
                       if low == high and run in by_run and storage.parts_fingerprint(by_run[run]) == low)
    con.execute("SET VARIABLE __texprobe_summarised_runs = $runs::VARCHAR[]", {"runs": valid})
    summarised = set(valid)
    rest = [f for f in trials if f.part.run_id not in summarised]
    _create_parts_view(con, storage.open_location(store), "trials_unsummarised", rest, TABLES["trials"])
    return valid


def _readable_manifests(pattern: str) -> list[str]:
    """The manifests that parse as JSON objects; the others are skipped with a warning naming them."""
    good = []
    for path in sorted(glob.iglob(pattern)):
        try:
            with open(path, encoding="utf-8") as handle:
                ok = isinstance(json.load(handle), dict)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            ok, reason = False, str(exc)
        else:
            reason = "not a JSON object"
        if ok:
            good.append(path)
        else:
            warnings.warn(f"skipping unreadable run manifest {path}: {reason}; its runs count as "
                          "older than every run with a manifest", DamagedPartWarning, stacklevel=4)
    return good


def _create_runs_view(con: duckdb.DuckDBPyConnection, store: str) -> None:
    """View ``runs`` over the manifests, read through :mod:`analysis.storage` (damaged ones warn)."""
    loc = storage.open_location(store)
    rows: dict[str, list] = {"manifest_text": [], "manifest_file": []}
    for name in storage.files.list_files(loc, loc.runs_dir(), ".json"):
        path = f"{loc.runs_dir()}/{name}"
        try:
            text = storage.files.read_bytes(loc, path).decode("utf-8")
            if not isinstance(json.loads(text), dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            warnings.warn(f"skipping unreadable manifest {path} ({exc}); run `texprobe store check`",
                          storage.UnreadablePartWarning, stacklevel=2)
            continue
        rows["manifest_text"].append(text)
        rows["manifest_file"].append(loc.uri(loc.relative(path)))
    con.register("__texprobe_manifests", pa.table(rows, schema=pa.schema(
        [("manifest_text", pa.string()), ("manifest_file", pa.string())])))
    con.execute("""
        CREATE OR REPLACE VIEW runs AS
        WITH m AS (SELECT CAST(manifest_text AS JSON) AS json, manifest_file FROM __texprobe_manifests)
        SELECT
            json ->> 'run_id' AS run_id,
            json ->> 'command' AS command,
            json ->> 'status' AS status,
            TRY_CAST(json ->> 'started_at' AS TIMESTAMPTZ) AS started_at,
            TRY_CAST(json ->> 'finished_at' AS TIMESTAMPTZ) AS finished_at,
            json -> 'config' AS config,
            json -> 'versions' AS versions,
            json -> 'counts' AS counts,
            json AS manifest,
            manifest_file
        FROM m
    """)


def canned_sql_files() -> list[tuple[str, str]]:
    """(file name, SQL text) of ``analysis/sql/*.sql`` in execution order."""
    root = importlib.resources.files("analysis").joinpath("sql")
    files = sorted(
        (entry for entry in root.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [(entry.name, entry.read_text(encoding="utf-8")) for entry in files]


def connect(store: str | os.PathLike, *, read_only: bool = True, run_id: str | None = None,
            summaries: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views over ``store``.

    Views: one per table of :data:`analysis.schemas.TABLES`, ``runs`` (the manifests) and the canned
    views of ``analysis/sql`` (``shape_bias``, ``shape_bias_by_category``, ``shape_bias_by_run``, ...).
    With ``read_only=True`` (default) a missing local store is an error
    (:class:`~analysis.errors.StoreNotFoundError`); with ``read_only=False`` its ``tables/`` and
    ``runs/`` folders are created. The store's files are never written by this function. ``run_id``:
    the tables hold only that run's parts. ``summaries=False``: the views count every trial from the
    trials table, ignoring the runs' ``trial_counts`` (the result is the same; tests compare them).
    """
    store_str = os.fspath(store)
    if not _is_uri(store_str):
        root = Path(store_str)
        if read_only and not root.is_dir():
            raise StoreNotFoundError(store_str)
        if not read_only:
            (root / "tables").mkdir(parents=True, exist_ok=True)
            (root / "runs").mkdir(parents=True, exist_ok=True)
        store_str = str(root.resolve())
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET enable_progress_bar = false")  # a query over many parts would draw one on stdout
        register_bootstrap(con)
        register_crossed_bootstrap(con)
        footers = {table: _create_table_view(con, store_str, table, schema, run_id=run_id)
                   for table, schema in TABLES.items()}
        _create_summary_views(con, store_str, footers["trials"], summaries=summaries and run_id is None)
        _create_runs_view(con, store_str)
        for name, sql in canned_sql_files():
            try:
                con.execute(sql)
            except duckdb.Error as exc:
                raise ViewDefinitionError(name, exc) from exc
    except BaseException:
        con.close()
        raise
    return con
