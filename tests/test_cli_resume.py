"""Reruns into an existing --out (synth, eval, memagent): a changed config is refused in one line,
--overwrite starts over like a fresh run, a live run's lock refuses a second one, a dead run's
lock is taken over, a resumed run's result files are byte-for-byte a clean run's, and metrics
keep one record per step. Models are stubs; nothing here loads a real model."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from qwenlong.app.cli import main
from qwenlong.core.config_loader import load_config
from qwenlong.core.dataset_io import write_samples
from qwenlong.core.errors import BackendUnavailable
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation, TaskSample
from qwenlong.core.rundir import RunDir, read_metrics
from qwenlong.core.testing import EchoChatModel
from qwenlong.evals.benchmarks.examples import write_examples
from qwenlong.evals.run.config import EvalConfig
from qwenlong.evals.run.runner import run_eval
from qwenlong.memagent.run import MemAgentRunConfig
from qwenlong.synth.config import SynthConfig

RESULT_FILES = ("scores.json", "scores.official.json", "report.md")


def _cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, list[str]]:
    """Run `qwenlong ARGS` in this process: (exit code, stderr lines)."""
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err.strip().splitlines()


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "config.yaml"
    }


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_examples(tmp_path_factory.mktemp("bench"), seed=2, n=3)


@pytest.fixture
def eval_yaml(bench: dict[str, Path], tmp_path: Path) -> Path:
    path = tmp_path / "eval.yaml"
    path.write_text(
        "model: {backend: openai, model: echo}\n"
        "sampling: {max_new_tokens: 40}\n"
        "chunk_size: 2\n"
        "bootstrap_resamples: 20\n"
        "benchmarks:\n"
        f"  - {{name: frames, path: {bench['frames']}}}\n"
        f"  - {{name: longbench_v2, path: {bench['longbench_v2']}}}\n"
    )
    return path


@pytest.fixture
def echo_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's eval and memagent build the echo stub instead of a backend."""
    monkeypatch.setattr("qwenlong.evals.run.runner.make_chat_model", lambda _: EchoChatModel())
    monkeypatch.setattr("qwenlong.memagent.run.make_chat_model", lambda _: EchoChatModel())


@pytest.fixture
def live_pid() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _lock(folder: Path, pid: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))


@pytest.fixture
def synth_yaml(tiny_model_dir: Path, tmp_path: Path) -> Path:
    path = tmp_path / "synth.yaml"
    path.write_text(f"seed: 0\ntokenizer: {tiny_model_dir}\ncorpus: {{world: {{seed: 0}}}}\n")
    return path


def _memagent_yaml(tmp_path: Path) -> Path:
    data = tmp_path / "data.parquet"
    write_samples(
        [TaskSample(id="s0", task_type="reading", question="q?", answers=["a"], context="c")], data
    )
    path = tmp_path / "memagent.yaml"
    path.write_text(
        "model: {backend: openai, model: echo}\n"
        f"dataset: {{path: {data}}}\n"
        "sampling: {temperature: 0.7}\n"
    )
    return path


# --------------------------------------------------------------------------- changed config


