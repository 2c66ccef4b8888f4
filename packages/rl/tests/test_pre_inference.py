"""The retrospective step's pass@k pre-inference (qwenlong.rl.pre_inference) against a scripted
rollout and reward: k answers per question at the stage's limits, recorded batch by batch, and
resumed after a kill (even one that tore the last line) to the same rates."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from qwenlong.core.errors import DatasetError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import TaskSample
from qwenlong.rl.pre_inference import pre_inference_rates, read_measured

SAMPLING = SamplingParams(max_new_tokens=50, temperature=0.7, top_p=0.95, n=4, seed=9)


def _samples() -> list[TaskSample]:
    return [
        TaskSample(id=f"q{i}", task_type="reading", question="?", answers=["x"], context="c")
        for i in range(5)
    ]


class ScriptedRollout:
    """Question q{i} is answered correctly by its first i answers (of n): pass rate i / n."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], SamplingParams, int]] = []

    def generate(
        self, samples: Sequence[TaskSample], sampling: SamplingParams, max_input_tokens: int
    ) -> Any:
        self.calls.append(([s.id for s in samples], sampling, max_input_tokens))
        trajectories = [s for s in samples for _ in range(sampling.n)]
        outputs = [
            "right" if answer < int(s.id[1:]) else "wrong"
            for s in samples
            for answer in range(sampling.n)
        ]
        return SimpleNamespace(samples=trajectories, outputs=outputs)


def reward(samples: Sequence[TaskSample], outputs: Sequence[str]) -> Any:
    return SimpleNamespace(correct=torch.tensor([text == "right" for text in outputs]))


def test_every_question_is_answered_k_times_at_the_stage_limits(tmp_path: Path) -> None:
    rollout = ScriptedRollout()
    path = tmp_path / "pre_inference.jsonl"
    rates = pre_inference_rates(_samples() * 2, rollout, reward, SAMPLING, 777, path, 2)
    assert rates == {"q0": 0.0, "q1": 0.25, "q2": 0.5, "q3": 0.75, "q4": 1.0}
    assert [ids for ids, _, _ in rollout.calls] == [["q0", "q1"], ["q2", "q3"], ["q4"]]
    assert all(sampling == SAMPLING and limit == 777 for _, sampling, limit in rollout.calls)
    assert read_measured(path)["q3"] == (3, 4)


def test_a_killed_pre_inference_resumes_where_it_stopped(tmp_path: Path) -> None:
    whole = tmp_path / "whole.jsonl"
    expected = pre_inference_rates(_samples(), ScriptedRollout(), reward, SAMPLING, 9, whole, 2)
    killed = tmp_path / "killed.jsonl"
    lines = whole.read_text().splitlines(keepends=True)
    killed.write_text("".join(lines[:2]) + lines[2][:7])  # two recorded, the third torn
    rollout = ScriptedRollout()
    assert pre_inference_rates(_samples(), rollout, reward, SAMPLING, 9, killed, 2) == expected
    assert [ids for ids, _, _ in rollout.calls] == [["q2", "q3"], ["q4"]]
    assert killed.read_text() == whole.read_text()


def test_a_corrupt_record_is_one_line_naming_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "pre_inference.jsonl"
    path.write_text('{"id": "q0", "passed": 1, "attempts": 4}\n{"id": "q1"}\n')
    with pytest.raises(DatasetError, match=r"pre_inference.jsonl line 2: expected a JSON object"):
        read_measured(path)
