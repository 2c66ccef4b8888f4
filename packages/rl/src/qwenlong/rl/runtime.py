"""Where the trainer's parts run: Ray actors (the default) or the driver process.

The controller in `qwenlong.rl.trainer` sees a `Policy`, a `RolloutEngine` and a reward
callable and never Ray itself. On Ray, the policy is a `PolicyGroup` of N data-parallel ranks,
the rollouts a `RolloutGroup` of M engines, and rewards run in a `RewardScorer` actor (so a
judge client and its cache live beside the other workers, not in the driver). With
`ray.enabled: false` the same objects run in the driver: one policy rank, one engine, a
`RewardFn`, which is the fast path for tests and for debugging with a plain stack trace.

Actor CPU reservations are checked against the Ray cluster before any actor is created: a
request the cluster cannot meet would otherwise wait forever for resources.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwenlong.core.backends import make_chat_model
from qwenlong.core.backends.config import BackendConfig
from qwenlong.core.errors import BackendError, ConfigError
from qwenlong.core.records import TaskSample
from qwenlong.evals.judge import LLMJudge
from qwenlong.rl.config import RayConfig, TrainConfig
from qwenlong.rl.heldout import RewardCall
from qwenlong.rl.interfaces import RolloutEngine
from qwenlong.rl.ray_calls import ray_get
from qwenlong.rl.rewards import RewardConfig, RewardFn, RewardResult
from qwenlong.rl.rollout import HFRolloutEngine
from qwenlong.rl.workers import PolicyGroup, RolloutGroup

JUDGE_CACHE = "judge_cache.jsonl"
"""RUN/judge_cache.jsonl: judge verdicts, so a resumed run never asks the judge twice."""


class RewardScorer:
    """The reward function (and its judge client), built where it runs: the actor's body.

    Built in `setup` rather than in the constructor, so that a bad judge config surfaces as its
    own one-line error instead of Ray's "actor died".
    """

    def __init__(
        self, config: RewardConfig, judge: BackendConfig | None, cache_path: str | None
    ) -> None:
        self.config, self.judge, self.cache_path = config, judge, cache_path
        self.reward: RewardFn | None = None

    def setup(self) -> None:
        llm_judge = None
        if self.config.use_judge and self.judge is not None:
            cache = Path(self.cache_path) if self.cache_path is not None else None
            llm_judge = LLMJudge(make_chat_model(self.judge), cache_path=cache)
        self.reward = RewardFn(self.config, llm_judge)

    def score(self, samples: Sequence[TaskSample], outputs: Sequence[str]) -> RewardResult:
        if self.reward is None:
            raise BackendError("reward scorer used before setup")
        return self.reward(samples, outputs)


class _RemoteReward:
    """A `RewardScorer` actor behind the plain `(samples, outputs) -> RewardResult` call."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def __call__(self, samples: Sequence[TaskSample], outputs: Sequence[str]) -> RewardResult:
        return ray_get(self.actor.score.remote(list(samples), list(outputs)))


