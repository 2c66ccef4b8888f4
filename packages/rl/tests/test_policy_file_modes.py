"""A trained policy's exported model folder follows the umask, weights included."""

from __future__ import annotations

import os
from pathlib import Path

from qwenlong.rl.torch_policy import TorchPolicy, TorchPolicyConfig


def test_save_pretrained_files_follow_the_umask(tiny_model_dir: Path, tmp_path: Path) -> None:
    policy = TorchPolicy(tiny_model_dir, TorchPolicyConfig())
    previous = os.umask(0o022)
    try:
        out = policy.save_pretrained(tmp_path / "model")
    finally:
        os.umask(previous)
    found = {p.name: oct(p.stat().st_mode & 0o777) for p in out.iterdir()}
    assert "model.safetensors" in found
    assert set(found.values()) == {"0o644"}, found
