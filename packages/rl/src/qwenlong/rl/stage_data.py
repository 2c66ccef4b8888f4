"""The pool a stage's sampler draws from: its data filters, the retrospective step's pass rates
(read from a file, the previous stage's rollouts, or a pre-inference of the current policy at
this stage's lengths) and the difficulty-weighted replay of earlier stages' questions
(qwenlong.rl.filtering, qwenlong.rl.pre_inference).

The pool is written to RUN/stages/NAME/train_ids.json (ids in pool order, a replayed question
as often as it is drawn) before the stage's first step; a resumed run reads it back instead of
measuring again, and an interrupted pre-inference resumes from its own file.
"""

from __future__ import annotations

import json

from qwenlong.core.atomic_files import write_text_atomic
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import TaskSample
from qwenlong.core.seeding import derive_seed
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.filtering import read_pass_rates, replay_pool, retrospective_filter
from qwenlong.rl.interfaces import RewardCall, Rollout
from qwenlong.rl.plan import RunPlan
from qwenlong.rl.pre_inference import pre_inference_rates
from qwenlong.rl.stages import StageSpan, select_stage_data


def stage_pool(
    span: StageSpan, plan: RunPlan, config: TrainConfig, rollout: Rollout, reward: RewardCall
) -> list[TaskSample]:
    """The stage's training pool: read back from its ids file on resume, else built now (with
    the rollout engines holding the weights the stage starts from) and recorded."""
    ids_path = plan.paths.stage_ids(span.name)
    if ids_path.exists():
        by_id = {sample.id: sample for sample in plan.train}
        ids = json.loads(ids_path.read_text(encoding="utf-8"))
        return [by_id[key] for key in ids if key in by_id]
    data = span.config.data
    rates = _pass_rates(span, plan, config, rollout, reward)
    count, prompts = plan.prompts.count_tokens, plan.prompts.prompts
    kept, report = select_stage_data(plan.train, data, rates, count, prompts)
    if data.retrospective is not None and rates:
        pool = replay_pool(kept, rates, _seen_before(span, plan), data.retrospective)
        report["replayed"] = len(pool) - len(kept)
        kept = pool
    report_path = plan.paths.stage_filter_report(span.name)
    report_path.write_text(json.dumps(report, indent=1), encoding="utf-8")
    # Written aside and renamed: a resumed run trusts this file once it exists, so a kill
    # must never leave it there half-written.
    write_text_atomic(ids_path, json.dumps([sample.id for sample in kept]))
    return kept


def _pass_rates(
    span: StageSpan, plan: RunPlan, config: TrainConfig, rollout: Rollout, reward: RewardCall
) -> dict[str, float] | None:
    data, retro = span.config.data, span.config.data.retrospective
    if data.pass_rates is not None:
        return read_pass_rates(data.pass_rates)
    if retro is None:
        return None
    if retro.measure == "previous_rollouts":
        previous = plan.stages[span.index - 1]
        return read_pass_rates(plan.paths.stage_pass_rates(previous.name))
    # Measure only what could be kept: this stage's data filters, then its length limit.
    unfiltered = data.model_copy(update={"retrospective": None})
    count, prompts = plan.prompts.count_tokens, plan.prompts.prompts
    candidates, _ = select_stage_data(plan.train, unfiltered, None, count, prompts)
    measure_all = retro.model_copy(update={"keep_unmeasured": True})
    fitting = retrospective_filter(candidates, {}, measure_all, count, prompts).kept
    sampling = SamplingParams(
        max_new_tokens=span.config.max_output_tokens,
        temperature=config.rollout.temperature,
        top_p=config.rollout.top_p,
        n=retro.pass_k,
        seed=derive_seed(config.seed, "pre-inference", span.name),
    )
    return pre_inference_rates(
        fitting,
        rollout,
        reward,
        sampling,
        span.config.max_input_tokens,
        plan.paths.stage_pre_inference(span.name),
        retro.prompts_per_call,
    )


def _seen_before(span: StageSpan, plan: RunPlan) -> set[str]:
    """Ids an earlier stage of this run trained on (their pools, as recorded)."""
    seen: set[str] = set()
    for earlier in plan.stages[: span.index]:
        path = plan.paths.stage_ids(earlier.name)
        if path.exists():
            seen.update(json.loads(path.read_text(encoding="utf-8")))
    return seen
