"""`qwenlong train CONFIG.yaml --out DIR [--set ...]`: a run, its resume, and config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from qwenlong.app.commands.train import register
from qwenlong.core.dataset_io import write_samples
from qwenlong.core.errors import ConfigError
from qwenlong.core.records import TaskSample
from qwenlong.core.rundir import read_metrics


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """A group, so the command is addressed by name as in the real CLI."""

    register(app)
    return app


def _samples() -> list[TaskSample]:
    out = []
    for i in range(6):
        out.append(
            TaskSample(
                id=f"r{i}", task_type="reading", question="Code?", answers=[f"k{i}"], context="k."
            )
        )
        out.append(
            TaskSample(
                id=f"d{i}",
                task_type="dialogue_memory",
                question="Repeat.",
                answers=[f"line {i}"],
                answer_kind="sequence",
                context=f"line {i}",
                meta={"prefix": ""},
            )
        )
    return out


@pytest.fixture
def config_file(tmp_path: Path, tiny_model_dir: Path) -> Path:
    torch.set_num_threads(1)
    data = write_samples(_samples(), tmp_path / "data.parquet")
    path = tmp_path / "train.yaml"
    path.write_text(
        f"model: {tiny_model_dir}\n"
        f"data: {{train: [{data}]}}\n"
        "steps: 3\n"
        "sampler: {batch_size: 2, tasks: [reading, dialogue_memory]}\n"
        "rollout: {group_size: 2, max_new_tokens: 4, max_input_tokens: 400}\n"
        "ray: {enabled: false}\n"
    )
    return path


def test_train_writes_metrics_and_summary_and_resumes(config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", str(config_file), "--out", str(out), "--set", "steps=1"]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[0]) == {"steps": 1}
    assert f"summary: {out / 'summary.json'}" in result.output
    [record] = read_metrics(out)
    assert {"step", "reward_mean", "entropy", "aepo_active", "tokens_per_s"} <= set(record)

    again = CliRunner().invoke(_app(), [*args[:-2], "--set", "steps=2"])
    assert again.exit_code == 0, again.output
    assert [r["step"] for r in read_metrics(out)] == [1, 2]
    assert json.loads((out / "summary.json").read_text())["steps"] == 2


def test_config_errors_name_the_key(config_file: Path, tmp_path: Path) -> None:
    args = ["train", str(config_file), "--out", str(tmp_path / "run"), "--set", "rollout.top_q=1"]
    result = CliRunner().invoke(_app(), args)
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception) == (
        "config error: --set rollout.top_q=1: rollout.top_q is not a field (did you mean top_p?)"
    )
    assert not (tmp_path / "run").exists()
