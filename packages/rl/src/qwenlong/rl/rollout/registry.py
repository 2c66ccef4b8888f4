"""Binding a rollout kind to the run's engine and prompt builder.

A kind is chosen by `rollout.kind` (the `ROLLOUTS` registry beside the config that checks the
name, qwenlong.rl.config) and built once per run (`make_rollout`); the trainer and the held-out
evaluation then call only `rollout.generate(samples, sampling, max_input_tokens)`.
"""

from __future__ import annotations

from qwenlong.rl.config import ROLLOUTS, RolloutConfig
from qwenlong.rl.interfaces import Rollout, RolloutEngine
from qwenlong.rl.prompting import PromptBuilder


def make_rollout(config: RolloutConfig, engine: RolloutEngine, prompts: PromptBuilder) -> Rollout:
    """The rollout kind `config.kind`, bound to `engine` and `prompts`."""
    return ROLLOUTS.get(config.kind)(config, engine, prompts)
