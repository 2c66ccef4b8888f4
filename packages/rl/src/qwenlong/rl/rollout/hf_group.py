"""The `hf` entry of the rollout-engine registry: HF engines (qwenlong.rl.rollout.hf_engine)
in this process without Ray, else as a group of Ray actors (qwenlong.rl.rollout.engine_group)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qwenlong.core.backends.config import HFBackendConfig
from qwenlong.core.errors import ConfigError
from qwenlong.rl.interfaces import RolloutEngine
from qwenlong.rl.rollout.engine_group import EngineGroup
from qwenlong.rl.rollout.hf_engine import HFRolloutEngine

if TYPE_CHECKING:
    from qwenlong.rl.config import TrainConfig
    from qwenlong.rl.rollout.colocation import Colocation


class HFRolloutGroup(EngineGroup):
    """`num_workers` HF engines (qwenlong.rl.rollout.hf_engine) as Ray actors."""

    def __init__(
        self,
        model_path: str | Path,
        config: HFBackendConfig = HFBackendConfig(),
        num_workers: int = 1,
        **options: Any,
    ) -> None:
        if num_workers < 1:
            raise ConfigError(f"rollout group: num_workers must be >= 1, got {num_workers}")
        factory = functools.partial(HFRolloutEngine, str(model_path), config)
        super().__init__([factory] * num_workers, str(model_path), **options)


def start_hf_engines(
    config: TrainConfig, model_path: str, placement: Colocation | None
) -> RolloutEngine:
    """The `hf` entry of the rollout-engine registry: one engine in this process without Ray,
    else `rollout.num_workers` actors. HF engines are never placed (`placement` is None)."""
    rollout = config.rollout
    if not config.ray.enabled:
        return HFRolloutEngine(model_path, rollout.hf)
    return HFRolloutGroup(
        model_path,
        rollout.hf,
        rollout.num_workers,
        num_cpus_per_worker=rollout.num_cpus_per_worker,
        num_gpus_per_worker=rollout.num_gpus_per_worker,
        bucket_bytes=int(config.weight_sync.bucket_mb * 2**20),
    )
