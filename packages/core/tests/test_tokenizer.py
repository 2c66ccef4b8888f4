"""The shared tokenizer loader: a bad path is one config error naming the key and the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenlong.core.errors import ConfigError
from qwenlong.core.tokenizer import load_tokenizer


def test_loads_the_tiny_model_tokenizer(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_model_dir)
    assert tokenizer.convert_tokens_to_ids("</think>") != tokenizer.unk_token_id


def test_missing_folder_is_one_line_naming_key_and_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError) as info:
        load_tokenizer(missing, what="model")
    message = str(info.value)
    assert message.startswith(f"config error: model: '{missing}' could not be loaded")
    assert "\n" not in message
