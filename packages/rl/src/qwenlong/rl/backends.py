"""Which code runs the policy and the rollout engines: `policy.backend`, `rollout.backend`.

Each entry starts the run's workers from a model directory and returns them behind the
protocols (`Policy`, `RolloutEngine`); the trainer never learns which backend it got. Entries
register lazily ("module:function"), so the config can check a name without importing torch
distributed, Ray, Megatron or vLLM. A test or an extension adds its own with `register`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from qwenlong.core.registry import Registry
from qwenlong.rl.interfaces import Policy, RolloutEngine

if TYPE_CHECKING:
    from qwenlong.rl.config import TrainConfig

PolicyFactory = Callable[["TrainConfig", str, "float | None"], Policy]
"""(run config, model directory as the workers see it, learning rate or None for the
config's) -> the started policy."""

EngineFactory = Callable[["TrainConfig", str], RolloutEngine]
"""(run config, model directory as the workers see it) -> the started rollout engines."""

POLICY_BACKENDS: Registry[PolicyFactory] = Registry("policy backend")
POLICY_BACKENDS.add_lazy("torch", "qwenlong.rl.torch_rank:start_torch_policy")
POLICY_BACKENDS.add_lazy("megatron", "qwenlong.rl.megatron.policy:start_megatron_policy")

ROLLOUT_BACKENDS: Registry[EngineFactory] = Registry("rollout backend")
ROLLOUT_BACKENDS.add_lazy("hf", "qwenlong.rl.rollout.hf_group:start_hf_engines")
