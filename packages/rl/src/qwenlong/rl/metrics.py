"""What a training step reports, how long each phase took, and the learning-curve plots.

The per-step record is what a person reads to decide whether a run is healthy: reward overall
and per task type (task balance is the point of Sec. 4.2, so a task that stops learning must be
visible), the batch entropy and the AEPO state that reacts to it (Eq.11), how many sequences were
kept after masking, response lengths (and how many hit the limit), and the cost split between
generation, scoring, training and weight sync, which explains tokens per second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from qwenlong.rl.interfaces import RewardResult, StepStats
from qwenlong.rl.rollout.batch import RolloutBatch

PHASES = ("generate", "score", "train", "sync")
"""The phases of a step whose wall time is reported as `time_<phase>`."""


class PhaseTimer:
    """Wall-clock seconds per named phase, accumulated over repeated entries."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block and add it to `seconds[name]`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def total(self) -> float:
        """Seconds since the timer was created."""
        return time.perf_counter() - self._start


def _mean(values: Tensor) -> float:
    return float(values.float().mean()) if values.numel() else math.nan


def step_metrics(
    batch: RolloutBatch,
    rewards: Tensor,
    correct: Tensor,
    advantages: Tensor,
    token_mask: Tensor,
    entropy: float,
    train: StepStats | None,
) -> dict[str, Any]:
    """The algorithm's side of a step's record (timings come from `timing_metrics`, the AEPO
    state from `AepoController.log_fields`).

    `rewards`, `correct`, `advantages` are per sequence [S]; `token_mask` [N] is what entered the
    loss. `train` is None when nothing was left to train on (every token masked), in which case
    loss and grad norm are reported as null rather than as a misleading 0.
    """
    packed = batch.packed
    lengths = batch.response_lengths()
    kept_tokens = torch.zeros(packed.num_sequences, dtype=torch.long).index_add_(
        0, packed.sequence_index(), token_mask.long()
    )
    groups = rewards.view(-1, max(batch.group_size, 1))
    flat_groups = groups.max(dim=1).values == groups.min(dim=1).values
    record: dict[str, Any] = {
        "reward_mean": _mean(rewards),
        "reward_std": float(rewards.std()) if rewards.numel() > 1 else math.nan,
        "accuracy": _mean(correct),
        "entropy": entropy,
        "kept_samples": int((kept_tokens > 0).sum()),
        "sequences": packed.num_sequences,
        "loss_tokens": int(token_mask.sum()),
        "response_tokens": int(packed.loss_mask.sum()),
        "response_length": _mean(lengths),
        "response_length_max": int(lengths.max()) if lengths.numel() else 0,
        "truncated_frac": _mean(batch.truncated()),
        "zero_variance_groups": _mean(flat_groups),
        "advantage_abs_mean": _mean(advantages.abs()),
        "negative_frac": _mean(advantages < 0),
        "loss": train.loss if train is not None else None,
        "grad_norm": train.grad_norm if train is not None else None,
        "tokens": packed.num_tokens,
    }
    for index, name in enumerate(batch.task_names):
        chosen = batch.task_ids == index
        record[f"reward/{name}"] = _mean(rewards[chosen])
        record[f"accuracy/{name}"] = _mean(correct[chosen])
    if train is not None:
        record.update({f"train/{key}": value for key, value in train.extra.items()})
    return record


def decision_metrics(
    scored: RewardResult, truncated: Tensor, penalties: Tensor
) -> dict[str, float]:
    """What the reward rule decided this step, as shares of the responses: paid by the rule,
    paid by the judge, refused as overlong (`answer_max_extra_words`) or for a missing
    `</think>`, left pending by the judge, truncated at the output limit, and truncated yet
    paid (an answer line repeated to the limit: the rule reads after the last "answer is");
    with DAPO's soft punishment, its mean penalty."""
    paid = (scored.rewards > 0).tolist()
    count = max(len(paid), 1)
    by = [detail.get("decided_by") for detail in scored.details] or [None] * len(paid)
    record = {
        "decision/paid_by_rule": sum(p and b == "rule" for p, b in zip(paid, by, strict=True)),
        "decision/paid_by_judge": sum(p and b == "judge" for p, b in zip(paid, by, strict=True)),
        "decision/refused_overlong": by.count("overlong"),
        "decision/refused_no_think": by.count("no_think"),
        "decision/judge_pending": by.count("pending"),
    }
    shares = {key: value / count for key, value in record.items()}
    shares["decision/truncated"] = _mean(truncated)
    shares["decision/truncated_paid"] = _mean(truncated & (scored.rewards > 0))
    if bool((penalties != 0).any()):
        shares["overlong_penalty_mean"] = _mean(penalties)
    return shares