def test_eval_rerun_with_another_model_is_refused_naming_the_key(
    eval_yaml: Path, tmp_path: Path, echo_backend: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert _cli(capsys, "eval", eval_yaml, "--out", out)[0] == 0
    before = _tree(out)
    code, err = _cli(capsys, "eval", eval_yaml, "--out", out, "--set", "model.model=OTHER")
    assert code == 2
    assert err == [
        f"config error: {out}: config differs from the one this folder was made with "
        '(model.model: "echo" -> "OTHER"); pass --overwrite to start over, or choose another --out'
    ]
    assert _tree(out) == before and "model: echo" in (out / "config.yaml").read_text()


def test_synth_rerun_with_another_world_is_refused_naming_the_keys(
    synth_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = synth_yaml
    out = tmp_path / "synth"
    with RunDir(out) as run:  # the folder a first run made; refused before any work
        run.save_config(load_config(config, SynthConfig))
    sets = ["--set", "seed=7", "--set", "corpus.world.seed=7", "--set", "corpus.world.n_people=30"]
    code, err = _cli(capsys, "synth", config, "--out", out, *sets)
    assert code == 2 and len(err) == 1
    assert err[0].endswith(
        "(corpus.world.n_people: 24 -> 30, corpus.world.seed: 0 -> 7, seed: 0 -> 7); "
        "pass --overwrite to start over, or choose another --out"
    )


def test_memagent_rerun_with_other_sampling_is_refused_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _memagent_yaml(tmp_path)
    out = tmp_path / "memagent"
    with RunDir(out) as run:
        run.save_config(load_config(config, MemAgentRunConfig))
    code, err = _cli(capsys, "memagent", config, "--out", out, "--set", "sampling.temperature=0")
    assert code == 2 and len(err) == 1
    assert "(sampling.temperature: 0.7 -> 0.0); pass --overwrite" in err[0]


# --------------------------------------------------------------------------- --overwrite


def test_eval_overwrite_gives_what_a_fresh_run_gives(
    eval_yaml: Path, tmp_path: Path, echo_backend: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out, fresh = tmp_path / "run", tmp_path / "fresh"
    (out).mkdir()
    (out / "my-notes.txt").write_text("not a run output")
    assert _cli(capsys, "eval", eval_yaml, "--out", out)[0] == 0
    shorter = ["--set", "sampling.max_new_tokens=8"]  # the echo stub's answers get shorter
    code, err = _cli(capsys, "eval", eval_yaml, "--out", out, *shorter, "--overwrite")
    assert (code, err) == (0, [])
    assert _cli(capsys, "eval", eval_yaml, "--out", fresh, *shorter)[0] == 0
    assert (out / "my-notes.txt").read_text() == "not a run output"
    (out / "my-notes.txt").unlink()
    assert _tree(out) == _tree(fresh)
    assert (out / "config.yaml").read_text() == (fresh / "config.yaml").read_text()


# --------------------------------------------------------------------------- resume


class FailsAfter(EchoChatModel):
    """The echo stub, unreachable after `calls` generate calls (an outage mid-run)."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.left = calls

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        if self.left == 0:
            raise BackendUnavailable("http://127.0.0.1:9/v1: connection refused")
        self.left -= 1
        return super().generate(conversations, sampling)


def test_resumed_eval_matches_a_clean_one_byte_for_byte_with_one_record_per_step(
    eval_yaml: Path, tmp_path: Path
) -> None:
    config = load_config(eval_yaml, EvalConfig)
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    run_eval(config, clean, model=EchoChatModel())
    partial = run_eval(config, resumed, model=FailsAfter(calls=1))
    assert partial["benchmarks"]["frames"]["n_pending"] > 0
    run_eval(config, resumed, model=EchoChatModel())
    run_eval(config, resumed, model=EchoChatModel())  # and a rerun with nothing left to do
    assert _tree(resumed).keys() == _tree(clean).keys()
    for name, data in _tree(clean).items():
        if name != "metrics.jsonl":  # its `generated` counts say what each run did
            assert _tree(resumed)[name] == data, name
    assert [r["step"] for r in read_metrics(resumed)] == [0, 1]
    assert [r["n_pending"] for r in read_metrics(resumed)] == [0, 0]
    assert "created" not in json.loads((clean / "scores.json").read_text())


# --------------------------------------------------------------------------- lock


@pytest.mark.parametrize("command", ["synth", "eval", "memagent"])
def test_a_second_run_into_a_busy_folder_is_refused_naming_the_pid(
    command: str,
    eval_yaml: Path,
    synth_yaml: Path,
    tmp_path: Path,
    live_pid: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = {
        "synth": synth_yaml,
        "eval": eval_yaml,
        "memagent": _memagent_yaml(tmp_path),
    }[command]
    out = tmp_path / "busy"
    _lock(out, live_pid)
    code, err = _cli(capsys, command, config, "--out", out)
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"config error: {out}: another run (pid {live_pid}) is writing here")
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing else was touched


def test_a_dead_runs_lock_is_taken_over_with_a_note(
    eval_yaml: Path,
    tmp_path: Path,
    echo_backend: None,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out = tmp_path / "run"
    _lock(out, gone.pid)
    with caplog.at_level(logging.WARNING):
        assert _cli(capsys, "eval", eval_yaml, "--out", out)[0] == 0
    assert f"{out}: taking over the lock of pid {gone.pid}" in caplog.text
    assert (out / "scores.json").is_file() and not (out / ".lock").exists()


# --------------------------------------------------------------------------- --out


@pytest.mark.parametrize("command", ["synth", "eval", "memagent"])
def test_out_naming_a_file_is_one_line(
    command: str,
    eval_yaml: Path,
    synth_yaml: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = {
        "synth": synth_yaml,
        "eval": eval_yaml,
        "memagent": _memagent_yaml(tmp_path),
    }[command]
    afile = tmp_path / "results.txt"
    afile.write_text("mine")
    code, err = _cli(capsys, command, config, "--out", afile)
    assert (code, err) == (
        2,
        [f"config error: {afile}: is a file, not a folder; choose another --out"],
    )
    assert afile.read_text() == "mine"


# --------------------------------------------------------------------------- eval examples


def test_eval_examples_leaves_an_edited_file_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "examples"
    assert _cli(capsys, "eval", "examples", out, "--n", "2")[0] == 0
    files = sorted(p for p in out.rglob("*") if p.is_file())
    edited = files[0]
    edited.write_bytes(edited.read_bytes() + b"\n# my edit\n")
    untouched = {p: p.read_bytes() for p in files[1:]}
    code, err = _cli(capsys, "eval", "examples", out, "--n", "2")
    assert code == 0
    assert edited.read_bytes().endswith(b"# my edit\n")
    assert {p: p.read_bytes() for p in files[1:]} == untouched
    assert err == [
        f"note: kept 1 existing file(s) that differ from the generated examples ({edited}); "
        "delete them to regenerate"
    ]
    assert os.listdir(out)  # the folder still holds every benchmark
