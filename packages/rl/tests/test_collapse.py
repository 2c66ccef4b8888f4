"""Collapse detection (qwenlong.rl.collapse): the README's two healthy runs never trip it; the two
collapses the CPU demo met (endless lists: entropy 0, every reward 0, no group with a gradient;
answers that stop ending: the answer line repeated to the limit) trip it within their first few
steps; and a scripted collapse driven through the trainer is rolled back to the last healthy
checkpoint and continues with a lower learning rate and AEPO on, recorded everywhere."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from qwenlong.core.dataset_io import write_samples
from qwenlong.core.rundir import read_metrics
from qwenlong.rl import trainer as trainer_module
from qwenlong.rl.collapse import CollapseConfig, CollapseDetector
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.testing import ScriptedPolicy, paris_samples, scripted_config
from qwenlong.rl.trainer import train

FIXTURES = Path(__file__).parent / "fixtures"
HEALTHY = ("healthy_rl_tiny.jsonl", "healthy_rl_tiny_megatron.jsonl")
"""The signals of the README's CPU learning demo (torch and Megatron policies), 100 steps each."""


def _healthy(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines()]


def _trips(records: list[dict[str, Any]]) -> list[tuple[str, int]]:
    detector = CollapseDetector(CollapseConfig())
    found = []
    for record in records:
        trip = detector.observe(record["step"], record)
        if trip is not None:
            found.append((trip.symptom, trip.step))
            detector.since.clear()
    return found


@pytest.mark.parametrize("name", HEALTHY)
def test_the_readmes_healthy_runs_never_trip(name: str) -> None:
    assert _trips(_healthy(name)) == []


def test_endless_lists_trip_within_three_steps_of_the_slide() -> None:
    """The `grpo` ablation with a 2-word allowance: healthy, then from step 58 entropy 0,
    every reward 0 and no group with reward variance, never recovering."""
    records = _healthy(HEALTHY[0])[:57]
    for step in range(58, 70):
        records.append(
            {"step": step, "entropy": 0.001, "reward_mean": 0.0, "zero_variance_groups": 1.0}
            | {"truncated_frac": 1.0, "loss": 0.0, "grad_norm": 0.0}
        )
    symptom, step = _trips(records)[0]
    assert step == 60 and symptom in {"entropy_collapse", "no_signal"}  # both show it
    records = [r | {"entropy": 0.3} if r["step"] >= 58 else r for r in records]
    assert _trips(records)[0] == ("no_signal", 60)  # no gradient left, whatever the entropy


def test_answers_that_stop_ending_trip_though_they_are_still_paid() -> None:
    """The `balance` ablation: from step 53 the answer line repeated to the 16-token limit, the
    rule still paying it, so reward and entropy look healthy."""
    records = _healthy(HEALTHY[0])[:52]
    for step, truncated in zip(range(53, 60), (0.3, 0.6, 0.8, 0.95, 1.0, 1.0, 1.0), strict=True):
        records.append(
            {"step": step, "entropy": 0.12, "reward_mean": 0.35, "zero_variance_groups": 0.4}
            | {"truncated_frac": truncated, "loss": 0.01, "grad_norm": 0.3}
        )
    assert _trips(records)[0] == ("runaway_length", 56)


def test_a_run_that_never_had_a_signal_is_not_a_collapse() -> None:
    """A random model pays nothing from the first step: nothing was lost, nothing trips."""
    sick = {"entropy": 5.0, "reward_mean": 0.0, "zero_variance_groups": 1.0, "loss": 0.0}
    assert _trips([{"step": step, **sick} for step in range(1, 10)]) == []


def test_a_non_finite_loss_trips_at_once() -> None:
    detector = CollapseDetector(CollapseConfig())
    trip = detector.observe(4, {"loss": math.nan, "grad_norm": 1.0})
    assert trip is not None and (trip.symptom, trip.since, trip.step) == ("nonfinite", 4, 4)


# --- a scripted collapse through the trainer ------------------------------------------------


def _config(model: Path, data: Path, **changes: Any) -> TrainConfig:
    return scripted_config(
        model, data, **{"steps": 8, "checkpoint_every": 2, "keep_checkpoints": 8, **changes}
    )


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_samples(paris_samples(32), tmp_path / "data.parquet")


def test_a_scripted_collapse_is_rolled_back_and_the_run_goes_on(
    tiny_model_dir: Path, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steps 5-7 of the first pass report entropy 0 (the scripted model itself stays healthy):
    the detector trips at step 7, the run returns to the checkpoint of step 4, halves the
    learning rate, turns AEPO on, and runs steps 5-8 again to the end."""
    real_step = trainer_module.rl_step
    visits: list[int] = []

    def scripted(step: int, *args: Any) -> dict[str, Any]:
        metrics = real_step(step, *args)
        visits.append(step)
        if step in (5, 6, 7) and visits.count(step) == 1:
            metrics["entropy"] = 0.0
        return metrics

    scales: list[float] = []
    original = ScriptedPolicy.set_learning_rate_scale

    def recorded(self: ScriptedPolicy, scale: float) -> None:
        scales.append(scale)
        original(self, scale)

    monkeypatch.setattr(trainer_module, "rl_step", scripted)
    monkeypatch.setattr(ScriptedPolicy, "set_learning_rate_scale", recorded)
    out = tmp_path / "run"
    summary = train(_config(tiny_model_dir, dataset), out)

    assert visits == [1, 2, 3, 4, 5, 6, 7, 5, 6, 7, 8]
    assert scales[-1] == 0.5 and set(scales) <= {1.0, 0.5}  # 1.0: the optimizer state reload
    (event,) = summary["collapse"]
    assert (event["symptom"], event["since"], event["step"]) == ("entropy_collapse", 5, 7)
    assert (event["action"], event["to_step"], event["lr_scale"]) == ("rollback", 4, 0.5)
    assert event["aepo_forced"] is True and "stopped" not in summary
    lines = (out / "collapse.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [event]
    records = {r["step"]: r for r in read_metrics(out)}
    assert sorted(records) == list(range(1, 9)) and len(read_metrics(out)) == 8
    assert records[5]["collapse/symptom"] == "entropy_collapse"  # the first step after it
    assert records[8]["entropy"] > 0


def test_with_no_healthy_checkpoint_the_run_stops_and_says_why(
    tiny_model_dir: Path, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_step = trainer_module.rl_step

    def scripted(step: int, *args: Any) -> dict[str, Any]:
        metrics = real_step(step, *args)
        if step >= 2:
            metrics["entropy"] = 0.0
        return metrics

    monkeypatch.setattr(trainer_module, "rl_step", scripted)
    out = tmp_path / "run"
    summary = train(_config(tiny_model_dir, dataset, checkpoint_every=None), out)
    stopped = summary["stopped"]
    assert (stopped["symptom"], stopped["since"], stopped["step"]) == ("entropy_collapse", 2, 4)
    assert stopped["action"] == "stop" and summary["steps"] == 3
    assert read_metrics(out)[-1]["collapse/action"] == "stop"
