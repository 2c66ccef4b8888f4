"""Rollout kinds: how a batch of samples becomes a `RolloutBatch` through an engine.

A kind is chosen by `rollout.kind` and built once per run around the run's engine and prompt
builder (`make_rollout`); the trainer and the held-out evaluation then call only
`rollout.generate(samples, sampling, max_input_tokens)`. Kinds register lazily, so this module
imports nothing heavy and the config can check a name against it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from qwenlong.core.registry import Registry
from qwenlong.rl.interfaces import Rollout, RolloutEngine

if TYPE_CHECKING:
    from qwenlong.rl.config import RolloutConfig
    from qwenlong.rl.prompting import PromptBuilder

RolloutFactory = Callable[["RolloutConfig", RolloutEngine, "PromptBuilder"], Rollout]
"""(rollout config, engine, prompt builder) -> the bound rollout kind."""

ROLLOUTS: Registry[RolloutFactory] = Registry("rollout kind")
ROLLOUTS.add_lazy("single_pass", "qwenlong.rl.rollout.single_pass:SinglePassRollout")
ROLLOUTS.add_lazy("memagent", "qwenlong.rl.rollout.memagent:MemAgentRollout")


def make_rollout(config: RolloutConfig, engine: RolloutEngine, prompts: PromptBuilder) -> Rollout:
    """The rollout kind `config.kind`, bound to `engine` and `prompts`."""
    return ROLLOUTS.get(config.kind)(config, engine, prompts)
