"""`qwenlong synth CONFIG.yaml --out DIR`."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def synth_command(
    config: Path = typer.Argument(
        ..., help="Synthesis YAML (see experiments/synth-tiny-cpu.yaml)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Run directory; an existing one is resumed if made with this config."
    ),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: a.b=value."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Delete the earlier run's outputs in --out and start over."
    ),
) -> None:
    """Synthesize verifiable long-context training data: DIR/dataset and DIR/report.md."""
    from qwenlong.core.config_loader import load_config
    from qwenlong.synth.config import SynthConfig
    from qwenlong.synth.pipeline.run import run_synth

    summary = run_synth(load_config(config, SynthConfig, overrides), out, overwrite=overwrite)
    typer.echo(json.dumps({k: summary[k] for k in ("samples", "by_task_type", "drops")}))
    typer.echo(f"dataset: {out / 'dataset'}\nreport: {out / 'report.md'}")


def register(app: typer.Typer) -> None:
    """Add `synth` to the CLI."""
    app.command("synth")(synth_command)
