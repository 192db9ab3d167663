"""analysis.storage: durability, damaged parts, quarantine, schema versions and drift.

References are independent of the code under test: the parts are counted by hand, the damaged files
are made with plain file operations, fsync/rename order is observed on the real os calls, and the
bad schemas are written with pyarrow.parquet directly.
"""

from __future__ import annotations

import os
import warnings

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.db import connect
from analysis.storage import PartSchemaError, SchemaValidationError, UnreadablePartWarning
from pipelines.commands_store import store_check
from pipelines.store import Store

RUN = "20250101T120000Z-abcdef"


def trial(i: int, *, decision: str = "airplane") -> dict:
    return {"source": "texprobe", "observer": "m", "observer_kind": "model", "image": f"cat{i}-airplane1.png",
            "image_id": f"{i:064x}", "dataset": "d", "shape_category": "cat", "texture_category": "airplane",
            "conflict": True, "decision": decision, "weights_tag": "w", "weights_sha256": "a" * 64}


def _store_with_parts(tmp_path, n_parts: int = 3) -> Store:
    store = Store(tmp_path / "st")
    for p in range(n_parts):
        store.write_table("trials", RUN, [trial(10 * p + k) for k in range(2)], part=f"u{p}")
    return store


def _damage(store: Store) -> tuple[str, str]:
    """Make one zero-byte part and one truncated copy of a good part (as a power loss would)."""
    d = store.table_dir("trials", RUN)
    zero = f"{d}/zero.parquet"
    open(zero, "wb").close()
    good = open(f"{d}/u0.parquet", "rb").read()
    trunc = f"{d}/trunc.parquet"
    with open(trunc, "wb") as f:
        f.write(good[: len(good) // 2])
    return zero, trunc


def test_damaged_parts_are_skipped_with_a_warning_naming_each(tmp_path):
    store = _store_with_parts(tmp_path)
    zero, trunc = _damage(store)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        con = connect(store.root)
        n = con.execute("SELECT count(*) FROM trials").fetchone()[0]
    assert n == 6  # 3 good parts x 2 rows, counted by hand
    text = " ".join(str(w.message) for w in caught if issubclass(w.category, UnreadablePartWarning))
    assert zero in text and trunc in text
    with pytest.warns(UnreadablePartWarning, match="zero.parquet"):
        assert store.read_table("trials").num_rows == 6


def test_store_check_lists_then_quarantines_without_deleting(tmp_path):
    store = _store_with_parts(tmp_path)
    zero, trunc = _damage(store)
    trunc_bytes = open(trunc, "rb").read()
    (tmp_path / "st" / "runs").mkdir(exist_ok=True)
    (tmp_path / "st" / "runs" / "broken.json").write_text("{not json")
    lines: list[str] = []
    assert store_check(store=store.root, echo=lines.append) == 1
    listed = "\n".join(lines)
    rel_zero = f"tables/trials/run_id={RUN}/zero.parquet"
    rel_trunc = f"tables/trials/run_id={RUN}/trunc.parquet"
    assert rel_zero in listed and rel_trunc in listed and "runs/broken.json" in listed
    assert "u0.parquet" not in listed and os.path.exists(zero)  # listing moves nothing
    lines.clear()
    assert store_check(store=store.root, quarantine=True, echo=lines.append) == 0
    q = tmp_path / "st" / "quarantine"
    assert (q / rel_zero).stat().st_size == 0
    assert (q / rel_trunc).read_bytes() == trunc_bytes  # kept byte for byte
    assert (q / "runs" / "broken.json").read_text() == "{not json"
    assert not os.path.exists(zero) and not os.path.exists(trunc)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no more warnings: the views see only good parts
        assert connect(store.root).execute("SELECT count(*) FROM trials").fetchone()[0] == 6
    assert store_check(store=store.root, echo=lines.append) == 0


def test_writes_fsync_file_then_rename_then_fsync_directory(tmp_path, monkeypatch):
    store = Store(tmp_path / "st")
    store.write_table("trials", RUN, [trial(0)], part="warm")  # create the directories first
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.fspath(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    path = store.write_table("trials", RUN, [trial(1)], part="u1")
    directory = os.path.dirname(path)
    kinds = [(k, os.path.basename(p) if k == "fsync" and p != directory else p) for k, p in events]
    i_rep = kinds.index(("replace", path))
    assert any(k == "fsync" and p.startswith(".u1.parquet.tmp-") for k, p in kinds[:i_rep])
    assert ("fsync", directory) in kinds[i_rep + 1:]
    assert pq.read_table(path).num_rows == 1


def _write_raw_part(store: Store, name: str, table: pa.Table) -> str:
    path = f"{store.table_dir('trials', RUN)}/{name}.parquet"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(table, path)
    return path


def test_schema_drift_in_a_part_is_a_loud_named_error(tmp_path):
    store = _store_with_parts(tmp_path, n_parts=1)
    good = pq.read_table(f"{store.table_dir('trials', RUN)}/u0.parquet")
    i = good.schema.get_field_index("shape_rank")
    drifted = good.set_column(i, "shape_rank", pa.array(["2", "3"], pa.string()))
    path = _write_raw_part(store, "drift", drifted)
    with pytest.raises(PartSchemaError, match="shape_rank") as info:
        connect(store.root)
    assert path in str(info.value) and "string" in str(info.value)
    os.remove(path)
    renamed = good.rename_columns(["decision_v2" if c == "decision" else c for c in good.column_names])
    path = _write_raw_part(store, "renamed", renamed)
    with pytest.raises(PartSchemaError, match="decision_v2"):
        connect(store.root)


def test_writer_validates_rows_with_a_named_error_and_writes_nothing(tmp_path):
    store = Store(tmp_path / "st")
    with pytest.raises(SchemaValidationError, match="shape_rank"):
        store.write_table("trials", RUN, [{**trial(0), "shape_rank": "second"}], part="u0")
    with pytest.raises(SchemaValidationError, match="not in the schema"):
        store.write_table("trials", RUN, [{**trial(0), "decison": "cat"}], part="u0")
    assert not os.path.exists(store.table_dir("trials", RUN) + "/u0.parquet")


def test_parts_carry_table_and_schema_version(tmp_path):
    from analysis.storage import SCHEMA_VERSIONS

    store = Store(tmp_path / "st")
    path = store.write_table("trials", RUN, [trial(0)], part="u0")
    meta = pq.read_schema(path).metadata
    assert meta[b"texprobe.table"] == b"trials"
    assert int(meta[b"texprobe.schema_version"]) == SCHEMA_VERSIONS["trials"] >= 1
    newer = pq.read_table(path).replace_schema_metadata({**meta, b"texprobe.schema_version": b"999"})
    _write_raw_part(store, "future", newer)
    with pytest.raises(PartSchemaError, match="schema version 999"):
        store.read_table("trials")


def test_older_part_without_a_new_nullable_column_reads_as_null(tmp_path):
    store = _store_with_parts(tmp_path, n_parts=1)
    old = pq.read_table(f"{store.table_dir('trials', RUN)}/u0.parquet").drop_columns(["rt"])
    _write_raw_part(store, "old", old)
    con = connect(store.root)
    assert con.execute("SELECT count(*), count(rt) FROM trials").fetchone() == (4, 0)


def test_store_check_finds_every_damaged_data_page_that_changes_the_data(tmp_path):
    """Issue 23: a part whose footer is intact but whose data pages are damaged must not pass `store check`
    (a check that reads only the footer would accept it). One byte flipped at several places of every
    column chunk: either the check reports the part, or the bytes it hit do not change a single value
    (page-header fields such as statistics) - checked by reading the damaged file and comparing with the
    original rows. Without page checksums 14 of 56 such flips changed values silently."""
    import io

    store = Store(tmp_path / "st")
    store.write_table("trials", RUN, [trial(k, decision=("cat", "airplane", "dog")[k % 3]) for k in range(200)],
                      part="u0")
    path = f"{store.table_dir('trials', RUN)}/u0.parquet"
    good = open(path, "rb").read()
    original = pq.read_table(io.BytesIO(good))
    meta = pq.read_metadata(io.BytesIO(good))
    footer_start = len(good) - 8 - meta.serialized_size
    detected = 0
    for ci in range(meta.num_columns):
        chunk = meta.row_group(0).column(ci)
        start = chunk.dictionary_page_offset or chunk.data_page_offset
        for frac in (0.5, 0.75, 0.95):
            offset = start + int(chunk.total_compressed_size * frac)
            assert offset < footer_start  # data pages only: the footer stays intact
            damaged = bytearray(good)
            damaged[offset] ^= 0xFF
            with open(path, "wb") as f:
                f.write(damaged)
            lines: list[str] = []
            if store_check(store=store.root, echo=lines.append) == 1:
                assert any("u0.parquet" in line for line in lines)
                detected += 1
                continue
            try:
                unchanged = pq.read_table(io.BytesIO(bytes(damaged))).equals(original)
            except (OSError, pa.ArrowException):
                unchanged = False
            assert unchanged, f"byte {offset} of column {chunk.path_in_schema}: values changed, store check passed"
    assert detected >= meta.num_columns  # most flips are found
    with open(path, "wb") as f:
        f.write(good)
    assert store_check(store=store.root, echo=lambda _: None) == 0


def test_small_unit_parts_are_snappy_and_large_float_lists_zstd(tmp_path):
    """A 64-row trials part (the trials schema has a float-list column, probs16) is written with snappy,
    which costs a third of zstd's time per part; a part holding Grams' worth of float lists stays zstd."""
    store = Store(tmp_path / "st")
    trials = store.write_table("trials", RUN, [trial(k) for k in range(64)], part="u0")
    with_probs = store.write_table("trials", RUN, [dict(trial(k), probs16=[1 / 16] * 16) for k in range(64)],
                                   part="u1")
    grams = store.write_table("grams", RUN, [{"image_id": f"{k:064x}", "backbone": "vgg19", "layer": "conv3_1",
                                              "channels": 256, "gram": [0.5] * 32896} for k in range(4)], part="u2")

    def codecs(path: str) -> set[str]:
        meta = pq.ParquetFile(path).metadata
        return {meta.row_group(0).column(c).compression for c in range(meta.num_columns)}

    assert codecs(trials) == codecs(with_probs) == {"SNAPPY"}
    assert codecs(grams) == {"ZSTD"}
