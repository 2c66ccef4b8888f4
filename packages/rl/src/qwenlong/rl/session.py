"""Everything around the RL step: data and checks before compute, stages, checkpoints and
resume, held-out evaluation, the summary.

    RUN/config.yaml               resolved config
    RUN/metrics.jsonl             one record per step (qwenlong.rl.metrics)
    RUN/heldout.jsonl             one record per held-out evaluation (step 0 = before training)
    RUN/checkpoints/step_NNNNNN/  qwenlong.rl.checkpoint
    RUN/stages/NAME/              the stage's training ids, filter report and pass rates
    RUN/sft/                      the SFT warm start (qwenlong.rl.sft)
    RUN/plots/*.png               learning curves
    RUN/model/                    the final policy in HF format (for `qwenlong eval`, or as the
                                  `model` of a next run)
    RUN/summary.json              steps, final metrics, held-out reward before / after

Resume is exact: a checkpoint holds weights, optimizer, sampler position, AEPO state and the
stage's pass-rate tally; every random draw of a step is seeded from (seed, step); records the
killed run logged after its last checkpoint are dropped, since the resumed run logs them again.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwenlong.core.dataset_io import read_samples
from qwenlong.core.errors import DatasetError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import TaskSample
from qwenlong.core.rundir import RunDir, read_metrics
from qwenlong.core.tokenizer import load_tokenizer
from qwenlong.rl.aepo import AepoController
from qwenlong.rl.batching import ROLLOUTS, derive_seed
from qwenlong.rl.checkpoint import (
    Checkpoint,
    config_fingerprint,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.filtering import PassRateTally, read_pass_rates
from qwenlong.rl.heldout import (
    HeldoutResult,
    evaluate_heldout,
    gain_fields,
    heldout_sampling,
    heldout_subset,
    remove_ids,
    split_heldout,
)
from qwenlong.rl.metrics import plot_learning_curves
from qwenlong.rl.prompting import ChatEncoder, PromptBuilder
from qwenlong.rl.runtime import Components
from qwenlong.rl.sampler import TaskBalancedSampler
from qwenlong.rl.stages import (
    StageSpan,
    check_start_weights,
    plan_stages,
    select_stage_data,
    start_weights,
)

HELDOUT = "heldout.jsonl"
SUMMARY = "summary.json"
FINAL_MODEL = "model"


@dataclass
class RunPlan:
    """What the run will do, settled and checked before any model is loaded."""

    out: Path
    train: list[TaskSample]
    """Training samples (held-out ids removed)."""
    heldout: list[TaskSample]
    """The evaluated held-out prompts (empty: no held-out evaluation)."""
    stages: list[StageSpan]
    prompts: PromptBuilder
    encoder: ChatEncoder
    fingerprint: str
    checkpoint: Checkpoint | None
    """The checkpoint to resume from; None for a fresh run."""

    @property
    def total_steps(self) -> int:
        return self.stages[-1].last_step


def prepare_run(config: TrainConfig, out: Path) -> RunPlan:
    """Load and split the data, validate every stage's data and the checkpoint to resume.

    Raises before any compute: `ConfigError` for a checkpoint written by a different config,
    `DatasetError` for unreadable data, a task type the sampler balances but a stage lacks, a
    held-out set that is requested but empty.
    """

    stages = plan_stages(config.stage_list())
    fingerprint = config_fingerprint(config)
    latest = latest_checkpoint(out)
    checkpoint = load_checkpoint(latest, fingerprint, expected_config=config) if latest else None
    samples = [s for path in config.data.train for s in read_samples(path)]
    if config.data.heldout is not None:
        heldout_pool = read_samples(config.data.heldout)
        train = remove_ids(samples, heldout_pool)
    else:
        train, heldout_pool = split_heldout(samples, config.data.heldout_fraction)
    heldout = heldout_subset(heldout_pool, config.heldout.size)
    if config.heldout.size and not heldout:
        raise DatasetError(f"{config.data.heldout or 'data.train'}: the held-out split is empty")
    tokenizer = load_tokenizer(config.model, what="model")
    prompts = PromptBuilder(tokenizer)
    for span in stages:
        if span.config.from_checkpoint is not None:
            check_start_weights(span.config.from_checkpoint)
        if span.config.data.retrospective is None:
            kept, _ = select_stage_data(train, span.config.data, None, prompts.count_tokens)
            TaskBalancedSampler(kept, config.sampler, config.seed, f"stage {span.name} data")
    _trim_records(out, checkpoint.step if checkpoint is not None else 0)
    return RunPlan(
        out, train, heldout, stages, prompts, ChatEncoder(tokenizer), fingerprint, checkpoint
    )


def evaluate_plan_heldout(config: TrainConfig, plan: RunPlan, parts: Components) -> dict[str, Any]:
    """The held-out record of the rollout engines' current weights, at the last stage's
    lengths: the configured evaluation (`HeldoutResult.as_dict()`), plus under "greedy" the
    greedy one when `heldout.greedy` is set.

    Responses come from the training rollout kind, so a memory-agent run is evaluated as a
    memory agent (its final answers are rewarded) and a single-pass run on one prompt.
    """
    last = plan.stages[-1].config
    settings = config.heldout
    rollout = ROLLOUTS.get(config.rollout.kind)
    seed = derive_seed(config.seed, "heldout")

    def respond(samples: Sequence[TaskSample], sampling: SamplingParams) -> list[str]:
        batch = rollout(
            samples, parts.rollout, plan.prompts, last.max_input_tokens, sampling, config.rollout
        )
        return batch.outputs

    def run(temperature: float, samples: int) -> HeldoutResult:
        sampling = heldout_sampling(temperature, config.rollout.top_p, last, seed, samples)
        return evaluate_heldout(respond, parts.reward, plan.heldout, sampling)

    record = run(settings.temperature, settings.samples).as_dict()
    if settings.greedy:
        record["greedy"] = run(0.0, 1).as_dict()
    return record


class TrainingSession:
    """The state the loop carries from step to step, and what happens between steps."""

    def __init__(self, config: TrainConfig, plan: RunPlan, parts: Components, run: RunDir) -> None:
        self.config, self.plan, self.parts, self.run = config, plan, parts, run
        self.step = 0
        self.aepo = AepoController(config.aepo)
        self.tally = PassRateTally()
        self.sampler: TaskBalancedSampler
        self._sampler_state: dict[str, Any] | None = None
        if plan.checkpoint is not None:
            self._restore(plan.checkpoint)
        if self.step == 0 and not self._heldout_records().get(0):
            self._evaluate(0)

    # --- stages --------------------------------------------------------------------------

    def remaining_stages(self) -> list[StageSpan]:
        return [span for span in self.plan.stages if span.last_step > self.step]

    def steps_of(self, span: StageSpan) -> range:
        return range(max(span.first_step, self.step + 1), span.last_step + 1)

    def enter_stage(self, span: StageSpan) -> None:
        """Build the stage's sampler over its data; at a fresh start, load its weights."""
        resumed = span.first_step <= self.step
        if not resumed:
            previous = self.plan.stages[span.index - 1] if span.index else None
            if previous is not None and self.step == previous.last_step:
                self.end_stage(previous)
            self.tally = PassRateTally()
            if span.config.from_checkpoint is not None:
                weights = start_weights(span.config.from_checkpoint)
                self.parts.policy.load_weights(weights)
                self.parts.rollout.load_weights(weights)
        samples = self._stage_samples(span)
        self.sampler = TaskBalancedSampler(
            samples,
            self.config.sampler,
            derive_seed(self.config.seed, "stage", span.name),
            f"stage {span.name} data",
        )
        if resumed and self._sampler_state is not None:
            self.sampler.load_state_dict(self._sampler_state)

    def end_step(self, step: int, span: StageSpan, metrics: dict[str, Any]) -> None:
        """Evaluate when due, log the step, checkpoint when due."""
        self.step = step
        every = self.config.heldout.every
        if step == self.plan.total_steps or (every is not None and step % every == 0):
            record = self._evaluate(step)
            if record is not None:
                metrics.update(_heldout_metrics(record))
        self.run.log(step, {"stage": span.name, **metrics})
        every = self.config.checkpoint_every
        if step == span.last_step or (every is not None and step % every == 0):
            self._save(step, span)

    def end_stage(self, span: StageSpan) -> None:
        """Write the stage's pass rates: the next stage's retrospective filter reads them."""
        path = self._stage_dir(span) / "pass_rates.jsonl"
        if not path.exists():
            self.tally.save(path)

    # --- end of run ---------------------------------------------------------------------

    def finish(self) -> dict[str, Any]:
        """Plots and RUN/summary.json (and the last stage's pass rates, if a kill after the
        final checkpoint left them unwritten)."""
        if self.step == self.plan.total_steps:
            self.end_stage(self.plan.stages[-1])
        records = read_metrics(self.run.path) if self.run.metrics_path.exists() else []
        heldout = self._heldout_records()
        start = [{"step": 0, **_heldout_metrics(heldout[0])}] if 0 in heldout else []
        curves = sorted([*start, *records], key=lambda record: record["step"])
        plot_learning_curves(curves, self.run.path / "plots")
        final = {k: v for k, v in (records[-1] if records else {}).items() if k != "step"}
        summary: dict[str, Any] = {
            "steps": self.step,
            "model": str(self._save_final_model()),
            "stages": [span.name for span in self.plan.stages],
            "final": final,
            "rl_seconds": sum(r.get("time_step") or 0.0 for r in records),
            "heldout_size": len(self.plan.heldout),
        }
        sft_result = self.run.path / "sft" / "result.json"
        if sft_result.exists():
            summary["sft"] = json.loads(sft_result.read_text(encoding="utf-8"))
        before, after = heldout.get(0), heldout.get(self.plan.total_steps)
        if before is not None or after is not None:
            summary["heldout_temperature"] = self.config.heldout.temperature
            summary["heldout_responses_per_prompt"] = self.config.heldout.samples
        for name, record in (("before", before), ("after", after)):
            if record is not None:
                summary[f"heldout_reward_{name}"] = record["mean"]
                summary[f"heldout_reward_{name}_stderr"] = record["stderr"]
                summary[f"heldout_{name}_by_task"] = record["by_task"]
                if "greedy" in record:
                    summary[f"heldout_greedy_{name}"] = record["greedy"]["mean"]
                    summary[f"heldout_greedy_{name}_stderr"] = record["greedy"]["stderr"]
        if before is not None and after is not None:
            summary.update(gain_fields("heldout_gain", before, after))
        return self._write_summary(summary)

    def add_control(self, control: Mapping[str, Any]) -> dict[str, Any]:
        """Add the SFT control to the summary and rewrite it: its held-out reward, its gain
        over the warm start, and RL's lead over it, each a paired comparison on the same
        prompts. `control["heldout"]` is the control's held-out record, when evaluated."""
        summary = json.loads((self.run.path / SUMMARY).read_text(encoding="utf-8"))
        entry = {k: v for k, v in control.items() if k != "heldout"}
        record = control.get("heldout")
        heldout = self._heldout_records()
        before, after = heldout.get(0), heldout.get(self.plan.total_steps)
        if record is not None:
            entry.update(_heldout_metrics(record))
            if before is not None:
                entry.update(gain_fields("heldout_gain", before, record))
            if after is not None:
                summary.update(gain_fields("rl_over_control", record, after))
        summary["sft_control"] = entry
        return self._write_summary(summary)

    # --- internals ----------------------------------------------------------------------

    def _save_final_model(self) -> Path:
        """RUN/model: the policy in HF format, written whole and then renamed into place, so
        a folder by that name is always complete."""
        target = self.run.path / FINAL_MODEL
        staging = self.run.path / ".model-tmp"
        shutil.rmtree(staging, ignore_errors=True)
        self.parts.policy.save_pretrained(staging.resolve())
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        return target

    def _stage_dir(self, span: StageSpan) -> Path:
        return self.run.path_for(f"stages/{span.name}/.keep").parent

    def _stage_samples(self, span: StageSpan) -> list[TaskSample]:
        """The stage's training samples: read back from its ids file on resume, else
        filtered now (with the previous stage's pass rates) and recorded."""
        folder = self._stage_dir(span)
        ids_path = folder / "train_ids.json"
        if ids_path.exists():
            wanted = set(json.loads(ids_path.read_text(encoding="utf-8")))
            return [s for s in self.plan.train if s.id in wanted]
        data = span.config.data
        rates = None
        if data.pass_rates is not None:
            rates = read_pass_rates(data.pass_rates)
        elif data.retrospective is not None:
            previous = self.plan.stages[span.index - 1]
            rates = read_pass_rates(self._stage_dir(previous) / "pass_rates.jsonl")
        kept, report = select_stage_data(
            self.plan.train, data, rates, self.plan.prompts.count_tokens
        )
        (folder / "filter_report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
        ids_path.write_text(json.dumps([s.id for s in kept]), encoding="utf-8")
        return kept

    def _restore(self, checkpoint: Checkpoint) -> None:
        weights = list(checkpoint.weights())
        self.parts.policy.load_weights(weights)
        self.parts.rollout.load_weights(weights)
        optimizer = checkpoint.optimizer_state()
        if optimizer is not None:
            self.parts.policy.load_optimizer_state(optimizer["ranks"])
        if checkpoint.aepo_state is not None:
            self.aepo.load_state_dict(checkpoint.aepo_state)
        self.tally.load_state_dict(checkpoint.extra["tally"])
        self._sampler_state = checkpoint.sampler_state
        checkpoint.restore_rng()
        self.step = checkpoint.step

    def _save(self, step: int, span: StageSpan) -> None:
        save_checkpoint(
            self.run.path,
            step,
            self.parts.policy.export_weights(),
            {"ranks": self.parts.policy.optimizer_state()},
            self.sampler.state_dict(),
            self.aepo.state_dict(),
            {"stage": span.name, "tally": self.tally.state_dict()},
            self.plan.fingerprint,
            config=self.config,
            keep_last=self.config.keep_checkpoints,
        )

    def _evaluate(self, step: int) -> dict[str, Any] | None:
        """Held-out record at the last stage's lengths (the same prompts every time), appended
        to RUN/heldout.jsonl."""
        if not self.plan.heldout:
            return None
        record = evaluate_plan_heldout(self.config, self.plan, self.parts)
        with (self.run.path / HELDOUT).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, **record}) + "\n")
        return record

    def _heldout_records(self) -> dict[int, dict[str, Any]]:
        path = self.run.path / HELDOUT
        return {int(r["step"]): r for r in read_metrics(path)} if path.exists() else {}

    def _write_summary(self, summary: dict[str, Any]) -> dict[str, Any]:
        text = json.dumps(summary, indent=1, allow_nan=False, default=_json_default)
        (self.run.path / SUMMARY).write_text(text + "\n", encoding="utf-8")
        return summary


def _heldout_metrics(record: Mapping[str, Any]) -> dict[str, Any]:
    """The figures of a held-out record that go into a metrics line."""
    metrics = {"heldout_reward": record["mean"], "heldout_reward_stderr": record["stderr"]}
    if "greedy" in record:
        metrics["heldout_greedy"] = record["greedy"]["mean"]
        metrics["heldout_greedy_stderr"] = record["greedy"]["stderr"]
    return metrics


def _json_default(value: Any) -> Any:
    raise TypeError(f"summary value {value!r} is not JSON-serialisable")


def _trim_records(out: Path, step: int) -> None:
    """Drop records of steps after `step` from RUN/metrics.jsonl and RUN/heldout.jsonl: the
    killed run logged them after its last checkpoint, and the resumed run logs them again."""
    for name in ("metrics.jsonl", HELDOUT):
        path = out / name
        if not path.exists():
            continue
        kept = [r for r in read_metrics(path) if int(r["step"]) <= step]
        path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
