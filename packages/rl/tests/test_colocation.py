"""Colocated placement (qwenlong.rl.rollout.colocation) on a Ray that declares two GPUs: policy
rank i and engine worker i share GPU i, for a tensor-parallel engine whose workers are started
by (a stand-in for) vLLM's Ray executor, exactly as vLLM 0.33 places them: the current placement
group captured from the engine actor, `VLLM_RAY_BUNDLE_INDICES` and `VLLM_RAY_PER_WORKER_GPUS`
read from its environment. Ray only accounts GPUs, so no GPU is needed."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator

import pytest

from qwenlong.rl.config import RayConfig, TrainConfig
from qwenlong.rl.interfaces import RankLayout
from qwenlong.rl.micro_batches import MicroBatchPlanner
from qwenlong.rl.policy_group import PolicyGroup
from qwenlong.rl.ray_session import ray_session
from qwenlong.rl.rollout.colocation import Colocation, engine_bundles
from qwenlong.rl.rollout.engine_group import EngineGroup

ray = pytest.importorskip("ray")
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # actors defined here

pytestmark = pytest.mark.slow  # a Ray of its own and five actor processes: about 20 s


def colocated_config(policy_ranks: int, engines: int, tensor_parallel: int) -> TrainConfig:
    return TrainConfig(
        model="m",
        data={"train": ["d.parquet"]},
        steps=1,
        rollout={
            "backend": "vllm",
            "num_workers": engines,
            "num_cpus_per_worker": 0.25,
            "vllm": {"tensor_parallel_size": tensor_parallel, "gpu_share": 0.35},
        },
        policy={
            "num_workers": policy_ranks,
            "num_cpus_per_worker": 0.25,
            "num_gpus_per_worker": 0.6,
        },
    )


class GpuProbeRank:
    """A policy rank that only says which GPU Ray gave it."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world

    def rendezvous_address(self) -> str:
        return "unused"

    def setup(self, address: str | None) -> RankLayout:
        return RankLayout(data_parallel_rank=self.rank, data_parallel_size=self.world, reports=True)

    def gpus(self) -> list[str]:
        return [str(gpu) for gpu in ray.get_gpu_ids()]

    def close(self) -> None:
        pass


class VLLMWorkerProbe:
    def gpus(self) -> list[str]:
        return [str(gpu) for gpu in ray.get_gpu_ids()]


class RayExecutorStandIn:
    """What vLLM 0.33's Ray executor does inside the engine actor: take the placement group the
    actor runs in, and start one worker per bundle named in VLLM_RAY_BUNDLE_INDICES, each asking
    VLLM_RAY_PER_WORKER_GPUS of a GPU and no CPU."""

    def __init__(self) -> None:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        group = ray.util.get_current_placement_group()
        assert group is not None, "the engine actor must capture its placement group"
        self.bundles = [int(b) for b in os.environ["VLLM_RAY_BUNDLE_INDICES"].split(",")]
        share = float(os.environ["VLLM_RAY_PER_WORKER_GPUS"])
        self.workers = [
            ray.remote(VLLMWorkerProbe)
            .options(
                num_cpus=0,
                num_gpus=share,
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    placement_group=group, placement_group_bundle_index=bundle
                ),
            )
            .remote()
            for bundle in self.bundles
        ]

    def worker_gpus(self) -> list[list[str]]:
        return ray.get([worker.gpus.remote() for worker in self.workers])

    def close(self) -> None:
        for worker in self.workers:
            ray.kill(worker)


@pytest.fixture(scope="module")
def two_gpu_ray() -> Iterator[None]:
    """A local Ray declaring two GPUs this machine may not have."""
    with ray_session(RayConfig(num_cpus=2, num_gpus=2)):
        yield


def test_each_tensor_parallel_engine_worker_shares_its_policy_ranks_gpu(
    two_gpu_ray: None,
) -> None:
    config = colocated_config(policy_ranks=2, engines=1, tensor_parallel=2)
    placement = Colocation.create(config.colocated_layout())
    ranks = [(GpuProbeRank, (rank, 2)) for rank in range(2)]
    policy = PolicyGroup(
        ranks,
        MicroBatchPlanner(64, None),
        actor_options=[placement.rank_options(rank) for rank in range(2)],
    )
    engines = EngineGroup(
        [functools.partial(RayExecutorStandIn)],
        "m",
        actor_options=[placement.engine_options(0)],
    )
    try:
        rank_gpus = ray.get([actor.gpus.remote() for actor in policy._actors])
        (engine,) = engines._actors
        worker_gpus = ray.get(engine.__ray_call__.remote(lambda rank: rank.engine.worker_gpus()))
        assert sorted(gpu for gpus in rank_gpus for gpu in gpus) == ["0", "1"]
        assert worker_gpus == rank_gpus  # worker i on policy rank i's GPU
    finally:
        ray.get(engines._actors[0].__ray_call__.remote(lambda rank: rank.engine.close()))
        engines.close()
        policy.close()
        placement.remove()


def test_one_gpu_engines_are_their_own_worker(two_gpu_ray: None) -> None:
    config = colocated_config(policy_ranks=2, engines=2, tensor_parallel=1)
    placement = Colocation.create(config.colocated_layout())
    options = [placement.engine_options(engine) for engine in range(2)]
    assert [option["num_gpus"] for option in options] == [0.35, 0.35]
    assert all("runtime_env" not in option for option in options)
    assert engine_bundles(1, 4) == [4, 5, 6, 7]
    placement.remove()


def test_a_group_ray_cannot_hold_is_refused_in_one_line(
    two_gpu_ray: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qwenlong.core.errors import ConfigError
    from qwenlong.rl.rollout import colocation

    monkeypatch.setattr(colocation, "READY_SECONDS", 1.0)
    config = colocated_config(policy_ranks=4, engines=2, tensor_parallel=2)
    with pytest.raises(ConfigError, match=r"4 bundles of 1 GPU .*\(Ray has 2 GPUs"):
        Colocation.create(config.colocated_layout())
