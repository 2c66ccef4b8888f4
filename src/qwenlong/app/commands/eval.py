"""`qwenlong eval CONFIG.yaml`, `qwenlong eval score METRIC FILE`, `qwenlong eval extract EXTRACTOR FILE`."""

from __future__ import annotations

import json
import shutil
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
    out: Path = typer.Option(
        ..., "--out", help="Run directory; an existing one is resumed if made with this config."
    ),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: a.b=value."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Delete the earlier run's outputs in --out and start over."
    ),
) -> None:
    """Run an eval config: generate (resumable), score, and write scores.json and report.md."""
    from qwenlong.app.input_checks import check_eval_inputs
    from qwenlong.app.run_outcome import check_eval_complete
    from qwenlong.core.config_loader import load_config
    from qwenlong.evals.run.config import EvalConfig
    from qwenlong.evals.run.runner import run_eval

    cfg = load_config(config, EvalConfig, overrides)
    check_eval_inputs(cfg)  # paths first: a typo must not wait for the model to load
    summary = run_eval(cfg, out, overwrite=overwrite)
    typer.echo((out / "report.md").read_text() if (out / "report.md").exists() else summary)
    check_eval_complete(summary, config)  # pending questions: exit 3, one line


@eval_app.command("score")
def score_command(
    metric: str = typer.Argument(
        ..., help="cover_em, sub_em, longbench_f1, longbench_v2, mrcr, docmath, ..."
    ),
    file: Path = typer.Argument(..., help="JSONL with prediction, answers (+ dataset / prefix)."),
    raw: bool = typer.Option(
        False,
        "--raw",
        help="Grade each prediction exactly as given, as the official scorer grades what it is "
        "handed: no reasoning split at </think>, no stand-in extraction (DocMath's number is "
        "read from the whole prediction), official quirks kept. cover_em and sub_em are "
        "unchanged. Default (without --raw): grade the text after the reasoning, and extract "
        "DocMath's answer from a sentence.",
    ),
) -> None:
    """Score each line of FILE with METRIC; print one JSON line per input.

    By default the reasoning (up to the last </think>) is removed first and DocMath's number is
    taken from the "answer is" sentence; --raw reproduces each official scorer on the text as
    given.
    """
    from qwenlong.evals.score_files import score_jsonl

    for result in score_jsonl(metric, file, raw=raw):
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
    n: int = typer.Option(6, "--n", min=1, help="Questions per benchmark."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Write small files in each benchmark's published format (for smoke runs and tests).

    An existing file that differs from the one generated (a user's edit, or another --seed/--n)
    is kept and listed in one note on stderr; identical files are left as they are.
    """
    import tempfile

    from qwenlong.core.errors import ConfigError
    from qwenlong.evals.benchmarks.examples import write_examples

    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: is a file, not a folder")
    with tempfile.TemporaryDirectory(prefix="qwenlong-examples-") as staging:
        written = write_examples(Path(staging), seed=seed, n=n)
        kept = _place_new_files(Path(staging), out)
        for name, path in written.items():
            typer.echo(f"{name}: {out / path.relative_to(staging)}")
    if kept:
        shown = ", ".join(str(path) for path in kept[:5])
        more = f" and {len(kept) - 5} more" if len(kept) > 5 else ""
        typer.echo(
            f"note: kept {len(kept)} existing file(s) that differ from the generated examples "
            f"({shown}{more}); delete them to regenerate",
            err=True,
        )


def _place_new_files(source: Path, target: Path) -> list[Path]:
    """Copy every file under `source` to the same place under `target`, except where a file
    with other contents is already there; returns those, left untouched."""
    from qwenlong.core.errors import ConfigError

    kept: list[Path] = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        dest = target / path.relative_to(source)
        try:
            if dest.exists():
                if not dest.is_file() or dest.read_bytes() != path.read_bytes():
                    kept.append(dest)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        except OSError as err:
            raise ConfigError(f"{dest}: cannot write the example ({err.strerror})") from None
    return kept


def register(app: typer.Typer) -> None:
    """Add `eval` to the CLI."""
    app.add_typer(eval_app, name="eval")
