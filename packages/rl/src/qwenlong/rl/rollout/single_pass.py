"""Single-pass rollouts: one prompt holding the (middle-truncated) document, G responses."""

from __future__ import annotations

from collections.abc import Sequence

from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import TaskSample
from qwenlong.rl.config import RolloutConfig
from qwenlong.rl.interfaces import RolloutEngine
from qwenlong.rl.prompting import PromptBuilder
from qwenlong.rl.rollout.batch import RolloutBatch, StepSequence


class SinglePassRollout:
    """`rollout.kind: single_pass`: each trajectory is one sequence."""

    def __init__(
        self, config: RolloutConfig, engine: RolloutEngine, prompts: PromptBuilder
    ) -> None:
        self.config, self.engine, self.prompts = config, engine, prompts

    def generate(
        self, samples: Sequence[TaskSample], sampling: SamplingParams, max_input_tokens: int
    ) -> RolloutBatch:
        """`sampling.n` responses to each sample's prompt, its document cut to the limit."""
        conversations = self.prompts.conversations(samples, max_input_tokens)
        groups = self.engine.generate(conversations, sampling)
        prompt_ids = self.engine.prompt_ids(conversations)
        trajectories = [
            [[StepSequence(list(prompt_ids[b]), completion)] for completion in group]
            for b, group in enumerate(groups)
        ]
        return RolloutBatch.from_trajectories(samples, trajectories)
