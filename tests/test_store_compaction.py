"""Compaction and the part index (issue 19 parts 1-2): the process is SIGKILLed after every step of the
protocol, locally and on a real S3 endpoint (moto's server on localhost); every view must read exactly
what it read before, the done units must stay known, and a second compaction must finish the job. A
damaged or quarantined part stops compaction by name; a part changed after it was indexed is still
found. References are independent of the code under test: row sets and view results taken before
compaction, files listed with os / pyarrow.fs, footers counted by spying on pyarrow."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from analysis.db import connect
from analysis.storage import CompactionRefused
from pipelines.commands_store import store_check, store_compact
from pipelines.store import Store
from test_store_s3 import BUCKET, s3_endpoint, s3_env  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[1]
RUN = "20250101T120000Z-abcdef"
UNITS = [f"unit-{i:04d}" for i in range(6)]
STEPS = ["wrote", "recorded", "indexed", "removed:1", "removed:3"]
VIEWS = ["SELECT * FROM shape_bias", "SELECT * FROM shape_bias_by_category",
         "SELECT image_id, decision, run_id FROM trials ORDER BY image_id", "SELECT count(*) FROM errors"]


def trial(i: int) -> dict:
    shape, texture = ("cat", "dog") if i % 2 else ("bear", "boat")
    return {"source": "texprobe", "observer": "m", "observer_kind": "model", "image": f"{shape}{i}-{texture}{i % 3}.png",
            "image_id": f"{i:064x}", "dataset": "d", "shape_category": shape, "texture_category": texture,
            "conflict": True, "decision": (shape, texture, "knife")[i % 3], "weights_tag": "w",
            "weights_sha256": "a" * 64, "texture_source": f"{texture}{i % 3}"}


def make_store(root: str) -> Store:
    store = Store(root)
    store.write_manifest(RUN, {"run_id": RUN, "command": "classify", "status": "finished",
                               "started_at": "2025-01-01T12:00:00Z", "config": {}})
    for u, unit in enumerate(UNITS):
        store.write_table("trials", RUN, [trial(10 * u + k) for k in range(5)], part=unit)
    return store


def views(root: str) -> list:
    con = connect(root)
    try:
        return [con.execute(q).fetchall() for q in VIEWS]
    finally:
        con.close()


def files_of(store: Store) -> list[str]:
    directory = store.location.run_dir("trials", RUN)
    infos = store.fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.File)


def compact_and_die(root: str, step: str) -> subprocess.CompletedProcess:
    """Compact in a child process that SIGKILLs itself right after ``step``."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        from pipelines.store import Store
        def at(step):
            if step == {step!r}:
                os.kill(os.getpid(), signal.SIGKILL)
        Store({root!r}).compact({RUN!r}, tables=["trials"], on_step=at)
        sys.exit(5)  # never reached when the step happens
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def check_crash_at_every_step(root_for) -> None:
    for step in STEPS:
        root = root_for(step)
        store = make_store(root)
        before = views(root)
        parts_before = files_of(store)
        assert [f for f in parts_before if f.endswith(".parquet")] == [f"{u}.parquet" for u in UNITS]
        out = compact_and_die(root, step)
        assert out.returncode == -signal.SIGKILL, (step, out.stderr)
        assert views(root) == before, step  # the old parts or the compacted file, never both, never neither
        assert store.done_units("trials", RUN) == set(UNITS), step
        reports = Store(root).compact(RUN, tables=["trials"])  # the re-run finishes the job
        assert views(root) == before, step
        left = files_of(store)
        assert [f for f in left if f.endswith(".parquet")] == reports[0].files_out and len(reports[0].files_out) == 1
        assert not [f for f in left if f.startswith("unit-")], step
        assert store.done_units("trials", RUN) == set(UNITS)


def test_sigkill_at_every_compaction_step_local(tmp_path):
    check_crash_at_every_step(lambda step: str(tmp_path / step.replace(":", "-")))


def test_sigkill_at_every_compaction_step_on_s3(s3_endpoint, s3_env, request):  # noqa: F811
    base = f"s3://{BUCKET}/{request.node.name}"
    check_crash_at_every_step(
        lambda step: f"{base}-{step.replace(':', '-')}?endpoint_override={s3_endpoint}&scheme=http&region=us-east-1")


