"""Bad input at the command line: one clear line on stderr, a non-zero exit, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from qwenlong.core.dataset_io import write_samples
from qwenlong.core.records import TaskSample


def _qwenlong(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qwenlong.app.cli", *args], capture_output=True, text=True
    )


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_bad_yaml_key_names_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "eval.yaml"
    config.write_text(
        "model:\n  backend: hf\n  model: m\n  hf:\n    batch_sise: 2\nbenchmarks: [{name: frames}]\n"
    )
    line = _one_error_line(_qwenlong("eval", str(config), "--out", str(tmp_path / "run")))
    assert line == (
        f"config error: {config}:5: model.hf.batch_sise is not a field (did you mean batch_size?)"
    )


def test_missing_dataset_field_names_file_row_and_field(tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    write_samples(
        [TaskSample(id=str(i), task_type="mc", question="q", answers=["A"]) for i in range(3)],
        good,
    )
    table = pq.read_table(good)
    bad = tmp_path / "bad.parquet"
    pq.write_table(table.drop_columns(["answers"]), bad)
    line = _one_error_line(_qwenlong("data", "check", str(bad)))
    assert line.startswith("dataset error: ") and str(bad) in line and "'answers'" in line
    assert "missing" in line

    nulls = table.set_column(
        table.schema.get_field_index("question"),
        "question",
        pa.array(["q", None, "q"], type=pa.string()),
    )
    pq.write_table(nulls, bad)
    line = _one_error_line(_qwenlong("data", "check", str(bad)))
    assert f"{bad} row 1" in line and "'question'" in line

    ok = _qwenlong("data", "check", str(good))
    assert ok.returncode == 0 and "3 samples" in ok.stdout


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    line = _one_error_line(
        _qwenlong(
            "generate",
            "--backend",
            "openai",
            "--model",
            "m",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--max-retries",
            "0",
            "hi",
        )
    )
    assert line.startswith("backend unavailable: http://127.0.0.1:9/v1/chat/completions")
