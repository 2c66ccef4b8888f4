"""The RL loop of QwenLong-L1.5 (RECIPE.md section 2), as a single controller.

    for each stage, for each step:
        batch    = sampler.next_batch()                 task-balanced (Sec. 4.2)
        groups   = rollout.generate(prompts, n=G)       single pass or memory agent (rollout.kind);
                                                        colocated engines then sleep
        rewards  = reward(groups)                       rule, then judge where it fails
                                                        (+ DAPO's soft overlong penalty, if set)
        adv      = advantages(rewards, groups, tasks)   Eq.7, task-specific std, per trajectory
        stats    = policy.forward_logprobs(packed, mask) response tokens' log-probs, entropy
                                                        (on-policy: the hf engine's, no pass)
        keep     = AEPO (Eq.11) and negative-gradient clipping (Eq.8-9); the engine/policy
                   log-prob mismatch logged, optionally corrected (rollout_correction)
        policy.train_step(packed, adv, keep)            token-level loss over the global batch (Eq.4)
        sync_weights(policy, engines)                   qwenlong.rl.weight_sync; engines wake
        watch(metrics)                                  a collapse rolls back or stops the run

Everything around the step (stages, checkpoints, resume, held-out evaluation) lives in
`qwenlong.rl.session`; which tokens train, in `qwenlong.rl.updates`; where the workers run,
in `qwenlong.rl.components`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.run_lock import RunLock
from qwenlong.core.rundir import RunDir
from qwenlong.core.seeding import derive_seed
from qwenlong.rl.advantages import compute_advantages
from qwenlong.rl.aepo import batch_entropy
from qwenlong.rl.components import Components, components
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.metrics import PhaseTimer, decision_metrics, step_metrics, timing_metrics
from qwenlong.rl.overlong import shaped_rewards
from qwenlong.rl.plan import prepare_run
from qwenlong.rl.ray_session import ray_session
from qwenlong.rl.rollout.batch import RolloutBatch
from qwenlong.rl.rollout_correction import mismatch_metrics
from qwenlong.rl.rollout_stats import rollout_token_stats
from qwenlong.rl.session import Collapsed, RolledBack, TrainingSession
from qwenlong.rl.sft import run_sft_control, warm_start
from qwenlong.rl.stages import StageConfig
from qwenlong.rl.summary import with_control, write_summary
from qwenlong.rl.updates import policy_update, update_policy


def train(config: TrainConfig, out_dir: str | Path) -> dict[str, Any]:
    """Run the RL recipe `config` into `out_dir`, resuming from its latest checkpoint.

    Returns the summary also written to RUN/summary.json. Every check on the config, the data
    and the checkpoint to resume runs before any model is loaded, under the folder's lock
    (qwenlong.core.run_lock): a second run into the same folder is refused.
    """
    with RunLock(Path(out_dir)):
        return _train(config, Path(out_dir))


def _train(config: TrainConfig, out_dir: Path) -> dict[str, Any]:
    """The run itself, with the folder locked."""
    plan = prepare_run(config, out_dir)
    with RunDir(plan.out, config.logging) as run, ray_session(config.ray):
        run.save_config(config)
        start = warm_start(config, plan)
        with components(config, start.model, plan.paths.judge_cache) as parts:
            session = TrainingSession(config, plan, parts, run)
            collapse = run_stages(session, parts, config)
            summary = session.finish(start.result)
            summary["collapse"] = session.collapse.trips
            if collapse is not None:
                summary["stopped"] = collapse
        if config.sft is not None and config.sft.control:
            control = run_sft_control(config, plan, float(summary["rl_seconds"]))
            summary = with_control(summary, control, *session.heldout_ends())
        write_summary(plan.paths.summary, summary)
    return summary


def run_stages(
    session: TrainingSession, parts: Components, config: TrainConfig
) -> dict[str, Any] | None:
    """Every remaining step of every stage. A collapse (qwenlong.rl.collapse) that rolled the
    run back starts the iteration again from the restored step; one that stopped the run is
    returned (None when the run went to its end)."""
    while True:
        try:
            for span in session.remaining_stages():
                session.enter_stage(span)
                for step in session.steps_of(span):
                    metrics = rl_step(step, span.config, session, parts, config)
                    session.end_step(step, span, metrics)
                session.end_stage(span)
            return None
        except RolledBack:
            continue
        except Collapsed as stopped:
            return stopped.args[0]


def rl_step(
    step: int,
    stage: StageConfig,
    session: TrainingSession,
    parts: Components,
    config: TrainConfig,
) -> dict[str, Any]:
    """One rollout batch and its policy update(s); returns the step's metrics."""
    timer = PhaseTimer()
    samples = session.sampler.next_batch()
    with timer.phase("generate"):
        batch = session.rollout.generate(
            samples, rollout_sampling(config, stage, step), stage.max_input_tokens
        )
        session.rollout.engine.release_memory()  # colocated engines sleep while the policy trains
    with timer.phase("score"):
        scored = parts.reward(batch.samples, batch.outputs)
        lengths, truncated = batch.response_lengths(), batch.truncated()
        # DAPO's soft overlong punishment, when configured (qwenlong.rl.overlong).
        rewards = shaped_rewards(scored.rewards, lengths, stage.max_output_tokens, config.overlong)
        advantages = compute_advantages(rewards, batch.group_ids, batch.task_ids, config.advantage)
    with timer.phase("train"):
        # Strictly on-policy the hf engine's log-probs and entropies are the policy's own
        # (qwenlong.rl.rollout_stats); otherwise a no-grad pass, over response tokens only:
        # nothing downstream reads a prompt token's, and on long prompts the output head and
        # full-vocabulary entropy would dominate it.
        from_rollout = rollout_token_stats(batch, config)
        stats = from_rollout or parts.policy.forward_logprobs(batch.packed, batch.packed.loss_mask)
        entropy = batch_entropy(
            stats.entropy,
            batch.packed.sequence_index(),
            batch.packed.loss_mask,
            config.aepo.entropy_mean,
        )
        session.aepo.update(entropy)
        # A trajectory's advantage goes to each of its steps (memory agent, RECIPE.md sec. 3).
        groups, cut = batch.per_sequence(batch.group_ids), batch.per_sequence(truncated)
        update = policy_update(
            batch.packed,
            batch.per_sequence(advantages),
            stats,
            session.aepo,
            config,
            parts.reference,
            batch.rollout_logprobs,
            rewards=batch.per_sequence(scored.rewards),
            groups=groups,
            truncated=cut,
        )
        trained = update_policy(parts.policy, batch.packed, update, config, step, groups, cut)
    with timer.phase("sync"):
        session.sync_weights()
        session.rollout.engine.reclaim_memory()
    session.tally.add([s.id for s in batch.samples], scored.correct.tolist())
    return {
        **step_metrics(
            batch, scored.rewards, scored.correct, advantages, update.token_mask, entropy, trained
        ),
        **decision_metrics(scored, truncated, rewards - scored.rewards),
        **session.aepo.log_fields(),
        **timing_metrics(timer, batch.packed.num_tokens),
        **engine_mismatch(
            batch, stats.logprobs if from_rollout is None else trained and trained.logprobs
        ),
    }


def rollout_sampling(config: TrainConfig, stage: StageConfig, step: int) -> SamplingParams:
    """G samples per prompt at the rollout temperature, seeded by (seed, step)."""
    return SamplingParams(
        max_new_tokens=stage.max_output_tokens,
        temperature=config.rollout.temperature,
        top_p=config.rollout.top_p,
        n=config.rollout.group_size,
        seed=derive_seed(config.seed, "rollout", step),
        logprobs=True,
    )


def engine_mismatch(batch: RolloutBatch, policy_logprobs: Tensor | None) -> dict[str, float]:
    """The engine's log-probs of the sampled tokens against the policy's, every step (empty
    when either is missing): qwenlong.rl.rollout_correction. The policy's come from its no-grad
    pass, or, when the rollout stood in for that pass, from the training forward (NaN on the
    tokens it did not train)."""
    if batch.rollout_logprobs is None or policy_logprobs is None:
        return {}
    return mismatch_metrics(policy_logprobs, batch.rollout_logprobs, batch.packed.loss_mask)
