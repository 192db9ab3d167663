"""The execution core under faults, on a real two-node Ray cluster started here (`ray start` x 2, own
--temp-dir and ports, stopped by pid): actors on both nodes, worker kills, a killed driver and resume,
a stalled unit (watchdog), retries exhausted (partial, exit 3) then resumed, requests that cannot fit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from ray_cluster import REPO, LocalCluster

pytestmark = pytest.mark.ray

CUE = REPO / "data" / "cue-conflict"


@pytest.fixture(scope="module")
def cluster():
    c = LocalCluster(nodes=[(1, 0), (1, 0)]).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """40 bundled cue-conflict stimuli (symlinks) in one folder."""
    folder = tmp_path_factory.mktemp("imgs") / "cue-conflict"
    folder.mkdir()
    for src in sorted(CUE.rglob("*.png"))[:40]:
        (folder / src.name).symlink_to(src)
    return folder


def texprobe(*args: str, cluster: LocalCluster, env: dict | None = None, timeout: float = 600,
             **popen) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], env={**cluster.env(), **(env or {})},
                          capture_output=True, text=True, timeout=timeout, cwd=REPO, **popen)


def trials(store: Path, run_id: str) -> list[dict]:
    folder = store / "tables" / "trials" / f"run_id={run_id}"
    return pads.dataset(folder, format="parquet").to_table(columns=["image", "unit_id"]).to_pylist()


def only_run(store: Path) -> dict:
    (manifest,) = list((store / "runs").glob("*.json"))
    return json.loads(manifest.read_text())


def parts(store: Path, table: str) -> int:
    return len(list((store / "tables" / table).glob("run_id=*/*.parquet")))


FULL = "texture-vs-shape/stimuli/style-transfer-preprocessed-512"


def test_two_nodes_three_worker_kills_every_row_once(cluster, images, tmp_path):
    """Actors on both nodes (manifest node ids); three actor processes SIGKILLed mid-run: replaced, their
    units re-queued; exit 0, status finished, each of the 40 images exactly once, no errors rows."""
    three_kills_every_row_once(cluster, images, tmp_path, unit_size=1)


@pytest.mark.shared_data(FULL)
def test_three_worker_kills_on_the_full_1280_stimuli(cluster, tmp_path):
    """The same on the full 1,280 cue-conflict stimuli (units of 40)."""
    from shared_data import SHARED_DATA

    three_kills_every_row_once(cluster, SHARED_DATA / FULL, tmp_path, unit_size=40, expected=1280)


def three_kills_every_row_once(cluster, images: Path, tmp_path: Path, *, unit_size: int, expected: int = 40) -> None:
    store = tmp_path / "store"
    kills: list[int] = []

    def killer() -> None:
        seen = 0
        deadline = time.monotonic() + 400
        while len(kills) < 3 and time.monotonic() < deadline:
            n = parts(store, "trials")
            pids = cluster.worker_pids()
            if n > seen and pids:  # a unit landed since the last kill: kill one actor now
                os.kill(pids[len(kills) % len(pids)], signal.SIGKILL)
                kills.append(pids[len(kills) % len(pids)])
                seen = n
            time.sleep(0.3)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    out = texprobe("classify", str(images), "--store", str(store), "--address", cluster.address, "--unit-size",
                   str(unit_size), "--batch-size", str(min(unit_size, 20)), "--cpus-per-actor", "1", cluster=cluster)
    thread.join(timeout=5)
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(kills) == 3, f"only {len(kills)} kills landed; stdout: {out.stdout[-2000:]}"
    manifest = only_run(store)
    assert manifest["status"] == "finished"
    rows = trials(store, manifest["run_id"])
    assert Counter(r["image"] for r in rows) == Counter(p.name for p in images.rglob("*.png"))
    assert manifest["counts"]["trials"] == expected and manifest["counts"]["errors"] == 0
    assert len({a["node_id"] for a in manifest["actors"]}) == 2  # both nodes ran actors
    assert sum("replaced" in e for e in manifest["events"]) == 3


def test_killed_driver_then_resume_completes_exactly_the_plan(cluster, images, tmp_path):
    """SIGKILL the driver mid-run: the manifest stays 'running' (heartbeat says since when); --resume
    runs only the missing units; files added meanwhile are NOT mixed in (said so); every planned image
    once; the manifest's counts cover both invocations."""
    store = tmp_path / "store"
    folder = tmp_path / "few"
    folder.mkdir()
    for src in sorted(images.iterdir())[:16]:
        (folder / src.name).symlink_to(src.resolve())
    cmd = [sys.executable, "-m", "pipelines.cli", "classify", str(folder), "--store", str(store), "--address",
           cluster.address, "--unit-size", "2", "--batch-size", "2", "--cpus-per-actor", "1"]
    driver = subprocess.Popen(cmd, env=cluster.env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while parts(store, "trials") < 2 and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.2)
    driver.kill()
    driver.wait()
    # the dead driver's actors finish the calls they hold before Ray reaps them (their parts count as done):
    # count what the resume will find only once they are gone
    deadline = time.monotonic() + 60
    while cluster.worker_pids() and time.monotonic() < deadline:
        time.sleep(0.2)
    manifest = only_run(store)
    done_before = parts(store, "trials")
    assert manifest["status"] == "running" and manifest["heartbeat_at"] and 2 <= done_before < 8
    for src in sorted(images.iterdir())[16:21]:  # 5 new files: not part of the plan
        (folder / src.name).symlink_to(src.resolve())
    out = texprobe("classify", str(folder), "--store", str(store), "--address", cluster.address, "--unit-size", "2",
                   "--batch-size", "2", "--cpus-per-actor", "1", "--resume", manifest["run_id"], cluster=cluster)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "5 input(s) found now are not in run" in " ".join(out.stderr.split())
    manifest = only_run(store)
    rows = trials(store, manifest["run_id"])
    assert manifest["status"] == "finished" and len(rows) == 16
    assert Counter(r["image"] for r in rows) == Counter(p.name for p in sorted(images.iterdir())[:16])
    assert manifest["counts"]["trials"] == 16 and manifest["invocations"][-1]["units_run"] == 8 - done_before


