"""What an RL run will do and where it keeps everything, settled before any model is loaded.

    RUN/config.yaml               resolved config (qwenlong.core.rundir)
    RUN/metrics.jsonl             one record per step (qwenlong.rl.metrics)
    RUN/heldout.jsonl             one record per held-out evaluation (step 0 = before training)
    RUN/checkpoints/step_NNNNNN/  qwenlong.rl.checkpoint
    RUN/stages/NAME/              the stage's training ids, filter report and pass rates
    RUN/sft/                      the SFT warm start (qwenlong.rl.sft): model/, optimizer/,
                                  result.json, metrics.jsonl
    RUN/sft_control/              the SFT control: metrics.jsonl, heldout.json
    RUN/plots/*.png               learning curves
    RUN/model/                    the final policy in HF format
    RUN/summary.json              steps, final metrics, held-out reward before / after

Every path of the run is named here once (`RunPaths`); the modules that write them import it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from qwenlong.core.atomic_files import write_text_atomic
from qwenlong.core.dataset_io import read_samples
from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.core.rundir import read_metrics
from qwenlong.core.tokenizer import load_tokenizer
from qwenlong.rl.checkpoint import (
    Checkpoint,
    config_fingerprint,
    latest_checkpoint,
    load_checkpoint,
)
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.heldout import heldout_subset, remove_ids, split_heldout
from qwenlong.rl.prompting import ChatEncoder, PromptBuilder
from qwenlong.rl.sampler import TaskBalancedSampler
from qwenlong.rl.stages import StageSpan, check_start_weights, plan_stages, select_stage_data


@dataclass(frozen=True)
class RunPaths:
    """Every file and folder of a run directory."""

    root: Path

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def heldout(self) -> Path:
        return self.root / "heldout.jsonl"

    @property
    def collapse(self) -> Path:
        """Every collapse trip and what was done about it (qwenlong.rl.collapse)."""
        return self.root / "collapse.jsonl"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def model(self) -> Path:
        """The final policy in HF format; appears whole (written aside, then renamed)."""
        return self.root / "model"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def judge_cache(self) -> Path:
        return self.root / "judge_cache.jsonl"

    @property
    def sft(self) -> Path:
        return self.root / "sft"

    @property
    def sft_model(self) -> Path:
        """The warm-started policy; its presence means the warm start is done."""
        return self.sft / "model"

    @property
    def sft_result(self) -> Path:
        return self.sft / "result.json"

    @property
    def sft_optimizer(self) -> Path:
        return self.sft / "optimizer"

    @property
    def control(self) -> Path:
        return self.root / "sft_control"

    @property
    def control_heldout(self) -> Path:
        return self.control / "heldout.json"

    @staticmethod
    def staging(final: Path) -> Path:
        """Where a folder is written before it is renamed to `final` (whole or absent)."""
        return final.parent / f".{final.name}-tmp"

    def stage(self, name: str) -> Path:
        """RUN/stages/NAME, created on first use."""
        folder = self.root / "stages" / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def stage_ids(self, name: str) -> Path:
        return self.stage(name) / "train_ids.json"

    def stage_filter_report(self, name: str) -> Path:
        return self.stage(name) / "filter_report.json"

    def stage_pass_rates(self, name: str) -> Path:
        return self.stage(name) / "pass_rates.jsonl"

    def stage_pre_inference(self, name: str) -> Path:
        return self.stage(name) / "pre_inference.jsonl"


@dataclass
class RunPlan:
    """What the run will do, settled and checked before any model is loaded."""

    paths: RunPaths
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
    def out(self) -> Path:
        return self.paths.root

    @property
    def total_steps(self) -> int:
        return self.stages[-1].last_step


def prepare_run(config: TrainConfig, out: Path) -> RunPlan:
    """Load and split the data, validate every stage's data and the checkpoint to resume.

    Raises before any compute: `ConfigError` for a checkpoint written by a different config,
    `DatasetError` for unreadable data, a task type the sampler balances but a stage lacks, a
    held-out set that is requested but empty.
    """
    paths = RunPaths(out)
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
    prompts = PromptBuilder(tokenizer, prompts=config.prompts)
    for span in stages:
        if span.config.from_checkpoint is not None:
            check_start_weights(span.config.from_checkpoint)
        if span.config.data.retrospective is None:
            kept, _ = select_stage_data(
                train, span.config.data, None, prompts.count_tokens, prompts.prompts
            )
            TaskBalancedSampler(kept, config.sampler, config.seed, f"stage {span.name} data")
    _trim_records(paths, checkpoint.step if checkpoint is not None else 0)
    return RunPlan(
        paths, train, heldout, stages, prompts, ChatEncoder(tokenizer), fingerprint, checkpoint
    )


def _trim_records(paths: RunPaths, step: int) -> None:
    """Drop records of steps after `step` from the metrics and held-out logs: the killed run
    logged them after its last checkpoint, and the resumed run logs them again. Each file is
    rewritten aside and renamed over the old one, so a kill here loses no record."""
    for path in (paths.metrics, paths.heldout):
        if not path.exists():
            continue
        kept = [r for r in read_metrics(path) if int(r["step"]) <= step]
        write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))
