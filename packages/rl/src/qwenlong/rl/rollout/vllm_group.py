"""The `vllm` entry of the rollout-engine registry: `rollout.num_workers` vLLM engines
(qwenlong.rl.rollout.vllm_engine) as Ray actors, or one in this process without Ray.

Placement (`rollout.vllm.placement`): "colocated" engines go into the bundles of the run's
placement group (qwenlong.rl.rollout.colocation), each of their workers beside a policy rank,
and sleep while it trains; "separate" engines ask for `tensor_parallel_size` whole GPUs each. Every engine gets its
own seed stream (`derive_seed(seed, "vllm-engine", i)`), so engines do not draw the same
samples for different prompts' shares; a request's own seed still fixes its samples.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from qwenlong.core.seeding import derive_seed
from qwenlong.rl.interfaces import RolloutEngine
from qwenlong.rl.rollout.engine_group import EngineGroup
from qwenlong.rl.rollout.vllm_engine import VLLMRolloutEngine, make_plan, transports_of

if TYPE_CHECKING:
    from qwenlong.rl.config import TrainConfig
    from qwenlong.rl.rollout.colocation import Colocation


def engine_gpus(config: TrainConfig) -> float:
    """GPUs each engine actor asks Ray for."""
    vllm = config.rollout.vllm
    return vllm.gpu_share if vllm.placement == "colocated" else float(vllm.tensor_parallel_size)


def start_vllm_engines(
    config: TrainConfig, model_path: str, placement: Colocation | None
) -> RolloutEngine:
    """The run's vLLM rollout engines (in `placement`'s bundles when colocated)."""
    rollout = config.rollout
    if not config.ray.enabled:
        return VLLMRolloutEngine.start(model_path, rollout.vllm, derive_seed(config.seed, "vllm"))
    factories = [
        functools.partial(
            VLLMRolloutEngine.start,
            model_path,
            rollout.vllm,
            derive_seed(config.seed, "vllm-engine", index),
        )
        for index in range(rollout.num_workers)
    ]
    return EngineGroup(
        factories,
        model_path,
        num_cpus_per_worker=rollout.num_cpus_per_worker,
        num_gpus_per_worker=engine_gpus(config),
        bucket_bytes=int(config.weight_sync.bucket_mb * 2**20),
        weight_transports=transports_of(rollout.vllm),
        transfer_plan=functools.partial(make_plan, rollout.vllm),
        actor_options=placement
        and [placement.engine_options(index) for index in range(rollout.num_workers)],
    )
