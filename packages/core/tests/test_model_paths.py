"""User-given model folders: checked locally, one line naming the path and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenlong.core.errors import ConfigError
from qwenlong.core.model_paths import check_model_dir, check_tokenizer_dir


def test_missing_folder_suggests_building_a_tiny_model(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError) as info:
        check_model_dir(missing)
    assert str(info.value) == (
        f"config error: {missing}: no such model folder "
        f"(make a tiny one with: qwenlong models tiny --out {missing})"
    )
    with pytest.raises(ConfigError, match=rf"^config error: --model: {missing}: no such"):
        check_model_dir(missing, "--model")


def test_folder_needs_config_json_for_a_model_and_tokenizer_files_for_a_tokenizer(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="not a model folder"):
        check_model_dir(tmp_path)
    with pytest.raises(ConfigError, match="not a tokenizer folder"):
        check_tokenizer_dir(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{}")
    assert check_tokenizer_dir(str(tmp_path)) == tmp_path
    with pytest.raises(ConfigError, match="not a model folder"):
        check_model_dir(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    assert check_model_dir(str(tmp_path)) == tmp_path