def test_compacted_file_is_sorted_and_new_parts_fold_in_on_the_next_compaction(tmp_path):
    """Recorded files are kept; a later compaction adds a file for the parts written since."""
    store = make_store(str(tmp_path / "st"))
    before = views(store.root)
    (report,) = store.compact(RUN, tables=["trials"])
    table = pq.read_table(tmp_path / "st" / "tables" / "trials" / f"run_id={RUN}" / report.files_out[0])
    keys = list(zip(table.column("observer").to_pylist(), table.column("image_id").to_pylist()))
    assert keys == sorted(keys) and report.rows == 30
    store.write_table("trials", RUN, [trial(100), trial(101)], part="unit-late")  # e.g. a resumed unit
    assert store.done_units("trials", RUN) == set(UNITS) | {"unit-late"}
    (again,) = store.compact(RUN, tables=["trials"])  # the new part is folded into a file of its own
    assert again.rows == 2 and again.parts_in == 1 and len(again.files_out) == 2 and report.files_out[0] in again.files_out
    record = json.loads((tmp_path / "st" / "tables" / "trials" / f"run_id={RUN}" / "_compaction.json").read_text())
    assert record["rows"] == 32 and record["files"] == again.files_out
    assert len(views(store.root)[2]) == 32 and views(store.root)[0] != before
    assert store.done_units("trials", RUN) == set(UNITS) | {"unit-late"}


def test_damaged_or_quarantined_part_is_refused_by_name_and_store_check_still_reports_it(tmp_path):
    store = make_store(str(tmp_path / "st"))
    victim = tmp_path / "st" / "tables" / "trials" / f"run_id={RUN}" / "unit-0003.parquet"
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 2])
    with pytest.raises(CompactionRefused, match="unit-0003.parquet"):
        store.compact(RUN, tables=["trials"])
    assert sorted(f for f in files_of(store) if f.endswith(".parquet")) == [f"{u}.parquet" for u in UNITS]
    lines: list[str] = []
    assert store_compact(store=store.root, echo=lines.append) == 1 and "unit-0003.parquet" in lines[0]
    assert store_check(store=store.root, echo=lines.append) == 1 and any("unit-0003" in line for line in lines)
    assert store_check(store=store.root, quarantine=True, echo=lambda _: None) == 0
    with pytest.raises(CompactionRefused, match="quarantined"):  # its rows would be lost for good
        store.compact(RUN, tables=["trials"])
    assert store_check(store=store.root, echo=lambda _: None) == 0
    assert (tmp_path / "st" / "quarantine" / "tables" / "trials" / f"run_id={RUN}" / "unit-0003.parquet").exists()


def _count_footer_reads(monkeypatch) -> list[str]:
    """Paths of the parts whose footer a reader opens (those the index did not describe)."""
    import analysis.storage.tables as tables

    opened: list[str] = []
    real = tables._read_footer

    def spy(loc, part):
        if part.described is None:
            opened.append(part.path)
        return real(loc, part)

    monkeypatch.setattr(tables, "_read_footer", spy)
    return opened


def test_connect_trusts_the_index_and_still_finds_parts_changed_after_indexing(tmp_path, monkeypatch):
    store = make_store(str(tmp_path / "st"))
    before = views(store.root)
    store.index_parts(RUN, ["trials"])
    opened = _count_footer_reads(monkeypatch)
    assert views(store.root) == before and opened == []  # no footer opened: the index described every part
    folder = tmp_path / "st" / "tables" / "trials" / f"run_id={RUN}"
    # replaced by another valid part (another unit's rows, same name) and truncated: both detected
    shutil.copyfile(folder / "unit-0001.parquet", folder / "unit-0000.parquet")
    truncated = folder / "unit-0002.parquet"
    truncated.write_bytes(truncated.read_bytes()[:-40])
    with pytest.warns(Warning, match="unit-0002"):
        got = views(store.root)
    ids = [r[0] for r in got[2]]
    # the replaced part's new bytes are read (unit-0001's rows twice, unit-0000's gone), the truncated one skipped
    assert len(ids) == 25 and f"{0:064x}" not in ids and ids.count(f"{10:064x}") == 2 and f"{20:064x}" not in ids
    assert sorted(set(p.rsplit("/", 1)[-1] for p in opened)) == ["unit-0000.parquet", "unit-0002.parquet"]
    assert store_check(store=store.root, echo=lambda _: None) == 1
    index = json.loads((folder / "_index.json").read_text())
    assert set(index["parts"]) == {f"{u}.parquet" for u in UNITS}


