"""Calls of several short units land as ONE part per table (``call-<hash>``, its footer listing the units):
what the store says is done, compaction, and exactly-once when calls are retried, killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from analysis.storage.run_parts import part_units
from pipelines.store import Store
from ray_cluster import REPO, LocalCluster

RUN = "20260101T120000Z-abcdef"


def _trial(i: int, unit: str) -> dict:
    return {"source": "texprobe", "observer": "m", "observer_kind": "model", "image": f"img{i}.png",
            "conflict": False, "dataset": "d", "unit_id": unit}


def test_a_call_part_makes_all_its_units_done_and_compaction_keeps_them(tmp_path):
    store = Store(str(tmp_path / "st"))
    store.write_table("trials", RUN, [_trial(0, "unit-a"), _trial(1, "unit-b")], part="call-0123456789abcdef",
                      units=["unit-a", "unit-b", "unit-empty"])  # a unit whose items all failed: done, no rows
    store.write_table("trials", RUN, [_trial(2, "unit-c")], part="unit-c")
    assert store.parts("trials", RUN) == {"call-0123456789abcdef", "unit-c"}
    assert store.done_units("trials", RUN) == {"unit-a", "unit-b", "unit-empty", "unit-c"}
    (report,) = store.compact(RUN, tables=["trials"])
    assert report.parts_in == 2 and report.rows == 3
    assert store.done_units("trials", RUN) == {"unit-a", "unit-b", "unit-empty", "unit-c"}
    folder = tmp_path / "st" / "tables" / "trials" / f"run_id={RUN}"
    assert not list(folder.glob("call-*")) and not list(folder.glob("unit-*"))


def test_a_call_part_whose_footer_is_damaged_holds_no_unit_known_done(tmp_path):
    store = Store(str(tmp_path / "st"))
    path = store.write_table("trials", RUN, [_trial(0, "unit-a")], part="call-00000000000000aa", units=["unit-a"])
    Path(path).write_bytes(Path(path).read_bytes()[:-20])
    assert part_units(store.location, str(Path(path).parent), Path(path).name) == []
    assert store.done_units("trials", RUN) == set()  # its units run again on resume


@pytest.mark.ray
def test_short_units_land_one_part_per_call_each_row_once(ray_cluster, tmp_path):
    """600 units of 2 ms: after the probe they travel in calls of many units, one trials part per call (the
    old code wrote one part per unit); the grouping is in the manifest; every item once; the store says
    every unit done, before and after compaction."""
    from ops_for_tests import StallConfig
    from pipelines.call_plan import MIN_PROBE
    from pipelines.ray_runtime import Placement
    from pipelines.runner import run_operation

    items = tuple(f"i{k:04d}" for k in range(600))
    store = Store(str(tmp_path / "store"))
    config = StallConfig(items=items, marker_dir=str(tmp_path), delay_s=0.002)
    report = run_operation("ops_for_tests:StallOp", config, store=store,
                           placement=Placement(cpus_per_actor=1, actors=1), show_progress=False, compact=False)
    assert report.status == "finished" and report.counts["trials"] == 600 and report.n_units == 600
    manifest = store.read_manifest(report.run_id)
    plan = manifest["call_plan"]
    assert plan["probe"] == MIN_PROBE and plan["size"] >= 8, plan
    parts = store.parts("trials", report.run_id)
    calls = [p for p in parts if p.startswith("call-")]
    assert len(parts) == MIN_PROBE + -(-(600 - MIN_PROBE) // plan["size"]) and len(calls) >= 8
    rows = store.read_table("trials", report.run_id).to_pylist()
    assert Counter(r["image"] for r in rows) == Counter(items)
    units = {u["unit_id"] for u in store.iter_plan(report.run_id)}
    assert store.done_units("trials", report.run_id) == units
    store.compact(report.run_id)
    assert store.done_units("trials", report.run_id) == units
    assert sorted(r["image"] for r in store.read_table("trials", report.run_id).to_pylist()) == list(items)


@pytest.mark.ray
def test_a_call_that_fails_its_retries_is_missing_whole_and_a_resume_clears_its_errors(ray_cluster, tmp_path):
    """A unit inside a call stalls on every attempt: the watchdog kills the call, which is retried whole,
    then fails; every unit of that call is missing, its errors rows (one per input) sit in the call's own
    part. Resumed once the cause is gone: the same call runs again, 'finished', no errors rows left."""
    import duckdb

    from ops_for_tests import StallConfig
    from pipelines.ray_runtime import Placement
    from pipelines.runner import run_operation

    items = tuple(f"i{k:03d}" for k in range(60))
    store = Store(str(tmp_path / "store"))
    config = StallConfig(items=items, marker_dir=str(tmp_path), delay_s=0.05, stall=("i040",),
                         stall_every_attempt=True)  # units of 50 ms: calls of ~5, a watchdog of ~7.5 s per call
    placement = Placement(cpus_per_actor=1, actors=1, unit_timeout_s=1.5, retries=1)
    first = run_operation("ops_for_tests:StallOp", config, store=store, placement=placement, show_progress=False)
    assert first.status == "partial"
    manifest = store.read_manifest(first.run_id)
    probe, size = manifest["call_plan"]["probe"], manifest["call_plan"]["size"]
    assert size > 1
    missing = sorted(i for m in first.missing for i in m["inputs"])
    assert missing == [i for p, i in enumerate(items) if p >= probe and (p - probe) // size == (40 - probe) // size]
    assert len({m["part"] for m in first.missing}) == 1 and manifest["missing_parts"][0].startswith("call-")
    errors = duckdb.sql(f"SELECT input, stage FROM '{tmp_path}/store/tables/errors/*/*.parquet' ORDER BY input").fetchall()
    assert errors == [(i, "unit") for i in missing]
    assert report_rows(store, first.run_id) == sorted(set(items) - set(missing))
    (tmp_path / "i040.allow").touch()
    second = run_operation("ops_for_tests:StallOp", config, store=store, placement=placement, resume=first.run_id,
                           show_progress=False)
    assert second.status == "finished" and second.counts["trials"] == 60 and second.counts["errors"] == 0
    assert duckdb.sql(f"SELECT count(*) FROM '{tmp_path}/store/tables/errors/*/*.parquet'").fetchall() == [(0,)]
    assert report_rows(store, first.run_id) == sorted(items)


def report_rows(store: Store, run_id: str) -> list[str]:
    return sorted(r["image"] for r in store.read_table("trials", run_id).to_pylist())


# ------------------------------------------------------------------ kills, on a real two-node cluster

DRIVER = """
import sys
from ops_for_tests import StallConfig
from pipelines.ray_runtime import Placement
from pipelines.runner import run_operation
from pipelines.store import Store
store, markers, address, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
resume = sys.argv[5] if len(sys.argv) > 5 else None
config = StallConfig(items=tuple(f"i{k:04d}" for k in range(n)), marker_dir=markers, delay_s=0.003)
report = run_operation("ops_for_tests:StallOp", config, store=Store(store), resume=resume, show_progress=False,
                       placement=Placement(address=address, actors=2, cpus_per_actor=1))