def test_stalled_unit_is_retried_by_the_watchdog(ray_cluster, tmp_path):
    """A unit that never returns: its actor is replaced after --unit-timeout and the unit retried."""
    from pipelines.ray_runtime import Placement
    from pipelines.runner import run_operation
    from pipelines.store import Store
    from ops_for_tests import StallConfig

    config = StallConfig(items=("a", "b", "c"), marker_dir=str(tmp_path), stall=("b",))
    started = time.monotonic()
    report = run_operation("ops_for_tests:StallOp", config, store=Store(str(tmp_path / "store")),
                           placement=Placement(cpus_per_actor=1, actors=1, unit_timeout_s=4),
                           show_progress=False)
    assert report.status == "finished" and report.counts["trials"] == 3
    assert sorted(p.name for p in tmp_path.glob("b.attempt-*")) == ["b.attempt-1", "b.attempt-2"]
    assert any("watchdog" in e for e in report.extra["events"])
    assert time.monotonic() - started < 120


def test_retries_exhausted_partial_then_resume_clears_the_error_rows(ray_cluster, tmp_path):
    """A unit that stalls on every attempt fails after 1 + retries attempts: the run ends 'partial' and
    names the missing input; the errors rows say so. Resumed once the cause is gone: 'finished', and the
    failed attempt's errors rows are gone (replaced by the unit's own, empty, errors part)."""
    import duckdb

    from pipelines.errors import ResumeError
    from pipelines.ray_runtime import Placement
    from pipelines.runner import run_operation
    from pipelines.store import Store
    from ops_for_tests import StallConfig

    store = Store(str(tmp_path / "store"))
    config = StallConfig(items=("a", "b"), marker_dir=str(tmp_path), stall=("b",), stall_every_attempt=True)
    placement = Placement(cpus_per_actor=1, actors=1, unit_timeout_s=3, retries=1)
    first = run_operation("ops_for_tests:StallOp", config, store=store, placement=placement, show_progress=False)
    assert first.status == "partial" and [m["inputs"] for m in first.missing] == [["b"]]
    assert len(list(tmp_path.glob("b.attempt-*"))) == 2
    errors = duckdb.sql(f"SELECT input, stage FROM '{tmp_path}/store/tables/errors/*/*.parquet'").fetchall()
    assert errors == [("b", "unit")]
    (tmp_path / "b.allow").touch()
    with pytest.raises(ResumeError):  # other settings: refused, nothing written
        run_operation("ops_for_tests:StallOp", StallConfig(items=("a", "b"), marker_dir=str(tmp_path)), store=store,
                      placement=placement, resume=first.run_id, show_progress=False)
    second = run_operation("ops_for_tests:StallOp", config, store=store, placement=placement, resume=first.run_id,
                           show_progress=False)
    assert second.status == "finished" and second.counts["trials"] == 2 and second.counts["errors"] == 0
    assert duckdb.sql(f"SELECT count(*) FROM '{tmp_path}/store/tables/errors/*/*.parquet'").fetchall() == [(0,)]


def test_requests_that_cannot_fit_fail_fast(cluster, images, tmp_path):
    """--cpus-per-actor 100 on a 2-CPU cluster: a one-line error naming both numbers, exit 2, seconds.
    An unreachable --address: exit 2 within seconds. Neither leaves a manifest behind."""
    store = tmp_path / "store"
    started = time.monotonic()
    out = texprobe("classify", str(images), "--store", str(store), "--address", cluster.address,
                   "--cpus-per-actor", "100", cluster=cluster, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "asked for 100 CPUs per actor; the cluster has 2" in " ".join(out.stderr.split())
    out = texprobe("classify", str(images), "--store", str(store), "--address", "127.0.0.1:1", cluster=cluster,
                   timeout=120)
    assert out.returncode == 2 and "cannot reach the Ray cluster" in out.stderr and "Traceback" not in out.stderr
    assert time.monotonic() - started < 90
    assert not list(store.glob("runs/*.json"))


HOG = """
import ray, sys, time
ray.init(address=sys.argv[1], logging_level="ERROR")

@ray.remote(num_cpus=1)
class Hog:
    def ping(self):
        return 1

hogs = [Hog.remote() for _ in range(2)]
ray.get([h.ping.remote() for h in hogs])
print("holding", flush=True)
time.sleep(600)
"""


def test_actor_that_cannot_start_times_out(cluster, images, tmp_path):
    """Every CPU held by another job: the actor stays pending; --startup-timeout ends the run with a
    one-line error instead of waiting forever."""
    hog = subprocess.Popen([sys.executable, "-c", HOG, cluster.address], env=cluster.env(), stdout=subprocess.PIPE,
                           text=True)
    try:
        assert hog.stdout.readline().strip() == "holding"
        started = time.monotonic()
        out = texprobe("classify", str(images), "--store", str(tmp_path / "s"), "--address", cluster.address,
                       "--cpus-per-actor", "1", "--startup-timeout", "5", cluster=cluster, timeout=120)
        assert out.returncode == 2 and "did not start within 5 s" in " ".join(out.stderr.split()), out.stderr[-2000:]
        assert time.monotonic() - started < 90
    finally:
        hog.kill()
        hog.wait()
