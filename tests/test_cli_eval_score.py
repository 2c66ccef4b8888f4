"""`qwenlong eval score [--raw]` and prompt templates checked when an eval config loads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from qwenlong.app.cli import main
from qwenlong.app.exit_codes import BAD_INPUT


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the CLI run in this process."""
    try:
        main(argv)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_raw_grades_predictions_as_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    file = tmp_path / "docmath.jsonl"
    lines = [
        {"id": "sentence", "prediction": "<think>x</think>So the answer is 4.5.", "answers": [4.5]},
        {"id": "extracted", "prediction": "4.5", "answers": [4.5]},
        {"id": "empty", "prediction": "", "answers": [0]},
    ]
    file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, out, _ = _run(["eval", "score", "docmath", str(file)], capsys)
    assert code == 0
    assert [json.loads(x)["correct"] for x in out.splitlines()] == [True, True, False]
    code, out, _ = _run(["eval", "score", "docmath", str(file), "--raw"], capsys)
    assert code == 0
    assert [json.loads(x)["correct"] for x in out.splitlines()] == [False, True, True]


def test_help_says_which_behaviour_is_the_default(capsys: pytest.CaptureFixture[str]):
    code, out, _ = _run(["eval", "score", "--help"], capsys)
    assert code == 0
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", out).split())  # the help box, unwrapped
    assert "--raw" in text and "Default (without --raw)" in text


def test_a_bad_prompt_template_fails_before_any_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    template = tmp_path / "update.txt"
    template.write_text("$problem $memory $section $chunk\n")
    config = tmp_path / "eval.yaml"
    config.write_text(
        "model: {backend: hf, model: runs/no-such-model}\nsolver: memagent\n"
        f"benchmarks: [{{name: frames}}]\nprompts:\n  memagent_update: {template}\n"
    )
    code, _, err = _run(["eval", str(config), "--out", str(tmp_path / "run")], capsys)
    assert code == BAD_INPUT
    assert err.splitlines() == [
        f"config error: {config}:4: prompts: {template}:1: unknown placeholder $chunk in the "
        "'memagent_update' prompt (its placeholders: $memory, $problem, $section (required); "
        "$memory_tokens, $plan, $plan_tokens, $section_number (optional); write $$ for a "
        "literal $)"
    ]
