"""Usage errors through the real entry point: one line on stderr, exit 2, never a traceback.

typer vendors click as `typer._click`, whose exceptions are not `click.ClickException`s; these
tests go through `qwenlong.app.cli.main` (and the installed console script), not typer's
CliRunner, so they see what a person at a shell sees.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qwenlong.app.cli import main
from qwenlong.app.exit_codes import BAD_INPUT

QWENLONG = str(Path(sys.executable).with_name("qwenlong"))
"""The console script installed in this environment."""

MISSING = "runs/no-such-model"
NO_MODEL = (
    f"{MISSING}: no such model folder (make a tiny one with: qwenlong models tiny --out {MISSING})"
)

CASES = {
    "negative temperature": (
        ["generate", "--model", "m", "--temperature", "-1", "hi"],
        "Error: Invalid value for '--temperature': Input should be greater than or equal to 0",
    ),
    "synth without --out": (["synth", "synth.yaml"], "Error: Missing option '--out'."),
    "serve a missing model": (["serve", MISSING], f"config error: {NO_MODEL}"),
    "generate with a missing model": (
        ["generate", "--model", MISSING, "hi"],
        f"config error: --model: {NO_MODEL}",
    ),
    "unknown command": (["no-such-command"], "Error: No such command 'no-such-command'."),
    "port out of range": (
        ["serve", "--port", "70000", MISSING],
        "Error: Invalid value for '--port': Input should be less than or equal to 65535",
    ),
    "zero completions": (
        ["generate", "--model", "m", "--n", "0", "hi"],
        "Error: Invalid value for '--n': Input should be greater than or equal to 1",
    ),
    "zero example questions": (
        ["eval", "examples", "bench", "--n", "0"],
        "Error: Invalid value for '--n': Input should be greater than or equal to 1",
    ),
    "unknown table format": (
        ["tables", "7", "--format", "xml"],
        "Error: Invalid value for '--format': Value error, 'xml' is not one of 'text', "
        "'markdown', 'json'.",
    ),
    "unknown option": (["generate", "--bogus", "hi"], "Error: No such option: --bogus"),
}


@pytest.mark.parametrize(("argv", "line"), CASES.values(), ids=CASES.keys())
def test_usage_error_is_one_line_and_exit_2(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [line]


def test_no_command_shows_the_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == BAD_INPUT
    captured = capsys.readouterr()
    assert "Usage: " in captured.out + captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("name", ["unknown option", "synth without --out", "serve a missing model"])
def test_console_script_prints_the_same_line(name: str) -> None:
    """The installed `qwenlong` script, as a shell runs it: no traceback, exit 2, one line."""
    argv, line = CASES[name]
    result = subprocess.run(
        [QWENLONG, *argv], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == BAD_INPUT
    assert result.stderr.splitlines() == [line]
