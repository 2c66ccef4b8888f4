"""Pytest fixtures shared by every package's tests (loaded with `-p qwenlong.core.testing`).

- `tiny_model_dir` (session): a tiny Qwen3-MoE directory from `build_tiny_model` with the
  default `TinyModelConfig` (seed 0, generated tokenizer corpus), built once per test session
  under pytest's temporary root. Load it with the transformers Auto classes, or give its path to
  `BackendConfig(model=str(tiny_model_dir))`. Treat it as read-only: every test shares it.
- `tiny_chat_model` (session): an `HFChatModel` (CPU, float32) on that directory, loaded once;
  use it where a test needs a `ChatModel` and does not care about backend settings.

torch and transformers are imported only when a fixture is first used, so loading this plugin
costs nothing for test runs that never ask for a model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from qwenlong.core.backends.hf import HFChatModel


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the session's tiny model directory (built on first use, a few seconds)."""
    from qwenlong.core.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_chat_model(tiny_model_dir: Path) -> Iterator[HFChatModel]:
    """The tiny model behind the `hf` backend, shared by the session and closed at its end."""
    from qwenlong.core.backends.hf import HFChatModel

    model = HFChatModel(tiny_model_dir)
    yield model
    model.close()
