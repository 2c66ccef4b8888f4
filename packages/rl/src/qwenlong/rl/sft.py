"""SFT warm start: cross-entropy on the synthesized answers, so RL starts from a rewardable model.

A randomly initialised tiny model never writes "Therefore, the answer is ...", so every reward
is 0, every group has zero variance and GRPO has nothing to learn from. A short supervised phase
on the training data's own answers, written exactly in the form the reward reads
(qwenlong.rl.sft_data), gives RL a partly competent start.

The SFT control answers the question the warm start raises: is RL better than spending the same
time on more SFT? It continues SFT from the warm start (weights and optimizer state) for RL's
wall time and is evaluated on the same held-out prompts.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from qwenlong.core.errors import ConfigError
from qwenlong.core.records import TaskSample
from qwenlong.core.rundir import RunDir
from qwenlong.core.seeding import derive_seed
from qwenlong.rl.components import components, start_policy
from qwenlong.rl.config import SFTConfig, TrainConfig
from qwenlong.rl.heldout import evaluate_run_heldout
from qwenlong.rl.interfaces import Policy, StepStats
from qwenlong.rl.plan import RunPlan
from qwenlong.rl.prompting import ChatEncoder
from qwenlong.rl.rollout.registry import make_rollout
from qwenlong.rl.sampler import SamplerConfig, TaskBalancedSampler
from qwenlong.rl.sft_data import SFT_EXAMPLES, ExampleSource, sft_batch
from qwenlong.rl.stages import select_stage_data
from qwenlong.rl.weight_sync import sync_weights


@dataclass
class SFTResult:
    """What a run of SFT steps did."""

    steps: int
    seconds: float
    final_loss: float
    tokens: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WarmStart:
    """The model RL starts from and what the warm start did (None without one)."""

    model: str
    result: dict[str, Any] | None


def sft_warm_start(
    config: SFTConfig,
    policy: Policy,
    samples: Sequence[TaskSample],
    source: ExampleSource,
    encoder: ChatEncoder,
    *,
    sampler: SamplerConfig,
    seed: int,
    log: Callable[[int, Mapping[str, Any]], None] | None = None,
    steps: int | None = None,
    time_budget_s: float | None = None,
) -> SFTResult:
    """Run `steps` (default `config.steps`) SFT steps, or fewer when `time_budget_s` runs out.

    Batches of `config.batch_size` samples come from the task-balanced sampler (same task
    list as RL), so every task is learned; `source` makes them into examples (one per sample
    in single pass, one per memory step and answer for the memory agent). `log(step, metrics)`
    receives the step's loss, grad norm and token count every `config.log_every` steps and at
    the last one.
    """
    usable = [s for s in samples if source.usable(s)]
    draw = TaskBalancedSampler(
        usable, sampler.model_copy(update={"batch_size": config.batch_size}), seed, "sft data"
    )
    total = steps if steps is not None else config.steps
    start = time.perf_counter()
    stats: StepStats | None = None
    tokens, done, logged = 0, 0, 0
    for step in range(1, total + 1):
        if time_budget_s is not None and time.perf_counter() - start >= time_budget_s:
            break
        batch = sft_batch(source.examples(draw.next_batch()), encoder, config.think)
        stats = policy.sft_step(batch, int(batch.loss_mask.sum()))
        tokens, done = tokens + stats.tokens, step
        if log is not None and step % config.log_every == 0:
            log(step, _record(stats, tokens, time.perf_counter() - start))
            logged = step
    elapsed = time.perf_counter() - start
    if log is not None and stats is not None and logged != done:
        log(done, _record(stats, tokens, elapsed))
    return SFTResult(done, elapsed, stats.loss if stats is not None else float("nan"), tokens)


def _record(stats: StepStats, tokens: int, elapsed: float) -> dict[str, Any]:
    return {
        "loss": stats.loss,
        "grad_norm": stats.grad_norm,
        "tokens": stats.tokens,
        "loss_tokens": stats.loss_tokens,
        "elapsed_s": elapsed,
        "tokens_per_s": tokens / elapsed if elapsed > 0 else None,
    }


def warm_start(config: TrainConfig, plan: RunPlan) -> WarmStart:
    """The model RL starts from: `config.model`, or RUN/sft/model after the warm start.

    The warm start runs only on a fresh run without a finished one (RUN/sft/model appears
    last, renamed into place, so its presence means done); a run resumed from an RL checkpoint
    takes its weights from the checkpoint whatever this returns.
    """
    sft, paths = config.sft, plan.paths
    if sft is None:
        return WarmStart(config.model, None)
    if paths.sft_model.is_dir():
        return WarmStart(str(paths.sft_model), _read_json(paths.sft_result))
    if plan.checkpoint is not None:
        return WarmStart(config.model, None)
    shutil.rmtree(paths.sft, ignore_errors=True)
    policy = start_policy(config, config.model, lr=sft.lr)
    staging = paths.staging(paths.sft_model)
    try:
        with RunDir(paths.sft) as run:
            result = _run_sft(config, sft, plan, policy, run, "sft", None)
        policy.save_pretrained(staging.resolve())
        policy.save_optimizer_state(paths.sft_optimizer.resolve())
    finally:
        policy.close()
    paths.sft_result.write_text(json.dumps(result.as_dict(), indent=1), encoding="utf-8")
    staging.rename(paths.sft_model)
    return WarmStart(str(paths.sft_model), result.as_dict())


def run_sft_control(config: TrainConfig, plan: RunPlan, budget_s: float) -> dict[str, Any]:
    """Continue SFT from the warm start for `budget_s` (RL's wall time); its held-out record.

    Starts from RUN/sft/model with the warm start's optimizer state, so the control is "the
    same compute spent on more SFT" rather than a restart. It runs on workers of its own,
    started once RL's are stopped: on a machine whose CPUs RL's actors reserved, a third
    actor would wait for them forever.
    """
    sft, paths = config.sft, plan.paths
    if sft is None:
        raise ConfigError("the SFT control needs an sft section")
    shutil.rmtree(paths.control, ignore_errors=True)
    with components(config, paths.sft_model, paths.judge_cache, policy_lr=sft.lr) as parts:
        parts.policy.load_optimizer_state(paths.sft_optimizer.resolve())
        with RunDir(paths.control) as run:
            result = _run_sft(config, sft, plan, parts.policy, run, "sft-control", budget_s)
        record: dict[str, Any] = {"budget_s": budget_s, **result.as_dict()}
        if plan.heldout:
            sync_weights(parts.policy, parts.rollout, config.weight_sync.transport)
            rollout = make_rollout(config.rollout, parts.rollout, plan.prompts)
            heldout = evaluate_run_heldout(
                config, plan.heldout, plan.stages[-1].config, rollout, parts.reward
            )
            paths.control_heldout.write_text(json.dumps(heldout), encoding="utf-8")
            record["heldout"] = heldout
    return record


def _run_sft(
    config: TrainConfig,
    sft: SFTConfig,
    plan: RunPlan,
    policy: Policy,
    run: RunDir,
    stream: str,
    budget: float | None,
) -> SFTResult:
    """SFT on the first stage's data (its static filters), at its input limit; with a time
    budget the step count is open-ended."""
    first = plan.stages[0].config
    data = first.data.model_copy(update={"retrospective": None, "pass_rates": None})
    count, prompts = plan.prompts.count_tokens, plan.prompts.prompts
    samples, _ = select_stage_data(plan.train, data, None, count, prompts)
    limit = sft.max_input_tokens or first.max_input_tokens
    source = SFT_EXAMPLES.get(config.rollout.kind)(config, plan.prompts, limit)
    return sft_warm_start(
        sft,
        policy,
        samples,
        source,
        plan.encoder,
        sampler=config.sampler,
        seed=derive_seed(config.seed, stream),
        log=run.log,
        steps=None if budget is None else 2**62,
        time_budget_s=budget,
    )


def _read_json(path: Any) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
