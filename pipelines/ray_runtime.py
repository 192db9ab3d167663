"""Joining or starting a Ray cluster, and laying out actors on it, without ever waiting forever.

* ``--address`` is probed with a short TCP connect before ``ray.init`` (an unreachable address is a
  one-line error after seconds, not minutes of retries).
* A local cluster (no address) advertises 127.0.0.1, runs without the dashboard and with Ray's token
  authentication on (``RAY_AUTH_MODE=token``; Ray creates ``~/.ray/auth_token`` if missing).
* Requested resources are checked against the nodes before any actor is created: a request no node
  can satisfy would otherwise leave actors pending forever.

Placement rule: one actor per GPU when the cluster has GPUs (``num_gpus=1`` each, so Ray pins every
actor to its own device through ``CUDA_VISIBLE_DEVICES``); CPU actors otherwise, by default one per
node using the smallest node's CPU count. A GPU is never requested from a cluster that has none.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
from dataclasses import dataclass
from typing import Iterator

from pipelines.errors import ClusterError

#: Seconds to wait for a TCP connection to ``--address`` before giving up.
ADDRESS_PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Placement:
    """Where and how a run's actors go: built once by the CLI from the shared options."""

    address: str | None = None
    actors: int | None = None
    gpus_per_actor: float | None = None
    cpus_per_actor: float | None = None
    retries: int = 3
    unit_timeout_s: float | None = None
    startup_timeout_s: float = 300.0
    #: Test/debug only: run the actors on this torch device whatever Ray assigned ($TEXPROBE_DEVICE).
    device: str | None = None


@dataclass(frozen=True)
class ActorPlan:
    """How a run's actors are laid out on the cluster."""

    num_actors: int
    gpus: float
    cpus: float
    device: str

    def __str__(self) -> str:
        kind = f"{self.gpus:g} GPU" if self.gpus else "CPU only"
        return f"{self.num_actors} actor(s), {kind}, {self.cpus:g} CPU each"


def probe_address(address: str, *, timeout: float = ADDRESS_PROBE_TIMEOUT_S) -> None:
    """Fail fast (ClusterError) when nothing listens at ``address`` (``host:port`` or ``ray://host:port``)."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--address {address!r} is not host:port (e.g. 10.0.0.5:6379 or ray://10.0.0.5:10001)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(
            f"cannot reach the Ray cluster at {address!r}: {reason} (waited {timeout:g} s). Check the address and "
            "that the head node runs (`ray start --head` or `ray up cluster.yaml`), or omit --address to run locally."
        ) from None


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[None]:
    """Join the cluster at ``address`` (or ``$RAY_ADDRESS``), or start a private local one that is shut
    down on exit. An already-initialised Ray (a caller's own session) is used as it is."""
    import ray

    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict = {"logging_level": "WARNING", "log_to_driver": False}
    if address is None:
        kwargs.update(include_dashboard=False, num_cpus=num_cpus or os.cpu_count() or 1,
                      _node_ip_address="127.0.0.1")
    else:
        probe_address(address)
        kwargs["address"] = address
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(
            f"could not join the Ray cluster at {address!r}: {str(exc).splitlines()[0] if str(exc) else exc!r}. "
            "If it uses token authentication, set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH); "
            "or omit --address to run on a local cluster."
        ) from None
    _STATE["started"] = True
    try:
        yield
    finally:
        if not _STATE["held"]:
            _STATE["started"] = False
            ray.shutdown()


_STATE = {"held": 0, "started": False}


@contextlib.contextmanager
def held_session() -> Iterator[None]:
    """Keep a cluster that a ``ray_session`` inside starts (lazily: only if one does) until this exits,
    so several runs share one local cluster; user errors before the first run never start Ray."""
    import ray

    _STATE["held"] += 1
    try:
        yield
    finally:
        _STATE["held"] -= 1
        if not _STATE["held"] and _STATE["started"]:
            _STATE["started"] = False
            ray.shutdown()


def cluster_nodes() -> list[dict[str, float]]:
    """The alive nodes' total resources: ``[{'node_id': ..., 'CPU': n, 'GPU': g}, ...]``."""
    import ray

    nodes = []
    for node in ray.nodes():
        if node.get("Alive"):
            res = node.get("Resources", {})
            nodes.append({"node_id": node["NodeID"], "CPU": float(res.get("CPU", 0.0)), "GPU": float(res.get("GPU", 0.0))})
    return nodes


#: CPU clusters: actors of ceil(CPUs of the smallest node / this) CPUs each, so a node of that size holds at
#: most this many (each holds its own model). Independent actors beat one actor's
#: intra-op threads: 1,280 stimuli with Lite0 on 2 cores took 45 s as 2 actors x 1 thread, 54 s as 1 x 2
#: (benchmarks/classify_throughput.py, BENCHMARKS.md); the cap bounds the model copies on a big node.
CPU_ACTORS_PER_NODE = 8


def plan_actors(placement: Placement, nodes: list[dict[str, float]]) -> ActorPlan:
    """Choose the actor layout from the nodes' resources; ClusterError when the request cannot fit."""
    if not nodes:
        raise ClusterError("the Ray cluster has no alive node")
    total_cpus = sum(n["CPU"] for n in nodes)
    total_gpus = sum(n["GPU"] for n in nodes)
    gpus, cpus = placement.gpus_per_actor, placement.cpus_per_actor
    if gpus is None:
        gpus = 1.0 if total_gpus >= 1 else 0.0
    largest_gpu = max(n["GPU"] for n in nodes)
    if gpus > largest_gpu:
        raise ClusterError(
            f"asked for {gpus:g} GPU(s) per actor; the cluster has {total_gpus:g} GPU(s)"
            + (f", at most {largest_gpu:g} on one node" if total_gpus else "")
            + ". Lower --gpus-per-actor (0: CPU actors) or join a GPU cluster with --address."
        )
    if gpus > 0:
        per_node = [math.floor(n["GPU"] / gpus + 1e-9) if n["GPU"] >= gpus else 0 for n in nodes]
        default_cpus = max(1.0, min(4.0, min(n["CPU"] // max(1, k) for n, k in zip(nodes, per_node) if k)))
    else:  # CPU actors of ceil(smallest node's CPUs / CPU_ACTORS_PER_NODE) CPUs each (at least 1)
        default_cpus = max(1.0, float(math.ceil(min(n["CPU"] for n in nodes) / CPU_ACTORS_PER_NODE)))
    if cpus is None:
        cpus = default_cpus
    largest_cpu = max(n["CPU"] for n in nodes)
    if cpus > largest_cpu:
        raise ClusterError(
            f"asked for {cpus:g} CPUs per actor; the cluster has {total_cpus:g}"
            + (f" (at most {largest_cpu:g} on one node)" if len(nodes) > 1 else "")
            + ". Lower --cpus-per-actor."
        )
    capacity = 0
    for n in nodes:
        fit = math.floor(n["CPU"] / cpus + 1e-9) if cpus > 0 else 10**6
        if gpus > 0:
            fit = min(fit, math.floor(n["GPU"] / gpus + 1e-9))
        capacity += fit
    count = placement.actors or capacity
    if count > capacity:
        raise ClusterError(
            f"asked for {count} actors; the cluster fits {capacity} ({total_cpus:g} CPU, {total_gpus:g} GPU in "
            f"{len(nodes)} node(s); {cpus:g} CPU and {gpus:g} GPU per actor). Lower --actors or the per-actor resources."
        )
    device = placement.device or ("cuda" if gpus > 0 else "cpu")
    return ActorPlan(num_actors=count, gpus=float(gpus), cpus=float(cpus), device=device)
