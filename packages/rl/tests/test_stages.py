"""Progressive stages: global step numbering, per-stage data selection, starting weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.rl.checkpoint import save_checkpoint
from qwenlong.rl.filtering import RetroFilterConfig
from qwenlong.rl.stages import (
    StageConfig,
    StageDataConfig,
    check_start_weights,
    plan_stages,
    select_stage_data,
    span_for_step,
    start_weights,
)


def stage(name: str, steps: int, **data: object) -> StageConfig:
    return StageConfig(
        name=name,
        steps=steps,
        max_input_tokens=100,
        max_output_tokens=10,
        data=StageDataConfig(**data),
    )


def sample(i: int, task: str, tokens: int | None) -> TaskSample:
    return TaskSample(
        id=f"s{i}",
        task_type=task,
        question="q",
        answers=["a"],
        context="x " * (tokens or 3),
        context_tokens=tokens,
    )


def test_stages_are_laid_end_to_end() -> None:
    plan = plan_stages([stage("s1", 3), stage("s2", 2), stage("s3", 4)])
    assert [(s.name, s.first_step, s.last_step) for s in plan] == [
        ("s1", 1, 3),
        ("s2", 4, 5),
        ("s3", 6, 9),
    ]
    assert [span_for_step(plan, step).name for step in (1, 3, 4, 5, 6, 9)] == [
        "s1", "s1", "s2", "s2", "s3", "s3",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="step 10 is outside the 9 planned steps"):
        span_for_step(plan, 10)
    with pytest.raises(ConfigError, match="names s1 appear more than once"):
        plan_stages([stage("s1", 1), stage("s1", 1)])
    with pytest.raises(ConfigError, match="at least one stage"):
        plan_stages([])


def test_task_and_length_filters() -> None:
    samples = [sample(0, "mc", 50), sample(1, "mc", 500), sample(2, "reading", 80)]
    samples.append(sample(3, "reading", None))  # counted: "x " * 3
    kept, report = select_stage_data(
        samples, StageDataConfig(max_context_tokens=100), None, lambda text: len(text.split())
    )
    assert [s.id for s in kept] == ["s0", "s2", "s3"]
    assert report == {
        "input": 4,
        "context_out_of_range": 1,
        "kept": 3,
        "by_task": {"mc": 1, "reading": 2},
    }
    kept, report = select_stage_data(
        samples, StageDataConfig(task_types=("mc",), min_context_tokens=60), None, None
    )
    assert [s.id for s in kept] == ["s1"] and report["other_task"] == 2
    with pytest.raises(DatasetError, match="s3: context_tokens is not set"):
        select_stage_data(samples, StageDataConfig(max_context_tokens=9), None, None)


def test_retrospective_filter_uses_pass_rates() -> None:
    samples = [sample(i, "mc", 10) for i in range(4)]
    rates = {"s0": 1.0, "s1": 0.0, "s2": 0.5}  # s3 never drawn: kept
    data = StageDataConfig(retrospective=RetroFilterConfig())
    kept, report = select_stage_data(samples, data, rates, None)
    assert [s.id for s in kept] == ["s2", "s3"]
    assert report["retro_always_solved"] == 1 and report["retro_never_solved"] == 1
    with pytest.raises(ConfigError, match="needs pass rates"):
        select_stage_data(samples, data, None, None)


def test_context_bounds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="min_context_tokens 9 exceeds max_context_tokens 5"):
        stage("s", 1, min_context_tokens=9, max_context_tokens=5)


def test_start_weights_from_a_checkpoint_or_a_model_directory(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    weights = [("a", torch.ones(2)), ("b", torch.zeros(3))]
    folder = save_checkpoint(tmp_path / "run", 7, weights, None, None, None, None, "f")
    loaded = start_weights(folder)
    assert [(n, t.tolist()) for n, t in loaded] == [("a", [1.0, 1.0]), ("b", [0.0] * 3)]
    names = [name for name, _ in start_weights(tiny_model_dir)]
    assert "model.embed_tokens.weight" in names
    with pytest.raises(DatasetError, match="neither a checkpoint folder"):
        check_start_weights(tmp_path)
