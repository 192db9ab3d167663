"""A real multi-process Ray cluster on this machine for tests: `ray start` head (and worker) nodes with
their own --temp-dir and ports, stopped by the process groups this helper started (never `ray stop`,
which would kill every Ray process on the machine, other users' included)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process, from /proc (no psutil here)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        table[int(entry)] = (ppid, cmd)
    return table


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every descendant of ``pid``."""
    table = _proc_table()
    out, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, cmd) in table.items():
            if ppid == parent:
                out.append((child, cmd))
                frontier.append(child)
    return out


def port_block(n: int = 12) -> list[int]:
    """``n`` distinct free ports (bind(0) may hand the same port out twice in a row)."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


#: Ports the kernel hands out for bind(0) start here (Linux's default ip_local_port_range is 32768-60999).
EPHEMERAL_START = 32768
WORKER_PORTS = 60


def worker_port_range(avoid: list[int], seed: int) -> tuple[int, int]:
    """``(min, max)`` of a node's worker ports: ``WORKER_PORTS`` + 1 ports in 20000-32767, below the ports
    ``free_port`` hands out and containing none of ``avoid``. (Drawing the range from a free port's number
    once put a dashboard-agent port inside it: `ray start` refused, and the test waited forever.)"""
    span = EPHEMERAL_START - 20000 - WORKER_PORTS
    for k in range(span):
        low = 20000 + (seed + k * 997) % span
        if not any(low <= port <= low + WORKER_PORTS for port in avoid):
            return low, low + WORKER_PORTS
    raise RuntimeError(f"no worker port range avoids {avoid}")


def ensure_auth_token(env: dict[str, str]) -> None:
    """Create ``~/.ray/auth_token`` if missing (``ray start`` with token auth refuses to start without one;
    on a fresh machine nothing else may have made it yet)."""
    if env.get("RAY_AUTH_TOKEN") or (Path(env.get("HOME", str(Path.home()))) / ".ray" / "auth_token").exists():
        return
    subprocess.run([RAY, "get-auth-token", "--generate"], env=env, capture_output=True, check=True)


@dataclass
class LocalCluster:
    """``nodes``: per node (cpus, gpus); the first is the head. ``address`` is ``127.0.0.1:<port>``."""

    nodes: list[tuple[int, int]]
    temp_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="tpr", dir="/tmp"))
    procs: list[subprocess.Popen] = field(default_factory=list)
    port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env.pop("RAY_ADDRESS", None)
        env["RAY_AUTH_MODE"] = "token"  # token auth on for the nodes and every client (the token: ~/.ray/auth_token)
        return env

    def _start_node(self, cpus: int, gpus: int, head: bool) -> None:
        p = port_block(13)  # the last one: the head's GCS port
        low, high = worker_port_range(p, seed=p[2])
        args = [RAY, "start", "--block", "--disable-usage-stats", f"--num-cpus={cpus}", f"--num-gpus={gpus}",
                "--node-ip-address=127.0.0.1", f"--node-manager-port={p[0]}", f"--object-manager-port={p[1]}",
                f"--min-worker-port={low}", f"--max-worker-port={high}",
                f"--dashboard-agent-listen-port={p[3]}", f"--dashboard-agent-grpc-port={p[4]}",
                f"--metrics-export-port={p[5]}", f"--runtime-env-agent-port={p[6]}"]
        if head:
            self.port = p[12]
            args += ["--head", f"--port={self.port}", f"--temp-dir={self.temp_dir}", "--include-dashboard=false",
                     f"--ray-client-server-port={p[7]}"]
        else:
            args += [f"--address={self.address}"]
        log = open(Path(self.temp_dir) / f"node{len(self.procs)}.log", "wb")
        self.procs.append(subprocess.Popen(args, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def start(self, timeout: float = 120.0) -> "LocalCluster":
        ensure_auth_token(self.env())
        for i, (cpus, gpus) in enumerate(self.nodes):
            self._start_node(cpus, gpus, head=i == 0)
            self.wait_nodes(i + 1, timeout)
        return self

    def wait_nodes(self, n: int, timeout: float) -> None:
        code = ("import ray,sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
                "print(sum(1 for x in ray.nodes() if x['Alive']))")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"a ray node exited; see the logs in {self.temp_dir}")
            try:  # bounded: ray.init keeps retrying an address where nothing listens (a node that died)
                out = subprocess.run([sys.executable, "-c", code, self.address], env=self.env(), capture_output=True,
                                     text=True, timeout=30)
            except subprocess.TimeoutExpired:
                continue
            if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(n)]:
                return
            time.sleep(1.0)
        raise TimeoutError(f"{n} Ray node(s) not up after {timeout:g} s; see {self.temp_dir}/node*.log")

    def worker_pids(self, name: str = "UnitActor") -> list[int]:
        """Pids of this cluster's actor processes named ``ray::<name>`` (children of our raylets)."""
        return [pid for proc in self.procs for pid, cmd in descendants(proc.pid) if f"ray::{name}" in cmd]

    def stop(self) -> None:
        victims = [pid for proc in self.procs for pid, _ in [(proc.pid, ""), *descendants(proc.pid)]]
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for pid in victims:  # what survived the group signal (workers that left the group)
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)
