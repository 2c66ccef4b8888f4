"""`qwenlong merge CONFIG.yaml [--set key=value]`: SCE-merge checkpoints into a new HF directory."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def merge_command(
    config: Path = typer.Argument(
        ..., help="Merge YAML: base, models, output, and optionally top_k, sign_election, dtype."
    ),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: a.b=value."),
) -> None:
    """SCE-merge MODELS onto BASE (FuseChat: select, calculate, erase), tensor by tensor.

    Prints a JSON summary (tensors merged and copied, entries selected and changed, each
    model's mean coefficient) and the output directory, which transformers loads as it is.
    """
    from qwenlong.core.config_loader import load_config
    from qwenlong.rl.merge.config import MergeConfig
    from qwenlong.rl.merge.stream import merge_checkpoints

    summary = merge_checkpoints(load_config(config, MergeConfig, overrides))
    report = summary.to_json()
    keys = ("tensors_merged", "tensors_copied", "entries_selected", "entries_changed")
    typer.echo(json.dumps({key: report[key] for key in (*keys, "mean_weights", "seconds")}))
    typer.echo(f"merged model: {summary.output}")


def register(app: typer.Typer) -> None:
    """Add `merge` to the CLI."""
    app.command("merge")(merge_command)
