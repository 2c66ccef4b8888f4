"""`qwenlong tables`: the index, one table in each format, runs as rows, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from qwenlong.app.commands.tables import register
from qwenlong.core.errors import ConfigError, DatasetError


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    """A CLI holding only this command, kept a group so `tables` stays a subcommand."""
    cli = typer.Typer()

    @cli.callback()
    def _root() -> None:
        pass

    register(cli)
    return cli


def _invoke(app, *args: str):
    return CliRunner().invoke(app, ["tables", *args])


def _run_dir(root: Path) -> Path:
    run = root / "stage4-run"
    run.mkdir()

    def entry(score: float, **extra):
        base = {"metric": "cover_em", "metric_kind": "official", "score": score}
        return {**base, "ci": [score - 1, score + 1], "n": 50, "n_pending": 0, **extra}

    benchmarks = {
        "docmath": entry(30.0),
        "longbench_v2": entry(20.0),
        "frames": entry(10.0),
        "mrcr": entry(40.0),
        "corpusqa": entry(50.0, subset="128K"),
        "longbench_v1_qa": entry(60.0),
    }
    scores = {"model": "tiny-moe", "solver": "single_pass", "created": "2025-12-20T00:00:00"}
    (run / "scores.json").write_text(json.dumps({**scores, "benchmarks": benchmarks}))
    return run


def test_no_table_lists_every_table_with_its_caption(app):
    result = _invoke(app, "--format", "json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    assert [t["table"] for t in listing][:2] == [
        "table2_task_balancing",
        "table4_negative_gradient_clipping",
    ]
    assert len(listing) == 9 and all(t["caption"] for t in listing)
    text = _invoke(app)
    assert text.exit_code == 0 and "table12_longbench_v1" in text.output


def test_table_by_number_in_markdown_carries_the_misprint_note(app):
    result = _invoke(app, "12", "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert "| QwenLong-L1.5-30B-A3B | 70.40 | 91.00 |" in result.output
    assert "misprint" in result.output


def test_runs_become_rows_with_their_average(app, tmp_path):
    run = _run_dir(tmp_path)
    result = _invoke(app, "table7_main", "--runs", str(run), "--format", "json")
    assert result.exit_code == 0, result.output
    ours = json.loads(result.output)["rows"][-1]
    assert ours["label"] == "tiny-moe" and ours["source"] == "run (single_pass, official metric)"
    assert ours["values"]["Avg"] == pytest.approx(35.0)  # (30 + 20 + 10 + 40 + 50 + 60) / 6

    text = _invoke(app, "7", "--runs", str(run))
    assert text.exit_code == 0, text.output
    assert "tiny-moe" in text.output and "35.00" in text.output and "GPT-5" in text.output


def test_unknown_table_and_bad_run_are_one_line_errors(app, tmp_path):
    result = _invoke(app, "table99")
    assert isinstance(result.exception, ConfigError)
    assert "unknown table 'table99'" in str(result.exception)
    missing = _invoke(app, "7", "--runs", str(tmp_path / "nowhere"))
    assert isinstance(missing.exception, DatasetError)
    assert "\n" not in str(missing.exception)


def test_runs_without_a_table_is_a_usage_error(app, tmp_path):
    result = _invoke(app, "--runs", str(tmp_path))
    assert result.exit_code == 2
    assert "--runs needs a TABLE" in result.output
