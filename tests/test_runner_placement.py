"""GPU placement with logical GPUs: `ray start --num-gpus 2` on this CPU machine, the actors' torch device
overridden to cpu for the test ($TEXPROBE_DEVICE). Two actors get distinct GPU ids (Ray pins each through
CUDA_VISIBLE_DEVICES), and the manifest records them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ray_cluster import REPO, LocalCluster

pytestmark = pytest.mark.ray


def test_two_actors_get_distinct_gpus_recorded_in_the_manifest(tmp_path):
    images = tmp_path / "cue-conflict"
    images.mkdir()
    for src in sorted((REPO / "data" / "cue-conflict").rglob("*.png"))[:6]:
        (images / src.name).symlink_to(src)
    cluster = LocalCluster(nodes=[(2, 2)]).start()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "classify", str(images), "--store", str(tmp_path / "s"),
             "--address", cluster.address, "--unit-size", "1", "--cpus-per-actor", "1"],
            env={**cluster.env(), "TEXPROBE_DEVICE": "cpu"}, cwd=REPO, capture_output=True, text=True, timeout=400)
    finally:
        cluster.stop()
    assert out.returncode == 0, out.stderr[-3000:]
    (manifest,) = [json.loads(p.read_text()) for p in (tmp_path / "s" / "runs").glob("*.json")]
    assert manifest["placement"].startswith("2 actor(s), 1 GPU")
    gpu_ids = sorted(tuple(a["gpu_ids"]) for a in manifest["actors"])
    assert gpu_ids == [("0",), ("1",)]
    assert sorted(a["cuda_visible_devices"] for a in manifest["actors"]) == ["0", "1"]
    assert manifest["counts"]["trials"] == 6


def test_test_clusters_worker_ports_never_hold_another_port():
    """The test clusters' worker port range lies below the ports bind(0) hands out and avoids every port
    given: drawn from a free port's number, it once held the dashboard agent's port (35231 in 35213-35273),
    `ray start` refused and the readiness probe waited for ever."""
    from ray_cluster import EPHEMERAL_START, WORKER_PORTS, worker_port_range

    for seed in (0, 15231, 35213, 99991):
        avoid = [20000 + (seed % 12000) + 5, 35231, 41039]
        low, high = worker_port_range(avoid, seed=seed)
        assert high - low == WORKER_PORTS and 20000 <= low and high < EPHEMERAL_START
        assert not any(low <= port <= high for port in avoid)
