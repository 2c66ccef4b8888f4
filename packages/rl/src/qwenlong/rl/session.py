"""Everything around the RL step: stages, checkpoints and resume, held-out evaluation, the
run's own part of the summary.

Resume is exact: a checkpoint holds weights, each rank's optimizer state, the sampler
position, AEPO state, the stage's pass-rate tally and the collapse detector's streaks and
changes in force; every random draw of a step is seeded from (seed, step); records the killed
run logged after its last checkpoint are dropped (qwenlong.rl.plan), since the resumed run logs
them again. A collapse (qwenlong.rl.collapse) rolls back through the same restore.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from qwenlong.core.records import TaskSample
from qwenlong.core.rundir import RunDir, read_metrics
from qwenlong.core.seeding import derive_seed
from qwenlong.rl.aepo import AepoController
from qwenlong.rl.checkpoint import Checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from qwenlong.rl.collapse import CollapseDetector, Trip
from qwenlong.rl.components import Components
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.filtering import PassRateTally
from qwenlong.rl.heldout import evaluate_run_heldout
from qwenlong.rl.metrics import plot_learning_curves
from qwenlong.rl.plan import RunPlan
from qwenlong.rl.rollout.registry import make_rollout
from qwenlong.rl.sampler import TaskBalancedSampler
from qwenlong.rl.stage_data import stage_pool
from qwenlong.rl.stages import StageSpan, start_weights
from qwenlong.rl.summary import HeldoutRecord, heldout_fields, heldout_metrics
from qwenlong.rl.weight_sync import sync_weights


class RolledBack(Exception):
    """A collapse rolled the run back to an earlier checkpoint: iterate the stages again."""


class Collapsed(Exception):
    """A collapse stopped the run; the event (qwenlong.rl.collapse) is the argument."""


def _step_of(folder: Path) -> int:
    return int(folder.name.rsplit("_", 1)[-1])


class TrainingSession:
    """The state the loop carries from step to step, and what happens between steps."""

    def __init__(self, config: TrainConfig, plan: RunPlan, parts: Components, run: RunDir) -> None:
        self.config, self.plan, self.parts, self.run = config, plan, parts, run
        self.paths = plan.paths
        self.rollout = make_rollout(config.rollout, parts.rollout, plan.prompts)
        self.step = 0
        self.aepo = AepoController(config.aepo)
        self.collapse = CollapseDetector(config.collapse)
        self._rollback_event: dict[str, Any] | None = None
        self.tally = PassRateTally()
        self.sampler: TaskBalancedSampler
        self._sampler_state: dict[str, Any] | None = None
        if plan.checkpoint is not None:
            self._restore(plan.checkpoint)
        if self.step == 0 and not self.heldout_records().get(0):
            self._evaluate(0)

    def sync_weights(self) -> None:
        """The engines take the policy's current weights."""
        sync_weights(self.parts.policy, self.parts.rollout, self.config.weight_sync.transport)

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
                self.parts.policy.load_weights(start_weights(span.config.from_checkpoint))
                self.sync_weights()
        self.sampler = TaskBalancedSampler(
            self._stage_samples(span),
            self.config.sampler,
            derive_seed(self.config.seed, "stage", span.name),
            f"stage {span.name} data",
        )
        if resumed and self._sampler_state is not None:
            self.sampler.load_state_dict(self._sampler_state)

    def end_step(self, step: int, span: StageSpan, metrics: dict[str, Any]) -> None:
        """Evaluate when due, log the step, checkpoint when due; a collapse (qwenlong.rl.collapse)
        instead logs the step and rolls back (`RolledBack`) or stops the run (`Collapsed`)."""
        trip = self.collapse.observe(step, metrics)
        if trip is not None:
            self._collapsed(trip, span, metrics)
        if self._rollback_event is not None:
            metrics.update({f"collapse/{k}": v for k, v in self._rollback_event.items()})
            self._rollback_event = None
        self.step = step
        every = self.config.heldout.every
        if step == self.plan.total_steps or (every is not None and step % every == 0):
            record = self._evaluate(step)
            if record is not None:
                metrics.update(heldout_metrics(record))
        self.run.log(step, {"stage": span.name, **metrics})
        every = self.config.checkpoint_every
        if step == span.last_step or (every is not None and step % every == 0):
            self._save(step, span)

    def end_stage(self, span: StageSpan) -> None:
        """Write the stage's pass rates: the next stage's retrospective filter reads them."""
        path = self.paths.stage_pass_rates(span.name)
        if not path.exists():
            self.tally.save(path)

    # --- end of run ---------------------------------------------------------------------

    def finish(self, sft_result: dict[str, Any] | None) -> dict[str, Any]:
        """Plots, RUN/model, and the run's summary (returned, not written); also the last
        stage's pass rates, if a kill after the final checkpoint left them unwritten."""
        if self.step == self.plan.total_steps:
            self.end_stage(self.plan.stages[-1])
        records = read_metrics(self.paths.metrics) if self.paths.metrics.exists() else []
        heldout = self.heldout_records()
        start = [{"step": 0, **heldout_metrics(heldout[0])}] if 0 in heldout else []
        curves = sorted([*start, *records], key=lambda record: record["step"])
        plot_learning_curves(curves, self.paths.plots)
        summary: dict[str, Any] = {
            "steps": self.step,
            "model": str(self._save_final_model()),
            "stages": [span.name for span in self.plan.stages],
            "final": {k: v for k, v in (records[-1] if records else {}).items() if k != "step"},
            "rl_seconds": sum(r.get("time_step") or 0.0 for r in records),
            "heldout_size": len(self.plan.heldout),
        }
        if sft_result is not None:
            summary["sft"] = sft_result
        before, after = self.heldout_ends()
        settings = self.config.heldout
        summary.update(heldout_fields(before, after, settings.temperature, settings.samples))
        return summary

    def heldout_records(self) -> dict[int, dict[str, Any]]:
        """RUN/heldout.jsonl by step."""
        path = self.paths.heldout
        return {int(r["step"]): r for r in read_metrics(path)} if path.exists() else {}

    def heldout_ends(self) -> tuple[HeldoutRecord | None, HeldoutRecord | None]:
        """The held-out records before the first step and after the last (None if absent)."""
        records = self.heldout_records()
        return records.get(0), records.get(self.plan.total_steps)

    # --- internals ----------------------------------------------------------------------

    def _save_final_model(self) -> str:
        """RUN/model: the policy in HF format, written whole and then renamed into place, so
        a folder by that name is always complete."""
        target = self.paths.model
        staging = self.paths.staging(target)
        shutil.rmtree(staging, ignore_errors=True)
        self.parts.policy.save_pretrained(staging.resolve())
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        return str(target)

    def _stage_samples(self, span: StageSpan) -> list[TaskSample]:
        """The stage's pool (qwenlong.rl.stage_data), measured with the weights it starts from."""
        return stage_pool(span, self.plan, self.config, self.rollout, self.parts.reward)

    def _collapsed(self, trip: Trip, span: StageSpan, metrics: dict[str, Any]) -> None:
        """Log the tripping step with the event, then roll back or stop."""
        target = self._healthy_checkpoint(trip) if self.collapse.can_roll_back() else None
        action = "rollback" if target is not None else "stop"
        event = self.collapse.record_trip(trip, action, target.step if target else None)
        metrics.update({f"collapse/{key}": value for key, value in event.items()})
        self.run.log(trip.step, {"stage": span.name, **metrics})
        with self.paths.collapse.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")
        if target is None:
            raise Collapsed(event)
        self._restore(target, resumed=False)
        self.run.rewind(target.step)
        self._rollback_event = event  # shown again in the first record after the rollback
        raise RolledBack(event)

    def _healthy_checkpoint(self, trip: Trip) -> Checkpoint | None:
        """The newest checkpoint written before the symptom began, if one is kept."""
        older = [p for p in list_checkpoints(self.paths.root) if _step_of(p) < trip.since]
        return load_checkpoint(older[-1], self.plan.fingerprint) if older else None

    def _restore(self, checkpoint: Checkpoint, resumed: bool = True) -> None:
        """Load a checkpoint: at the start of a resumed run (the rollback changes it recorded
        apply again), or for a rollback (the detector keeps its own, newer record)."""
        self.parts.policy.load_weights(checkpoint.weights())
        self.sync_weights()
        if checkpoint.optimizer_folder is not None:
            self.parts.policy.load_optimizer_state(checkpoint.optimizer_folder)
        if checkpoint.aepo_state is not None:
            self.aepo.load_state_dict(checkpoint.aepo_state)
        self.tally.load_state_dict(checkpoint.extra["tally"])
        self._sampler_state = checkpoint.sampler_state
        checkpoint.restore_rng()
        self.step = checkpoint.step
        if resumed and "collapse" in checkpoint.extra:
            self.collapse.load_state_dict(checkpoint.extra["collapse"])
        self._apply_rollback_changes()

    def _apply_rollback_changes(self) -> None:
        """The learning rate and AEPO switch every rollback so far asked for."""
        if self.collapse.lr_scale != 1.0:
            self.parts.policy.set_learning_rate_scale(self.collapse.lr_scale)
        if self.collapse.aepo_forced and not self.aepo.config.enabled:
            self.aepo.config = self.aepo.config.model_copy(update={"enabled": True})

    def _save(self, step: int, span: StageSpan) -> None:
        save_checkpoint(
            self.paths.root,
            step,
            self.parts.policy.export_weights(),
            self.parts.policy.save_optimizer_state,
            self.sampler.state_dict(),
            self.aepo.state_dict(),
            {
                "stage": span.name,
                "tally": self.tally.state_dict(),
                "collapse": self.collapse.state_dict(),
            },
            self.plan.fingerprint,
            config=self.config,
            keep_last=self.config.keep_checkpoints,
        )

    def _evaluate(self, step: int) -> dict[str, Any] | None:
        """Held-out record at the last stage's lengths (the same prompts every time), appended
        to RUN/heldout.jsonl."""
        if not self.plan.heldout:
            return None
        last = self.plan.stages[-1].config
        record = evaluate_run_heldout(
            self.config, self.plan.heldout, last, self.rollout, self.parts.reward
        )
        with self.paths.heldout.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, **record}) + "\n")
        return record
