"""`qwenlong train` holds RUN/.lock for the whole run, so a second run into the same folder is
refused before any check or compute; and the checkpoint's flattened config is core's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qwenlong.core.config_loader import load_config_dict
from qwenlong.core.errors import ConfigError
from qwenlong.core.run_guard import flat_config
from qwenlong.rl import checkpoint
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.trainer import train

CONFIG: dict[str, Any] = {
    "model": "m",
    "data": {"train": ["d.parquet"]},
    "stages": [
        {"name": "a", "steps": 1, "max_input_tokens": 64, "max_output_tokens": 8},
        {"name": "b", "steps": 1, "max_input_tokens": 96, "max_output_tokens": 8},
    ],
    "ray": {"enabled": False, "address": "auto"},
}


class Planned(Exception):
    """Raised by the stand-in for prepare_run: the run got as far as planning."""


def test_the_lock_is_held_while_planning_and_released_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"

    def prepare_run(config: TrainConfig, folder: Path) -> None:
        owner = json.loads((folder / ".lock").read_text())
        assert owner == {"pid": os.getpid(), "host": socket.gethostname()}
        raise Planned

    monkeypatch.setattr("qwenlong.rl.trainer.prepare_run", prepare_run)
    with pytest.raises(Planned):
        train(load_config_dict(CONFIG, TrainConfig, "test"), out)
    assert not (out / ".lock").exists()


def test_a_second_run_is_refused_before_planning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out = tmp_path / "run"
        out.mkdir()
        (out / ".lock").write_text(json.dumps({"pid": proc.pid, "host": socket.gethostname()}))
        monkeypatch.setattr("qwenlong.rl.trainer.prepare_run", lambda *_: pytest.fail("planned"))
        with pytest.raises(ConfigError, match=rf"another run \(pid {proc.pid}\) is writing here"):
            train(load_config_dict(CONFIG, TrainConfig, "test"), out)
    finally:
        proc.kill()
        proc.wait()


def test_core_flattens_a_train_config_as_the_checkpoint_fingerprint_does() -> None:
    """So checkpoint.flat_config can become core's run_guard.flat_config without changing the
    fingerprint of any checkpoint already written."""
    config = load_config_dict(CONFIG, TrainConfig, "test")
    core = flat_config(config, checkpoint.RESUME_MUTABLE_KEYS)
    assert core == checkpoint.flat_config(config)
    assert "stages.0.name" in core and "ray.address" not in core
    assert "stages.0.steps" not in core
