"""`qwenlong eval CONFIG.yaml`, `qwenlong eval score METRIC FILE`, `qwenlong eval extract EXTRACTOR FILE`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import typer
from typer.core import TyperGroup


class _RunByDefault(TyperGroup):
    """A group whose first argument may be a config file: `eval X.yaml` means `eval run X.yaml`."""

    def resolve_command(self, ctx: click.Context, args: list[str]):  # type: ignore[override]
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


eval_app = typer.Typer(
    cls=_RunByDefault,
    help="Evaluate a model on the paper's benchmarks, or score prediction files.",
    no_args_is_help=True,
)


@eval_app.command("run")
def run_command(
    config: Path = typer.Argument(..., help="Eval YAML (see experiments/eval-tiny-cpu.yaml)."),
    out: Path = typer.Option(..., "--out", help="Run directory; an existing one is resumed."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: a.b=value."),
) -> None:
    """Run an eval config: generate (resumable), score, and write scores.json and report.md."""
    from qwenlong.core.config_loader import load_config
    from qwenlong.evals.run.config import EvalConfig
    from qwenlong.evals.run.runner import run_eval

    cfg = load_config(config, EvalConfig, overrides)
    summary = run_eval(cfg, out)
    typer.echo((out / "report.md").read_text() if (out / "report.md").exists() else summary)


@eval_app.command("score")
def score_command(
    metric: str = typer.Argument(
        ..., help="cover_em, sub_em, longbench_f1, longbench_v2, mrcr, docmath, ..."
    ),
    file: Path = typer.Argument(..., help="JSONL with prediction, answers (+ dataset / prefix)."),
) -> None:
    """Score each line of FILE with METRIC; print one JSON line per input."""
    from qwenlong.evals.score_files import score_jsonl

    for result in score_jsonl(metric, file):
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")


@eval_app.command("extract")
def extract_command(
    extractor: str = typer.Argument(..., help="paper, longbench_v2, corpusqa, docmath_number."),
    file: Path = typer.Argument(..., help='JSONL with {"response": str} per line.'),
) -> None:
    """Extract the answer from each response in FILE; print one JSON line per input."""
    from qwenlong.evals.score_files import extract_jsonl

    for result in extract_jsonl(extractor, file):
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")


@eval_app.command("examples")
def examples_command(
    out: Path = typer.Argument(..., help="Folder to write the example benchmark files into."),
    n: int = typer.Option(6, "--n", help="Questions per benchmark."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Write small files in each benchmark's published format (for smoke runs and tests)."""
    from qwenlong.evals.benchmarks.examples import write_examples

    for name, path in write_examples(out, seed=seed, n=n).items():
        typer.echo(f"{name}: {path}")


def register(app: typer.Typer) -> None:
    """Add `eval` to the CLI."""
    app.add_typer(eval_app, name="eval")
