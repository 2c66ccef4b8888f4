"""`qwenlong train CONFIG.yaml --out DIR [--set key=value ...]`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

SUMMARY_KEYS = (
    "steps",
    "heldout_reward_before",
    "heldout_reward_before_stderr",
    "heldout_reward_after",
    "heldout_reward_after_stderr",
)
"""Summary fields echoed on the terminal (all of them are in DIR/summary.json)."""


def train_command(
    config: Path = typer.Argument(
        ..., help="Training YAML (fields: qwenlong.rl.config.TrainConfig)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Run directory; one holding a checkpoint is resumed from it."
    ),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: a.b=value."),
) -> None:
    """RL post-training (GRPO with the QwenLong-L1.5 changes): DIR/metrics.jsonl, DIR/summary.json."""
    from qwenlong.app.exit_codes import RunIncomplete
    from qwenlong.app.input_checks import check_train_inputs
    from qwenlong.core.config_loader import load_config
    from qwenlong.rl.config import TrainConfig
    from qwenlong.rl.trainer import train

    cfg = load_config(config, TrainConfig, overrides)
    check_train_inputs(cfg)  # model folder and non-empty data, before Ray or any model
    summary = train(cfg, out)
    typer.echo(json.dumps({key: summary[key] for key in SUMMARY_KEYS if key in summary}))
    typer.echo(f"metrics: {out / 'metrics.jsonl'}\nsummary: {out / 'summary.json'}")
    stopped = summary.get("stopped")
    if stopped is not None:
        raise RunIncomplete(
            f"collapse: {stopped['symptom']} from step {stopped['since']} to step "
            f"{stopped['step']}; stopped with no checkpoint to roll back to or no rollback "
            f"left (see {out / 'collapse.jsonl'})"
        )


def register(app: typer.Typer) -> None:
    """Add `train` to the CLI."""
    app.command("train")(train_command)