def timing_metrics(timer: PhaseTimer, tokens: int) -> dict[str, float]:
    """`time_<phase>` for every phase, the step's total, and end-to-end tokens per second.

    tokens_per_s counts the packed tokens (prompt + response) the policy trained on, divided by
    the whole step's wall time (generation included): the throughput a run actually gets, the
    figure the TRL comparison uses. `train_tokens_per_s` divides by the training phase alone.
    """
    total = timer.total()
    record = {f"time_{name}": timer.seconds.get(name, 0.0) for name in PHASES}
    record["time_step"] = total
    record["tokens_per_s"] = tokens / total if total > 0 else math.nan
    train_time = timer.seconds.get("train", 0.0)
    record["train_tokens_per_s"] = tokens / train_time if train_time > 0 else math.nan
    return record


DEFAULT_CURVES: dict[str, tuple[str, ...]] = {
    "reward": ("reward_mean", "reward/*"),
    "accuracy": ("accuracy", "accuracy/*"),
    "entropy": ("entropy", "aepo_active"),
    "kept_samples": ("kept_samples", "sequences"),
    "response_length": ("response_length", "truncated_frac"),
    "grad_norm": ("grad_norm", "loss"),
    "throughput": ("tokens_per_s", "train_tokens_per_s"),
    "time_split": tuple(f"time_{name}" for name in PHASES),
    "heldout_reward": ("heldout_reward", "heldout_greedy"),
}
"""Plot file name -> metric names drawn in it (a trailing `*` takes every key with that prefix)."""


def _series(records: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for record in records:
        value = record.get(key)
        if isinstance(value, bool):
            value = float(value)
        if isinstance(value, int | float) and math.isfinite(value):
            steps.append(int(record["step"]))
            values.append(float(value))
    return steps, values


def _expand(records: Sequence[Mapping[str, Any]], patterns: Sequence[str]) -> list[str]:
    keys: list[str] = []
    present = sorted({key for record in records for key in record})
    for pattern in patterns:
        if pattern.endswith("*"):
            keys += [key for key in present if key.startswith(pattern[:-1]) and key not in keys]
        elif pattern in present and pattern not in keys:
            keys.append(pattern)
    return keys


def plot_learning_curves(
    records: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    curves: Mapping[str, Sequence[str]] = DEFAULT_CURVES,
) -> list[Path]:
    """One PNG per entry of `curves` under `out_dir`, for the metrics the records hold.

    A figure whose metrics never appear (no held-out evaluation, say) is not written. Drawn with
    matplotlib's Agg canvas directly, so no display and no global backend switch are needed.
    Held-out figures get error bars from their `_stderr` keys when present.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, patterns in curves.items():
        keys = _expand(records, patterns)
        if not keys:
            continue
        figure = Figure(figsize=(6.4, 4.0), dpi=90)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for key in keys:
            steps, values = _series(records, key)
            errors = _series(records, f"{key}_stderr")[1] if key.startswith("heldout_") else []
            if len(errors) == len(values) and errors:
                axes.errorbar(steps, values, yerr=errors, label=key, marker="o", capsize=3)
            else:
                axes.plot(steps, values, label=key, marker="." if len(steps) < 50 else None)
        axes.set_xlabel("step")
        axes.set_title(name.replace("_", " "))
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
        figure.subplots_adjust(left=0.12, right=0.97, bottom=0.12, top=0.92)
        path = out / f"{name}.png"
        figure.savefig(path)
        written.append(path)
    return written
