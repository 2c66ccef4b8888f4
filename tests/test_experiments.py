"""Every experiment YAML validates against the config of the command that runs it.

A renamed or removed config field would otherwise surface only when a researcher runs the
experiment; this catches it in CI. Each file's command is the one its header comment runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from qwenlong.core.config_loader import load_config
from qwenlong.evals.run.config import EvalConfig
from qwenlong.memagent.run import MemAgentRunConfig
from qwenlong.rl.config import TrainConfig
from qwenlong.synth.config import SynthConfig

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"

CONFIG_OF: dict[str, type[BaseModel]] = {
    "eval-tiny-cpu.yaml": EvalConfig,
    "memagent-tiny-cpu.yaml": MemAgentRunConfig,
    "memagent-rl-tiny-cpu.yaml": TrainConfig,
    "rl-tiny-cpu.yaml": TrainConfig,
    "synth-short-cpu.yaml": SynthConfig,
    "synth-tiny-cpu.yaml": SynthConfig,
    "ablations/aepo.yaml": TrainConfig,
    "ablations/balance.yaml": TrainConfig,
    "ablations/grpo.yaml": TrainConfig,
    "ablations/task-std.yaml": TrainConfig,
    "l15-30b-a3b/stages.yaml": TrainConfig,
}


def test_every_experiment_file_has_a_config_listed() -> None:
    found = sorted(str(p.relative_to(EXPERIMENTS)) for p in EXPERIMENTS.rglob("*.yaml"))
    assert found == sorted(CONFIG_OF)


@pytest.mark.parametrize("name", sorted(CONFIG_OF))
def test_experiment_validates(name: str) -> None:
    config = load_config(EXPERIMENTS / name, CONFIG_OF[name])
    assert isinstance(config, CONFIG_OF[name])
