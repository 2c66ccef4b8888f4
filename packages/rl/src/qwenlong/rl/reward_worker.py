"""Where rewards are computed: a Ray actor beside the other workers, or this process.

The judge client and its verdict cache live with the reward function, not in the driver, so a
cluster run asks the judge from the workers' network. Either way the trainer sees only a
`RewardCall`: `(samples, outputs) -> RewardResult`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qwenlong.core.backends import make_chat_model
from qwenlong.core.backends.config import BackendConfig
from qwenlong.core.errors import BackendError
from qwenlong.core.prompt_set import DEFAULT_PROMPTS, PromptSet
from qwenlong.core.records import TaskSample
from qwenlong.evals.judge import LLMJudge
from qwenlong.rl.interfaces import RewardCall, RewardResult
from qwenlong.rl.rewards import RewardConfig, RewardFn


class RewardScorer:
    """The reward function (and its judge client), built where it runs: the actor's body.

    Built in `setup` rather than in the constructor, so that a bad judge config surfaces as its
    own one-line error instead of Ray's "actor died".
    """

    def __init__(
        self,
        config: RewardConfig,
        judge: BackendConfig | None,
        cache_path: str | None,
        prompts: PromptSet = DEFAULT_PROMPTS,
    ) -> None:
        self.config, self.judge, self.cache_path = config, judge, cache_path
        self.prompts = prompts
        self.reward: RewardFn | None = None

    def setup(self) -> None:
        llm_judge = None
        if self.config.use_judge and self.judge is not None:
            cache = Path(self.cache_path) if self.cache_path is not None else None
            llm_judge = LLMJudge(
                make_chat_model(self.judge), cache_path=cache, prompts=self.prompts
            )
        self.reward = RewardFn(self.config, llm_judge)

    def score(self, samples: Sequence[TaskSample], outputs: Sequence[str]) -> RewardResult:
        if self.reward is None:
            raise BackendError("reward scorer used before setup")
        return self.reward(samples, outputs)


class _RemoteReward:
    """A `RewardScorer` actor behind the plain `RewardCall`."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def __call__(self, samples: Sequence[TaskSample], outputs: Sequence[str]) -> RewardResult:
        from qwenlong.rl.ray_calls import ray_get

        return ray_get(self.actor.score.remote(list(samples), list(outputs)))


def start_reward(
    config: RewardConfig,
    judge: BackendConfig | None,
    cache_path: str,
    on_ray: bool,
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> RewardCall:
    """The reward call: a `RewardScorer` actor (reserving no CPU) on Ray, else in process; its
    judge asks with the `judge` template of `prompts`."""
    if not on_ray:
        scorer = RewardScorer(config, judge, cache_path, prompts)
        scorer.setup()
        return scorer.score
    import ray

    from qwenlong.rl.ray_calls import ray_get

    actor = ray.remote(RewardScorer).options(num_cpus=0).remote(config, judge, cache_path, prompts)
    ray_get(actor.setup.remote())
    return _RemoteReward(actor)
