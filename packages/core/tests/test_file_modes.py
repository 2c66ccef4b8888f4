"""Written model files follow the umask like ordinary files, weights included."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from qwenlong.core.file_modes import apply_umask, current_umask
from qwenlong.core.safetensors_io import write_sharded


@pytest.fixture
def umask_027() -> Iterator[None]:
    previous = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(previous)


def modes(folder: Path) -> dict[str, str]:
    return {p.name: oct(p.stat().st_mode & 0o777) for p in sorted(folder.iterdir())}


def test_current_umask_reads_without_changing_it(umask_027: None) -> None:
    assert current_umask() == 0o027
    assert current_umask() == 0o027


def test_safetensors_save_file_is_private_and_apply_umask_fixes_it(
    tmp_path: Path, umask_027: None
) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"x": torch.ones(2)}, path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # the bug: not what the umask says
    apply_umask([path, tmp_path / "missing.safetensors"])
    assert oct(path.stat().st_mode & 0o777) == "0o640"


def test_tiny_model_files_all_follow_the_umask(tiny_model_dir: Path) -> None:
    """The session's tiny model was built under this process's umask."""
    found = modes(tiny_model_dir)
    assert "model.safetensors" in found
    assert set(found.values()) == {oct(0o666 & ~current_umask())}, found


def test_sharded_writer_files_follow_the_umask(tmp_path: Path, umask_027: None) -> None:
    weights = [("a", torch.ones(3)), ("b", torch.zeros(5))]
    write_sharded(tmp_path / "ckpt", weights, max_shard_bytes=16)
    assert set(modes(tmp_path / "ckpt").values()) == {"0o640"}
