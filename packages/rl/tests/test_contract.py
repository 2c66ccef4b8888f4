"""The rl protocols are the whole contract: the trainer, the SFT warm start, held-out evaluation,
checkpoint/resume and the SFT control run against a policy and a rollout engine that implement
the protocols and nothing else (qwenlong.rl.testing)."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path
from typing import Any

import pytest

from qwenlong.core.dataset_io import write_samples
from qwenlong.core.rundir import read_metrics
from qwenlong.core.safetensors_io import read_sharded
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.interfaces import Policy, RolloutEngine
from qwenlong.rl.testing import (
    WEIGHT,
    ScriptedPolicy,
    ScriptedRolloutEngine,
    paris_samples,
    scripted_config,
)
from qwenlong.rl.trainer import train


def _members(cls: type) -> set[str]:
    return {
        name
        for name, _ in inspect.getmembers(cls)
        if not name.startswith("_") and name not in {"weight_transports"}
    }


def test_the_scripted_backends_have_nothing_the_protocols_lack() -> None:
    assert _members(ScriptedPolicy) == _members(Policy)
    assert _members(ScriptedRolloutEngine) == _members(RolloutEngine)


def _config(model: Path, data: Path, **changes: Any) -> TrainConfig:
    run: dict[str, Any] = {
        "data": {"train": [str(data)], "heldout_fraction": 0.25},
        "sft": {"steps": 2, "batch_size": 4, "control": True},
        "heldout": {"size": 8, "temperature": 1.0, "samples": 4, "greedy": True},
        "checkpoint_every": 3,
    }
    return scripted_config(model, data, **{**run, **changes})


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_samples(paris_samples(48), tmp_path / "data.parquet")


def test_the_whole_run_goes_through_the_protocols(
    tiny_model_dir: Path, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    summary = train(_config(tiny_model_dir, dataset), out)

    records = read_metrics(out)
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[-1]["reward_mean"] > records[0]["reward_mean"]
    assert summary["heldout_gain"] > 0 and summary["heldout_gain_greedy"] >= 0
    assert summary["sft"]["steps"] == 2
    assert summary["sft_control"]["steps"] >= 1 and "rl_over_control" in summary
    assert (out / "sft" / "model" / "model.safetensors").is_file()
    assert (out / "sft" / "optimizer" / "scripted.pt").is_file()
    final = dict(read_sharded(out / "model"))
    trained = dict(read_sharded(out / "checkpoints" / "step_000006"))
    assert final.keys() == {WEIGHT} and final[WEIGHT].equal(trained[WEIGHT])
    assert (out / "checkpoints" / "step_000006" / "optimizer" / "scripted.pt").is_file()


def test_a_killed_scripted_run_resumes_to_the_same_steps(
    tiny_model_dir: Path, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    config = _config(tiny_model_dir, dataset, sft=None, heldout={"size": 0})
    train(config, out)
    straight = read_metrics(out)
    weights = dict(read_sharded(out / "checkpoints" / "step_000006"))[WEIGHT]

    shutil.rmtree(out / "checkpoints" / "step_000006")  # killed after step 6 was logged
    (out / "summary.json").unlink()
    train(config, out)
    resumed = read_metrics(out)
    timing = ("time_", "tokens_per_s", "train_tokens_per_s")

    def drop(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if not k.startswith(timing)} for r in rs]

    assert drop(resumed) == drop(straight)
    assert dict(read_sharded(out / "checkpoints" / "step_000006"))[WEIGHT].equal(weights)
