"""`qwenlong memagent CONFIG.yaml --out DIR`: the memory agent over a dataset or one document."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def document_overrides(document: Path, question: str) -> list[str]:
    """`--set` overrides that make the run read `document` and nothing else.

    Values are written as JSON strings (valid YAML), so a question with colons, quotes or
    brackets arrives as the exact text typed.
    """
    return [
        f"document.path={json.dumps(str(document), ensure_ascii=False)}",
        f"document.question={json.dumps(question, ensure_ascii=False)}",
        "dataset=null",
        "benchmark=null",
    ]


def memagent_command(
    config: Path = typer.Argument(
        ..., help="memagent YAML: model, memagent, sampling and one input."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Run directory; an existing one is resumed if made with this config."
    ),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: a.b=value."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Delete the earlier run's outputs in --out and start over."
    ),
    document: Path | None = typer.Option(
        None, "--document", help="Read this text file instead of the config's input."
    ),
    question: str | None = typer.Option(
        None, "--question", help="The question about --document (format sentences are split off)."
    ),
) -> None:
    """Answer questions over long inputs chunk by chunk: RUN/trace.jsonl, predictions, summary."""
    from qwenlong.app.input_checks import check_memagent_inputs
    from qwenlong.app.run_outcome import check_memagent_complete
    from qwenlong.core.config_loader import load_config
    from qwenlong.core.errors import ConfigError
    from qwenlong.memagent.run import MemAgentRunConfig, run_memagent

    if (document is None) != (question is None):
        raise ConfigError("--document and --question go together")
    extra = document_overrides(document, question) if document and question else []
    cfg = load_config(config, MemAgentRunConfig, [*overrides, *extra])
    check_memagent_inputs(cfg)  # paths first: a typo must not wait for the model to load
    summary = run_memagent(cfg, out, overwrite=overwrite)
    typer.echo(json.dumps(summary))
    typer.echo(f"trace: {out / 'trace.jsonl'}\npredictions: {out / 'predictions.jsonl'}")
    check_memagent_complete(summary, out / "predictions.jsonl", cfg)  # skipped or none: exit 3


def register(app: typer.Typer) -> None:
    """Add `memagent` to the CLI."""
    app.command("memagent")(memagent_command)
