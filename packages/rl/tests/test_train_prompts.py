"""`prompts:` in a training config reaches every prompt training sends: the rollout prompts
(and the token counts the stage filters measure with them), and the reward judge."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from qwenlong.core.dataset_io import write_samples
from qwenlong.core.records import TaskSample
from qwenlong.rl import reward_worker
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.plan import prepare_run
from qwenlong.rl.reward_worker import RewardScorer


def _config(tmp_path: Path, model: Path, **changes: Any) -> TrainConfig:
    sample = TaskSample(id="a", task_type="reading", question="Who?", answers=["x"], context="c")
    data = write_samples([sample, replace(sample, id="b")], tmp_path / "d.parquet")
    template = tmp_path / "single.txt"
    template.write_text("OUR OWN WORDING\n$context\n\nAsked: $question\n")
    base = {
        "model": str(model),
        "data": {"train": [str(data)]},
        "steps": 1,
        "sampler": {"batch_size": 1, "tasks": ["reading"]},
        "prompts": {"single_pass": str(template)},
        "ray": {"enabled": False},
    }
    return TrainConfig(**{**base, **changes})


def test_the_rollout_prompts_come_from_the_configured_template(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    plan = prepare_run(_config(tmp_path, tiny_model_dir), tmp_path / "run")
    (conversation,) = plan.prompts.conversations(plan.train[:1], 400)
    assert conversation[-1]["content"].startswith("OUR OWN WORDING\nc")
    assert "Asked: Who?" in conversation[-1]["content"]


def test_the_reward_judge_asks_with_the_configured_template(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    judge_file = tmp_path / "judge.txt"
    judge_file.write_text("Same? $gold vs $prediction. End with [[YES]] or [[NO]].\n")
    config = _config(
        tmp_path,
        tiny_model_dir,
        prompts={"judge": str(judge_file)},
        reward={"use_judge": True},
        judge={"backend": "openai", "model": "judge"},
    )
    monkeypatch.setattr(reward_worker, "make_chat_model", lambda backend: object())
    scorer = RewardScorer(config.reward, config.judge, None, config.prompts)
    scorer.setup()
    assert scorer.reward is not None and scorer.reward.judge is not None
    assert scorer.reward.judge.prompts is config.prompts
