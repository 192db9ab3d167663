"""Actor layout from node resources (pipelines.ray_runtime.plan_actors), hand-computed cases, no Ray.

Issue 7 part 3: a request the cluster cannot satisfy is refused before any actor is created (a pending
actor would wait forever), with a message that names what was asked and what the cluster has.
"""

from __future__ import annotations

import pytest

from pipelines.errors import ClusterError
from pipelines.ray_runtime import Placement, plan_actors

TWO_CPUS = [{"CPU": 2.0, "GPU": 0.0}]
GPU_NODES = [{"CPU": 16.0, "GPU": 2.0}, {"CPU": 8.0, "GPU": 1.0}]


def test_cpu_machine_defaults_to_one_actor_per_core_up_to_eight_per_node() -> None:
    """Issue 20 part 2: two 1-thread actors classify faster than one 2-thread actor on 2 cores."""
    plan = plan_actors(Placement(), TWO_CPUS)
    assert (plan.num_actors, plan.gpus, plan.cpus, plan.device) == (2, 0.0, 1.0, "cpu")
    big = plan_actors(Placement(), [{"CPU": 64.0, "GPU": 0.0}, {"CPU": 20.0, "GPU": 0.0}])
    # ceil(min(64, 20) / 8) = 3 CPUs per actor: floor(64 / 3) + floor(20 / 3) = 21 + 6 actors
    assert (big.num_actors, big.cpus) == (27, 3.0)


def test_gpu_cluster_defaults_to_one_actor_per_gpu() -> None:
    plan = plan_actors(Placement(), GPU_NODES)
    # 3 GPUs; CPUs per actor: min over GPU nodes of CPU // actors there = min(16 // 2, 8 // 1) = 8, capped at 4
    assert (plan.num_actors, plan.gpus, plan.cpus, plan.device) == (3, 1.0, 4.0, "cuda")


def test_explicit_cpus_fit_floor_of_node_cpus() -> None:
    plan = plan_actors(Placement(cpus_per_actor=0.5, gpus_per_actor=0.0), TWO_CPUS)
    assert plan.num_actors == 4 and plan.cpus == 0.5


def test_too_many_cpus_per_actor_is_refused_with_what_the_cluster_has() -> None:
    with pytest.raises(ClusterError, match=r"asked for 100 CPUs per actor; the cluster has 2\. Lower --cpus-per-actor"):
        plan_actors(Placement(cpus_per_actor=100), TWO_CPUS)


def test_a_gpu_is_never_requested_from_a_cpu_cluster() -> None:
    with pytest.raises(ClusterError, match=r"asked for 1 GPU\(s\) per actor; the cluster has 0 GPU\(s\)"):
        plan_actors(Placement(gpus_per_actor=1), TWO_CPUS)


def test_more_actors_than_fit_is_refused() -> None:
    with pytest.raises(ClusterError, match=r"asked for 5 actors; the cluster fits 3"):
        plan_actors(Placement(actors=5), GPU_NODES)