print(report.run_id, report.status, report.counts["trials"])
"""


@pytest.fixture(scope="module")
def cluster():
    c = LocalCluster(nodes=[(1, 0), (1, 0)]).start()
    yield c
    c.stop()


def _driver(cluster: LocalCluster, store: Path, markers: Path, n: int, *extra: str, **popen) -> subprocess.Popen:
    env = {**cluster.env(), "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(store), str(markers), cluster.address, str(n), *extra],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def _call_parts(store: Path) -> int:
    return len(list((store / "tables" / "trials").glob("run_id=*/call-*.parquet")))


def _images(store: Path) -> Counter:
    folder = next((store / "tables" / "trials").glob("run_id=*"))
    return Counter(pads.dataset(folder, format="parquet").to_table(columns=["image"]).column("image").to_pylist())


@pytest.mark.ray
def test_worker_kills_while_calls_are_in_flight_every_row_once(cluster, tmp_path):
    """Three actor processes SIGKILLed while calls of many units run: each call goes back whole and lands
    under its own name; finished, every item exactly once."""
    store, n = tmp_path / "store", 3000
    driver = _driver(cluster, store, tmp_path, n)
    kills, seen, deadline = 0, 0, time.monotonic() + 300
    while kills < 3 and driver.poll() is None and time.monotonic() < deadline:
        landed = _call_parts(store)
        pids = cluster.worker_pids()
        if landed > seen and pids:
            os.kill(pids[kills % len(pids)], signal.SIGKILL)
            kills, seen = kills + 1, landed
        time.sleep(0.2)
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err[-3000:]
    assert kills == 3 and out.strip().splitlines()[-1].split()[1:] == ["finished", str(n)], (kills, out[-2000:])
    assert _images(store) == Counter(f"i{k:04d}" for k in range(n))


@pytest.mark.ray
def test_killed_driver_resumed_at_once_while_its_actors_still_write(cluster, tmp_path):
    """The driver is SIGKILLed while calls are in flight and resumed at once: the resume keeps the recorded
    grouping (a call the dead driver's actors still finish is the same call, under the same name: see
    test_a_zombie_call_lands_under_the_name_the_resume_uses), and every item lands exactly once."""
    store, n = tmp_path / "store", 3000
    driver = _driver(cluster, store, tmp_path, n)
    deadline = time.monotonic() + 300
    while _call_parts(store) < 2 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    driver.kill()
    driver.communicate()
    run_id = next((store / "runs").glob("*.json")).stem
    resumed = _driver(cluster, store, tmp_path, n, run_id)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    assert out.strip().splitlines()[-1].split() == [run_id, "finished", str(n)], out[-2000:]
    assert _images(store) == Counter(f"i{k:04d}" for k in range(n))
    plan = json.loads((store / "runs" / f"{run_id}.json").read_text())["call_plan"]
    assert plan["size"] > 1


def test_a_zombie_call_lands_under_the_name_the_resume_uses(tmp_path):
    """An actor that outlives its driver and finishes a call after the resume wrote that call: the same
    units in the same order, so the same part name, replaced; rows stay once (the actor class, no Ray)."""
    from ops_for_tests import StallConfig
    from pipelines.actor import UnitActor
    from pipelines.call_plan import call_part
    from pipelines.ops.base import WorkUnit

    store = Store(str(tmp_path / "st"))
    config = StallConfig(items=tuple(f"i{k}" for k in range(6)), marker_dir=str(tmp_path), unit_size=2)
    units = [WorkUnit(f"unit-{k}", tuple({"path": f"i{2 * k + j}"} for j in range(2))) for k in range(3)]
    part = call_part([u.unit_id for u in units])
    for _ in range(2):  # the resume's attempt, then the zombie's
        actor = UnitActor(op_name="ops_for_tests:StallOp", config=config, store_root=store.root, run_id=RUN)
        actor.process_many(units, first_attempts=[False] * 3, part=part)
    assert store.parts("trials", RUN) == {part} and store.parts("errors", RUN) == {part}
    assert report_rows(store, RUN) == [f"i{k}" for k in range(6)]
    assert store.done_units("trials", RUN) == {"unit-0", "unit-1", "unit-2"}