@contextmanager
def ray_session(config: RayConfig) -> Iterator[None]:
    """Ray for the duration: attach to `address`, or start a local Ray in this process.

    An already initialised Ray (a test fixture, a notebook) is used as is and left running;
    a Ray started here is shut down on exit.
    """
    if not config.enabled:
        yield
        return
    import ray

    _keep_workers_in_this_environment()
    started = False
    if not ray.is_initialized():
        if config.address is not None:
            ray.init(address=config.address, log_to_driver=False)
        else:
            ray.init(num_cpus=config.num_cpus, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def _keep_workers_in_this_environment() -> None:
    """Start Ray workers with this interpreter and environment.

    Under `uv run`, Ray's uv hook zips the working directory and starts every worker through
    `uv run` in a copy of it: relative paths break, the upload grows with the run directory,
    and each worker re-resolves the environment. The hook reads its switch once, when ray is
    imported, so the switch is turned off here unless the user set
    RAY_ENABLE_UV_RUN_RUNTIME_ENV explicitly.
    """
    if "RAY_ENABLE_UV_RUN_RUNTIME_ENV" in os.environ:
        return
    from ray._private import ray_constants

    ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = False


def check_resources(config: TrainConfig, with_reference: bool) -> None:
    """Refuse actor CPU reservations the running Ray cluster cannot hold at once."""
    import ray

    policies = 2 if with_reference else 1
    wanted = (
        policies * config.policy.num_workers * config.policy.num_cpus_per_worker
        + config.rollout.num_workers * config.rollout.num_cpus_per_worker
    )
    available = float(ray.cluster_resources().get("CPU", 0.0))
    if wanted > available:
        raise ConfigError(
            f"the actors reserve {wanted:g} CPUs (policy {config.policy.num_workers} x "
            f"{config.policy.num_cpus_per_worker:g}{' x2 with the KL reference' * with_reference}"
            f", rollout {config.rollout.num_workers} x {config.rollout.num_cpus_per_worker:g}) "
            f"but Ray has {available:g}; lower num_workers / num_cpus_per_worker or raise "
            "ray.num_cpus"
        )


def worker_path(path: str | Path) -> str:
    """`path` as Ray actors must see it: absolute when it is local, since actors run in their
    own working directory; a hub name (nothing on disk) is passed through."""
    local = Path(path)
    return str(local.resolve()) if local.exists() else str(path)


def make_policy(
    config: TrainConfig, model_path: str | Path, lr: float | None = None
) -> PolicyGroup:
    """The policy ranks (Ray actors, or one rank in this process without Ray)."""
    return PolicyGroup(
        worker_path(model_path),
        config.policy_config(lr=lr),
        config.policy.num_workers,
        num_cpus_per_worker=config.policy.num_cpus_per_worker,
        num_gpus_per_worker=config.policy.num_gpus_per_worker,
        in_process=not config.ray.enabled,
    )


@dataclass
class Components:
    """The trainer's workers: what it calls, wherever they run."""

    policy: PolicyGroup
    rollout: RolloutEngine
    reward: RewardCall
    reference: PolicyGroup | None
    """A frozen copy of the starting policy for the KL term; None when loss.kl_beta is 0."""

    def close(self) -> None:
        """Stop every actor (or free the in-process models)."""
        for part in (self.policy, self.reference, self.rollout):
            if part is not None:
                _stop(part)


@contextmanager
def components(
    config: TrainConfig, model_path: str | Path, run_path: Path, policy_lr: float | None = None
) -> Iterator[Components]:
    """Start policy, (reference,) rollout engines and reward scoring from `model_path`; the
    policy's learning rate is `policy_lr` when given (the SFT control trains at SFT's)."""
    with_reference = config.loss.kl_beta > 0
    model_path = worker_path(model_path)
    cache = str(Path(worker_path(run_path)) / JUDGE_CACHE)
    if config.ray.enabled:
        check_resources(config, with_reference)
    started: list[Any] = []
    try:
        rollout, reward = _rollout_and_reward(config, model_path, cache, started)
        policy = make_policy(config, model_path, lr=policy_lr)
        started.append(policy)
        reference = make_policy(config, model_path) if with_reference else None
        parts = Components(policy, rollout, reward, reference)
    except BaseException:
        for part in reversed(started):
            _stop(part)
        raise
    try:
        yield parts
    finally:
        parts.close()


def _rollout_and_reward(
    config: TrainConfig, model_path: str | Path, cache: str, started: list[Any]
) -> tuple[RolloutEngine, RewardCall]:
    """Rollout engines and the reward scorer; what was started is appended to `started`."""
    if not config.ray.enabled:
        engine = HFRolloutEngine(model_path, config.rollout.hf)
        started.append(engine)
        scorer = RewardScorer(config.reward, config.judge, cache)
        scorer.setup()
        return engine, scorer.score
    import ray

    group = RolloutGroup(
        model_path,
        config.rollout.hf,
        config.rollout.num_workers,
        num_cpus_per_worker=config.rollout.num_cpus_per_worker,
        num_gpus_per_worker=config.rollout.num_gpus_per_worker,
    )
    started.append(group)
    actor = ray.remote(RewardScorer).options(num_cpus=0).remote(config.reward, config.judge, cache)
    ray_get(actor.setup.remote())
    return group, _RemoteReward(actor)


def _stop(part: Any) -> None:
    """Shut down a policy or rollout group, or close an in-process engine."""
    if isinstance(part, HFRolloutEngine):
        part.close()
    else:
        part.shutdown()
