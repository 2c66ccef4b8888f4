"""The RL loop of QwenLong-L1.5 (RECIPE.md section 2), as a single controller.

    for each stage, for each step:
        batch    = sampler.next_batch()                 task-balanced (Sec. 4.2)
        groups   = rollout.generate(prompts, n=G)       single pass or memory agent (rollout.kind)
        rewards  = reward(groups)                       rule, then judge where it fails
        adv      = advantages(rewards, groups, tasks)   Eq.7, task-specific std, per trajectory
        stats    = policy.forward_logprobs(packed, mask) response tokens' log-probs, entropy
        keep     = AEPO (Eq.11) and negative-gradient clipping (Eq.8-9)
        policy.train_step(packed, adv, keep)            token-level loss over the global batch (Eq.4)
        rollout.load_weights(policy.export_weights())   sync

Everything around the step (stages, checkpoints, resume, held-out evaluation, the summary)
lives in `qwenlong.rl.session`; where the workers run, in `qwenlong.rl.runtime`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.rundir import RunDir
from qwenlong.rl.advantages import compute_advantages
from qwenlong.rl.aepo import AepoController, batch_entropy
from qwenlong.rl.batching import (
    ROLLOUTS,
    derive_seed,
    minibatches,
    to_tokens,
    token_positions,
)
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.interfaces import PackedBatch, Policy, PolicyUpdate, StepStats, TokenStats
from qwenlong.rl.masks import negative_gradient_mask
from qwenlong.rl.metrics import PhaseTimer, step_metrics, timing_metrics
from qwenlong.rl.runtime import Components, components, ray_session
from qwenlong.rl.session import TrainingSession, prepare_run
from qwenlong.rl.sft import run_sft_control, warm_start_model
from qwenlong.rl.stages import StageConfig


def train(config: TrainConfig, out_dir: str | Path) -> dict[str, Any]:
    """Run the RL recipe `config` into `out_dir`, resuming from its latest checkpoint.

    Returns the summary also written to RUN/summary.json. Every check on the config, the data
    and the checkpoint to resume runs before any model is loaded.
    """
    plan = prepare_run(config, Path(out_dir))
    with RunDir(plan.out, config.logging) as run, ray_session(config.ray):
        run.save_config(config)
        start_model = warm_start_model(config, plan)
        with components(config, start_model, run.path) as parts:
            session = TrainingSession(config, plan, parts, run)
            for span in session.remaining_stages():
                session.enter_stage(span)
                for step in session.steps_of(span):
                    metrics = rl_step(step, span.config, session, parts, config)
                    session.end_step(step, span, metrics)
                session.end_stage(span)
            summary = session.finish()
        if config.sft is not None and config.sft.control:
            summary = session.add_control(run_sft_control(config, plan, summary))
    return summary


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
    rollout = ROLLOUTS.get(config.rollout.kind)
    with timer.phase("generate"):
        batch = rollout(
            samples,
            parts.rollout,
            session.plan.prompts,
            stage.max_input_tokens,
            rollout_sampling(config, stage, step),
            config.rollout,
        )
    with timer.phase("score"):
        scored = parts.reward(batch.samples, batch.outputs)
        advantages = compute_advantages(
            scored.rewards, batch.group_ids, batch.task_ids, config.advantage
        )
    with timer.phase("train"):
        # Response tokens only: nothing downstream reads a prompt token's log-prob or entropy,
        # and on long prompts the output head and full-vocabulary entropy dominate this pass.
        stats = parts.policy.forward_logprobs(batch.packed, batch.packed.loss_mask)
        entropy = batch_entropy(
            stats.entropy, batch.packed.sequence_index(), batch.packed.loss_mask
        )
        session.aepo.update(entropy)
        # A trajectory's advantage goes to each of its steps (memory agent, RECIPE.md sec. 3).
        update = policy_update(
            batch.packed, batch.per_sequence(advantages), stats, session.aepo, parts, config
        )
        trained = update_policy(parts.policy, batch.packed, update, config, step)
    with timer.phase("sync"):
        parts.rollout.load_weights(parts.policy.export_weights())
    session.tally.add([s.id for s in batch.samples], scored.correct.tolist())
    return {
        **step_metrics(
            batch, scored.rewards, scored.correct, advantages, update.token_mask, entropy, trained
        ),
        **session.aepo.log_fields(),
        **timing_metrics(timer, batch.packed.num_tokens),
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


def policy_update(
    packed: PackedBatch,
    advantages: Tensor,
    stats: TokenStats,
    aepo: AepoController,
    parts: Components,
    config: TrainConfig,
) -> PolicyUpdate:
    """The update of the whole batch: per-token advantages and the tokens that train.

    A token trains when it is a response token, its sequence survives AEPO (Eq.11: while the
    controller is active, negative-advantage sequences are dropped) and negative-gradient
    clipping keeps it (Eq.8-9). `global_tokens` counts those tokens over the whole batch, the
    denominator of the token-level loss (Eq.4). Old log-probs are passed only when the batch
    gets several updates (off-policy); reference log-probs only when the KL term is on.
    """
    seq_index, response = packed.sequence_index(), packed.loss_mask
    advantages_tok = to_tokens(advantages, packed) * response
    keep_seq = to_tokens(aepo.mask(advantages), packed)
    clip_keep = negative_gradient_mask(
        advantages_tok, stats.entropy, seq_index, response, config.negative_clip
    )
    token_mask = response & keep_seq & clip_keep
    reference = parts.reference.forward_logprobs(packed, response) if parts.reference else None
    return PolicyUpdate(
        advantages=advantages_tok,
        token_mask=token_mask,
        old_logprobs=stats.logprobs if config.updates_per_batch > 1 else None,
        ref_logprobs=reference.logprobs if reference is not None else None,
        global_tokens=int(token_mask.sum()),
    )


def update_policy(
    policy: Policy, packed: PackedBatch, update: PolicyUpdate, config: TrainConfig, step: int
) -> StepStats | None:
    """`config.updates_per_batch` optimizer steps over disjoint mini-batches of the sequences.

    One update (the paper) trains on the whole batch with `update` as is. Several split the
    sequences into shuffled mini-batches (seeded by (seed, step)); each is its own optimizer
    step normalised by its own token count, with the old log-probs taken before the first.
    Mini-batches left without a loss token are skipped; None when nothing was trained.
    Returns the mean loss and grad norm over the updates and the summed token counts.
    """
    if config.updates_per_batch == 1:
        return policy.train_step(packed, update) if update.global_tokens else None
    generator = torch.Generator().manual_seed(derive_seed(config.seed, "minibatch", step))
    results = []
    for sequences in minibatches(packed.num_sequences, config.updates_per_batch, generator):
        positions = token_positions(packed, sequences)
        mask = update.token_mask[positions]
        if not bool(mask.any()):
            continue
        part = PolicyUpdate(
            advantages=update.advantages[positions],
            token_mask=mask,
            old_logprobs=_cut(update.old_logprobs, positions),
            ref_logprobs=_cut(update.ref_logprobs, positions),
            global_tokens=int(mask.sum()),
        )
        results.append(policy.train_step(packed.select(sequences), part))
    return _mean_stats(results) if results else None


def _cut(values: Tensor | None, positions: Tensor) -> Tensor | None:
    return None if values is None else values[positions]


def _mean_stats(results: list[StepStats]) -> StepStats:
    count = len(results)
    keys = {key for result in results for key in result.extra}
    return StepStats(
        loss=sum(r.loss for r in results) / count,
        grad_norm=sum(r.grad_norm for r in results) / count,
        tokens=sum(r.tokens for r in results),
        loss_tokens=sum(r.loss_tokens for r in results),
        extra={k: sum(r.extra.get(k, 0.0) for r in results) / count for k in sorted(keys)},
    )