@pytest.mark.ray
def test_resume_of_a_half_compacted_run_adds_only_the_missing_units(ray_cluster, tmp_path):
    """A partial run (one unit stalls every attempt) is compacted, the compaction killed half-way; --resume
    then runs exactly the missing unit, and the finished run is compacted with every row once."""
    from ops_for_tests import StallConfig
    from pipelines.ray_runtime import Placement
    from pipelines.runner import run_operation

    root = str(tmp_path / "store")
    store = Store(root)
    config = StallConfig(items=("a", "b", "c", "d"), marker_dir=str(tmp_path), stall=("d",), stall_every_attempt=True)
    placement = Placement(cpus_per_actor=1, actors=1, unit_timeout_s=3, retries=0)
    first = run_operation("ops_for_tests:StallOp", config, store=store, placement=placement, show_progress=False)
    assert first.status == "partial"
    folder = tmp_path / "store" / "tables" / "trials" / f"run_id={first.run_id}"
    # a partial run is not compacted; its parts are indexed for the readers
    assert len(list(folder.glob("unit-*.parquet"))) == 3 and not (folder / "_compaction.json").exists()
    assert len(json.loads((folder / "_index.json").read_text())["parts"]) == 3
    code = textwrap.dedent(f"""
        import os, signal
        from pipelines.store import Store
        def at(step):
            if step == "removed:1":
                os.kill(os.getpid(), signal.SIGKILL)
        Store({root!r}).compact({first.run_id!r}, on_step=at)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=120).returncode == -signal.SIGKILL
    done = store.done_units("trials", first.run_id)
    assert len(done) == 3
    (tmp_path / "d.allow").touch()
    attempts_before = sorted(p.name for p in tmp_path.glob("*.attempt-*"))
    second = run_operation("ops_for_tests:StallOp", config, store=store, placement=placement, resume=first.run_id,
                           show_progress=False)
    assert second.status == "finished" and second.n_resumed == 3
    new_attempts = sorted(set(p.name for p in tmp_path.glob("*.attempt-*")) - set(attempts_before))
    assert [a.split(".")[0] for a in new_attempts] == ["d"]  # only the missing unit ran
    con = connect(root)
    assert con.execute("SELECT count(*), count(DISTINCT image) FROM trials").fetchone() == (4, 4)
    assert con.execute("SELECT count(*) FROM errors").fetchone() == (0,)
    assert [p.name for p in folder.glob("*.parquet")] == json.loads((folder / "_compaction.json").read_text())["files"]


def test_store_compact_command_and_no_compact_option(tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app

    store = make_store(str(tmp_path / "st"))
    before = views(store.root)
    runner = CliRunner()
    out = runner.invoke(app, ["store", "compact", "--store", store.root, "--run", "20990101T000000Z-nosuch"])
    assert out.exit_code == 2 and "no run '20990101T000000Z-nosuch'" in out.output
    out = runner.invoke(app, ["store", "compact", "--store", store.root, "--table", "trial"])
    assert out.exit_code == 2 and "unknown table 'trial'" in out.output
    out = runner.invoke(app, ["store", "compact", "--store", store.root])
    assert out.exit_code == 0 and f"{RUN} trials: 6 part(s) -> 1 file(s), 30 rows" in out.output
    assert views(store.root) == before
    out = runner.invoke(app, ["store", "compact", "--store", store.root])
    assert out.exit_code == 0 and "already compact" in out.output
    assert "--no-compact" in runner.invoke(app, ["classify", "--help"]).output


def test_store_scale_benchmark_runs_small():
    from benchmarks.store_scale import main

    result = main(["--rows", "4000", "--parts", "4,40", "--repeats", "1"])
    small, many = result["stores"][4], result["stores"][40]
    assert many["files_after"] == small["files_after"] == 1 and many["bytes_after"] < many["bytes_before"]


def test_a_damaged_compaction_record_is_reported_and_quarantined(tmp_path):
    store = make_store(str(tmp_path / "st"))
    store.compact(RUN, tables=["trials"])
    record = tmp_path / "st" / "tables" / "trials" / f"run_id={RUN}" / "_compaction.json"
    record.write_text('{"files": [')  # cut short, as a full disk would
    lines: list[str] = []
    assert store_check(store=store.root, echo=lines.append) == 1
    assert any("_compaction.json" in line for line in lines)
    assert store_check(store=store.root, quarantine=True, echo=lambda _: None) == 0
    assert (tmp_path / "st" / "quarantine" / "tables" / "trials" / f"run_id={RUN}" / "_compaction.json").exists()
