"""`qwenlong merge CONFIG.yaml [--set ...]` and the validation of its config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from qwenlong.app.commands.merge import register
from qwenlong.core.config_loader import load_config
from qwenlong.core.errors import ConfigError
from qwenlong.rl.merge.config import MergeConfig

app = typer.Typer()
register(app)


@app.callback()
def _root() -> None:
    """A group, so the command is invoked by name as under the real CLI."""


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_merge_command_writes_the_model_and_prints_a_summary(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    config = write_yaml(
        tmp_path / "merge.yaml",
        f"base: {tiny_model_dir}\nmodels: [{tiny_model_dir}]\noutput: {tmp_path / 'unused'}\n",
    )
    out = tmp_path / "merged"
    result = CliRunner().invoke(app, ["merge", str(config), "--set", f"output={out}"])
    assert result.exit_code == 0, result.output
    first, second = result.output.strip().splitlines()
    summary = json.loads(first)
    assert summary["tensors_merged"] == 69 and summary["entries_changed"] == 0
    assert second == f"merged model: {out.resolve()}"
    resolved = load_config(out / "merge_config.yaml", MergeConfig)
    assert resolved.output == out and resolved.top_k == 1.0


def test_config_errors_name_the_file_line_or_override(tmp_path: Path) -> None:
    config = write_yaml(
        tmp_path / "merge.yaml", "base: b\nmodels: [m]\noutput: o\nsign_election: vote\n"
    )
    with pytest.raises(ConfigError, match=r"merge.yaml:4: sign_election: .*known: count, sum"):
        load_config(config, MergeConfig)
    with pytest.raises(ConfigError, match=r"--set top_k=0: top_k"):
        load_config(config, MergeConfig, ["sign_election=sum", "top_k=0"])
    with pytest.raises(ConfigError, match=r"models"):
        load_config(config, MergeConfig, ["sign_election=sum", "models=[]"])
    assert (
        load_config(config, MergeConfig, ["sign_election=sum", "max_shard_size=2GB"]).max_shard_size
        == 2 * 10**9
    )
