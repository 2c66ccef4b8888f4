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
    assert message == (
        f"config error: model: {missing}: no such model folder "
        f"(make a tiny one with: qwenlong models tiny --out {missing})"
    )


def test_a_name_that_is_no_folder_never_reaches_the_hub(tmp_path: Path) -> None:
    """`org/name` is a hub id to transformers; here it is a missing folder, refused at once."""
    with pytest.raises(ConfigError, match=r"Qwen/Qwen3-0\.6B: no such model folder"):
        load_tokenizer("Qwen/Qwen3-0.6B")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="not a tokenizer folder"):
        load_tokenizer(tmp_path)
