"""The trainer's workers, started from config: policy, rollout engines, reward, reference.

The controller sees a `Policy`, a `RolloutEngine` and a `RewardCall` and never which backend
or process runs them: `policy.backend` and `rollout.backend` name entries of the backend
registries (qwenlong.rl.config), each of which starts its workers as Ray actors or, with
`ray.enabled: false`, in this process (the fast path for tests and for debugging with a plain
stack trace).

Actor CPU reservations are checked against the Ray cluster before any actor is created: a
request the cluster cannot meet would otherwise wait forever for resources.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from qwenlong.core.errors import ConfigError
from qwenlong.rl.config import POLICY_BACKENDS, ROLLOUT_BACKENDS, TrainConfig
from qwenlong.rl.interfaces import Policy, RewardCall, RolloutEngine
from qwenlong.rl.reward_worker import start_reward
from qwenlong.rl.rollout.colocation import Colocation


@dataclass
class Components:
    """The trainer's workers: what it calls, wherever they run."""

    policy: Policy
    rollout: RolloutEngine
    reward: RewardCall
    reference: Policy | None
    """A frozen copy of the starting policy for the KL term; None when loss.kl_beta is 0."""


def worker_path(path: str | Path) -> str:
    """`path` as workers must see it: absolute when it is local, since Ray actors run in their
    own working directory; a hub name (nothing on disk) is passed through."""
    local = Path(path)
    return str(local.resolve()) if local.exists() else str(path)


def start_policy(
    config: TrainConfig,
    model_path: str | Path,
    lr: float | None = None,
    placement: Colocation | None = None,
) -> Policy:
    """The policy of `policy.backend` from `model_path`; its learning rate is `lr` when given
    (the SFT warm start and control train at SFT's); its ranks in `placement`'s bundles when
    rollout engines share their GPUs."""
    return POLICY_BACKENDS.get(config.policy.backend)(
        config, worker_path(model_path), lr, placement
    )


@contextmanager
def components(
    config: TrainConfig, model_path: str | Path, judge_cache: Path, policy_lr: float | None = None
) -> Iterator[Components]:
    """Start the rollout engines, reward scoring (its judge verdicts cached in `judge_cache`,
    so a resumed run never asks twice), the policy (and the KL reference) from `model_path`;
    close them all on exit, and whatever had started when one of them fails."""
    with_reference = config.loss.kl_beta > 0
    if config.ray.enabled:
        check_resources(config, with_reference)
    model = worker_path(model_path)
    with ExitStack() as started:
        placement, layout = None, config.colocated_layout()
        if layout is not None:
            placement = Colocation.create(layout)
            started.callback(placement.remove)  # runs last: after every actor in it ended
        rollout = ROLLOUT_BACKENDS.get(config.rollout.backend)(config, model, placement)
        started.callback(rollout.close)
        cache = str(Path(judge_cache).resolve())
        reward = start_reward(
            config.reward, config.judge, cache, config.ray.enabled, config.prompts
        )
        policy = start_policy(config, model, policy_lr, placement)
        started.callback(policy.close)
        reference = None
        if with_reference:
            reference = start_policy(config, model, placement=placement)
            started.callback(reference.close)
        yield Components(policy, rollout, reward, reference)


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
