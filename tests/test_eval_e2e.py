"""`qwenlong eval` end to end with the tiny model: killed halfway, resumed, same as uninterrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qwenlong.app.cli import main
from qwenlong.evals.benchmarks.examples import write_examples

BENCHES = ("longbench_v2", "mrcr", "longbench_v1_qa")


def _eval_cmd(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "qwenlong.app.cli", "eval", str(config), "--out", str(out)]


def _env() -> dict[str, str]:
    return {**os.environ, "QWENLONG_PROGRESS": "0", "OMP_NUM_THREADS": "1"}


def _predictions(out: Path) -> dict[str, dict]:
    found = {}
    for path in sorted((out / "predictions").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            found[f"{path.stem}/{record['id']}"] = record["outputs"]
    return found


@pytest.fixture(scope="module")
def config(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("e2e")
    paths = write_examples(root / "bench", seed=3, n=6)
    benches = "\n".join(f"  - {{name: {n}, path: {paths[n]}}}" for n in BENCHES)
    config = root / "eval.yaml"
    config.write_text(
        f"model: {{backend: hf, model: {tiny_model_dir}, hf: {{torch_threads: 1}}}}\n"
        "sampling: {max_input_tokens: 2048, max_new_tokens: 24, temperature: 0.7, seed: 11}\n"
        "samples_per_question: 2\n"
        "chunk_size: 2\n"
        "bootstrap_resamples: 100\n"
        f"benchmarks:\n{benches}\n"
    )
    return config


def test_killed_run_resumes_to_the_same_predictions_and_scores(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    monkeypatch.setenv("QWENLONG_PROGRESS", "0")
    # Uninterrupted, and the final resume, run in this process through the CLI entry point; only
    # the run that gets killed needs its own process.
    straight = tmp_path / "straight"
    main(_eval_cmd(config, straight)[3:])

    resumed = tmp_path / "resumed"
    proc = subprocess.Popen(
        _eval_cmd(config, resumed), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if len(_predictions(resumed)) >= 4:  # two chunks of the first benchmark are on disk
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before_kill = len(_predictions(resumed))
    total = len(_predictions(straight))
    assert 0 < done_before_kill < total

    main(_eval_cmd(config, resumed)[3:])
    assert _predictions(resumed) == _predictions(straight)
    a = json.loads((straight / "scores.json").read_text())["benchmarks"]
    b = json.loads((resumed / "scores.json").read_text())["benchmarks"]
    assert a == b
    assert set(a) == set(BENCHES)
    assert all(entry["n"] == 6 and entry["n_pending"] == 0 for entry in a.values())
    assert (resumed / "report.md").read_text() == (straight / "report.md").read_text()
