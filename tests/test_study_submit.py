"""`texprobe study submit` against a real Ray head with its job server (issue 10 part 2): token auth on
(RAY_AUTH_MODE=token), the token passed as RAY_AUTH_TOKEN only; two submissions on the same day are one
job (`texprobe-<study>-<YYYYMMDD>`), the second reports "already submitted"; the job runs the study."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ray_cluster import RAY, REPO, LocalCluster, port_block, worker_port_range

DATA = REPO / "data"


class JobHead(LocalCluster):
    """A one-node cluster whose head also runs the dashboard (the job server) on 127.0.0.1."""

    dashboard_port: int = 0

    def env(self) -> dict[str, str]:
        """As a cluster admin starts it from a unit file: the project's ``ray`` by path, its venv NOT on PATH
        (so a job's bare ``python`` is not the one with texprobe)."""
        env = super().env()
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
        env.pop("VIRTUAL_ENV", None)
        return env

    @property
    def job_address(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def _start_node(self, cpus: int, gpus: int, head: bool) -> None:
        assert head, "JobHead is a single head node"
        *p, self.port = port_block(11)
        self.dashboard_port = p[8]
        low, high = worker_port_range([*p, self.port], seed=p[2])
        args = [RAY, "start", "--head", "--block", "--disable-usage-stats", f"--num-cpus={cpus}", f"--num-gpus={gpus}",
                "--node-ip-address=127.0.0.1", f"--port={self.port}", f"--temp-dir={self.temp_dir}",
                f"--node-manager-port={p[0]}", f"--object-manager-port={p[1]}",
                f"--min-worker-port={low}", f"--max-worker-port={high}",
                f"--dashboard-agent-listen-port={p[3]}", f"--dashboard-agent-grpc-port={p[4]}",
                f"--metrics-export-port={p[5]}", f"--runtime-env-agent-port={p[6]}", f"--ray-client-server-port={p[7]}",
                "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}"]
        log = open(Path(self.temp_dir) / "head.log", "wb")
        self.procs.append(subprocess.Popen(args, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def wait_jobs_api(self, timeout: float = 90.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.job_address}/api/version", timeout=2)
                return
            except OSError as exc:  # 401 (token auth) also means the server is up
                if getattr(exc, "code", None) in (401, 403):
                    return
                time.sleep(1.0)
        raise TimeoutError(f"job server not up at {self.job_address}; see {self.temp_dir}/head.log")


@pytest.fixture(scope="module")
def job_head():
    head = JobHead(nodes=[(2, 0)])
    try:
        head.start()
        head.wait_jobs_api()
        yield head
    finally:
        head.stop()


def _submit(spec: Path, head: JobHead, *, token: str | None, python: str | None = sys.executable,
            extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["PYTHONPATH"] = str(REPO)
    env["HOME"] = str(spec.parent)  # no ~/.ray/auth_token here: the token can only come from RAY_AUTH_TOKEN
    if token is not None:
        env["RAY_AUTH_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "study", "submit", str(spec), "--address",
                           head.job_address, *(["--python", python] if python else []), *extra], env=env,
                          capture_output=True, text=True, timeout=400)


@pytest.mark.slow
@pytest.mark.ray
def test_submit_twice_same_day_is_one_job(job_head: JobHead, tmp_path: Path):
    from ray.job_submission import JobStatus, JobSubmissionClient

    images = tmp_path / "images"
    images.mkdir()
    for p in sorted((DATA / "cue-conflict" / "cat").glob("*.png"))[:2]:
        shutil.copyfile(p, images / p.name)
    spec = tmp_path / "s.toml"
    spec.write_text('[study]\nname = "nightly"\nstore = "store"\n[[datasets]]\nname = "cc"\npath = "images"\n'
                    '[[models]]\nname = "efficientnet_lite0"\n[[operations]]\nkind = "classify"\n')
    token = (Path.home() / ".ray" / "auth_token").read_text().strip()
    sid = f"texprobe-nightly-{dt.datetime.now(dt.timezone.utc):%Y%m%d}"

    denied = _submit(spec, job_head, token=None)  # token auth is really on
    assert denied.returncode == 2 and denied.stderr.count("\n") == 1, denied.stderr + denied.stdout

    first = _submit(spec, job_head, token=token)
    assert first.returncode == 0, first.stderr
    assert f"submitted: {sid}," in first.stdout and "already" not in first.stdout
    second = _submit(spec, job_head, token=token)
    assert second.returncode == 0, second.stderr
    assert f"already submitted: {sid}, " in second.stdout

    client = JobSubmissionClient(job_head.job_address, headers={"Authorization": f"Bearer {token}"})
    assert [j.submission_id for j in client.list_jobs() if j.submission_id] == [sid]  # others: plain drivers
    deadline = time.monotonic() + 240
    while client.get_job_status(sid) not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        assert time.monotonic() < deadline, client.get_job_logs(sid)[-3000:]
        time.sleep(2)
    assert client.get_job_status(sid) == JobStatus.SUCCEEDED, client.get_job_logs(sid)[-3000:]

    from pipelines.store import Store

    store = Store(tmp_path / "store")
    (run_id,) = store.list_runs()
    assert store.read_manifest(run_id)["study"] == "nightly"
    assert store.read_table("trials", run_id).num_rows == 2


def _spec(tmp_path: Path, name: str) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    for p in sorted((DATA / "cue-conflict" / "cat").glob("*.png"))[:2]:
        shutil.copyfile(p, images / p.name)
    spec = tmp_path / "s.toml"
    spec.write_text(f'[study]\nname = "{name}"\nstore = "store"\n[[datasets]]\nname = "cc"\npath = "images"\n'
                    '[[models]]\nname = "efficientnet_lite0"\n[[operations]]\nkind = "classify"\n')
    return spec


@pytest.mark.slow
@pytest.mark.ray
def test_submit_wait_without_python_runs_on_a_head_whose_path_lacks_the_venv(job_head: JobHead, tmp_path: Path):
    """Issue 20: the job used to run `python -m pipelines.cli` from the head's PATH (no texprobe there: `No
    module named typer`) while submit exited 0. Now the local head gets this interpreter; --wait follows the
    job to its end and exits 0 only when it succeeded, with its trials in the store."""
    spec = _spec(tmp_path, "venvless")
    token = (Path.home() / ".ray" / "auth_token").read_text().strip()
    out = _submit(spec, job_head, token=token, python=None, extra=("--wait",))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert sys.executable in out.stdout and "succeeded" in out.stdout
    from pipelines.store import Store

    store = Store(tmp_path / "store")
    (run_id,) = store.list_runs()
    assert store.read_table("trials", run_id).num_rows == 2
    status = subprocess.run([sys.executable, "-m", "pipelines.cli", "study", "status", str(spec), "--address",
                             job_head.job_address], env={**os.environ, "RAY_AUTH_TOKEN": token, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and "SUCCEEDED" in status.stdout, status.stdout + status.stderr


@pytest.mark.slow
@pytest.mark.ray
def test_a_job_that_fails_makes_submit_exit_non_zero_with_its_error(job_head: JobHead, tmp_path: Path):
    spec = _spec(tmp_path, "broken")
    token = (Path.home() / ".ray" / "auth_token").read_text().strip()
    missing = str(tmp_path / "no-such-python")
    out = _submit(spec, job_head, token=token, python=missing)  # without --wait: still checks that it starts
    assert out.returncode == 1, out.stdout + out.stderr
    assert "failed" in out.stderr and "texprobe-broken-" in out.stderr and "Traceback" not in out.stderr
    assert "ray job logs" in out.stderr
    again = _submit(spec, job_head, token=token, python=missing, extra=("--wait",))  # the same day's job: failed
    assert again.returncode == 1 and "already submitted" in again.stdout and "failed" in again.stderr
    status = subprocess.run([sys.executable, "-m", "pipelines.cli", "study", "status", str(spec), "--address",
                             job_head.job_address], env={**os.environ, "RAY_AUTH_TOKEN": token, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 1 and "FAILED" in status.stdout
