"""Honest exit codes: bad input is 2 before any model loads, an incomplete run is 3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenlong.app.cli import main
from qwenlong.app.exit_codes import BAD_INPUT, INCOMPLETE, RunIncomplete
from qwenlong.app.run_outcome import check_eval_complete, check_memagent_complete
from qwenlong.core.dataset_io import write_samples
from qwenlong.evals.benchmarks.examples import write_examples
from qwenlong.memagent.run import MemAgentRunConfig


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """Exit status of `main(argv)` and its stderr lines."""
    with pytest.raises(SystemExit) as caught:
        main(argv)
    code = caught.value.code
    assert isinstance(code, int)
    return code, capsys.readouterr().err.splitlines()


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def unloadable_model(tmp_path: Path) -> Path:
    """A folder that passes the model-path check but cannot load: a run that reaches the
    model load would fail on it, so an error about anything else proves the order."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def test_data_check_of_an_empty_dataset_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = write_samples([], tmp_path / "empty.parquet")
    code, err = run_cli(["data", "check", str(empty)], capsys)
    assert code == INCOMPLETE
    assert err == [f"incomplete: read 0 samples from {empty}"]


def test_eval_against_an_unreachable_server_exits_3_with_the_pending_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = write_examples(tmp_path / "bench", seed=0, n=2)["frames"]
    config = write_yaml(
        tmp_path / "eval.yaml",
        "model: {backend: openai, model: m, "
        "openai: {base_url: 'http://127.0.0.1:9/v1', max_retries: 0}}\n"
        f"metrics: paper\nbootstrap_resamples: 10\nbenchmarks: [{{name: frames, path: {bench}}}]\n",
    )
    code, err = run_cli(["eval", str(config), "--out", str(tmp_path / "run")], capsys)
    assert code == INCOMPLETE
    assert err[-1] == (
        "incomplete: 2 of 2 questions pending (frames 2); rerun the same command to resume them"
    )
    assert (tmp_path / "run" / "scores.json").exists()  # the outputs are written all the same


def test_eval_with_a_missing_benchmark_path_fails_before_the_model_loads(
    tmp_path: Path, unloadable_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    config = write_yaml(
        tmp_path / "eval.yaml",
        f"model: {{backend: hf, model: {unloadable_model}}}\n"
        f"benchmarks: [{{name: frames}}, {{name: mrcr, path: {missing}}}]\n",
    )
    code, err = run_cli(["eval", str(config), "--out", str(tmp_path / "run")], capsys)
    assert code == BAD_INPUT
    assert err == [f"dataset error: benchmarks[1].path: {missing}: no such file or folder"]
    assert not (tmp_path / "run").exists()


def test_memagent_checks_model_and_input_before_loading(
    tmp_path: Path, unloadable_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_yaml(
        tmp_path / "memagent.yaml",
        f"model: {{backend: hf, model: {unloadable_model}}}\n"
        f"dataset: {{path: {tmp_path / 'nope.parquet'}}}\n",
    )
    out = ["--out", str(tmp_path / "run")]
    code, err = run_cli(["memagent", str(config), *out], capsys)
    assert (code, err) == (
        BAD_INPUT,
        [f"dataset error: dataset.path: {tmp_path / 'nope.parquet'}: no such file or folder"],
    )
    code, err = run_cli(["memagent", str(config), *out, "--set", "model.model=runs/nope"], capsys)
    assert code == BAD_INPUT
    assert err == [
        "config error: model.model: runs/nope: no such model folder "
        "(make a tiny one with: qwenlong models tiny --out runs/nope)"
    ]
    assert not (tmp_path / "run").exists()


def test_train_on_empty_data_says_0_rows(
    tmp_path: Path, unloadable_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = write_samples([], tmp_path / "empty.parquet")
    config = write_yaml(
        tmp_path / "train.yaml",
        f"model: {unloadable_model}\ndata: {{train: [{empty}], heldout_fraction: 0.2}}\n"
        "steps: 1\nheldout: {size: 4}\n",
    )
    code, err = run_cli(["train", str(config), "--out", str(tmp_path / "run")], capsys)
    assert (code, err) == (BAD_INPUT, [f"dataset error: data.train: {empty}: 0 rows"])


def test_eval_outcome_counts_pending_and_nothing_read() -> None:
    def scores(**entries: tuple[int, int]) -> dict:
        return {"benchmarks": {k: {"n": n, "n_pending": p} for k, (n, p) in entries.items()}}

    check_eval_complete(scores(frames=(3, 0)), "eval.yaml")
    with pytest.raises(RunIncomplete, match=r"^incomplete: 2 of 5 questions pending \(mrcr 2\)"):
        check_eval_complete(scores(frames=(3, 0), mrcr=(0, 2)), "eval.yaml")
    with pytest.raises(RunIncomplete, match=r"^incomplete: read 0 questions from eval\.yaml$"):
        check_eval_complete(scores(frames=(0, 0)), "eval.yaml")


def test_memagent_outcome_counts_skipped_samples(tmp_path: Path) -> None:
    config = MemAgentRunConfig.model_validate(
        {"model": {"model": "m"}, "dataset": {"path": "data.parquet"}}
    )
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(json.dumps({"id": str(i)}) + "\n" for i in range(2)))
    check_memagent_complete({"samples": 2}, predictions, config)
    with pytest.raises(RunIncomplete, match=r"^incomplete: 1 of 3 samples skipped"):
        check_memagent_complete({"samples": 3}, predictions, config)
    predictions.write_text("")
    with pytest.raises(RunIncomplete, match=r"^incomplete: read 0 samples from data\.parquet$"):
        check_memagent_complete({"samples": 0}, predictions, config)


def test_a_training_run_stopped_by_a_collapse_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trainer's own behaviour is tested in packages/rl/tests/test_collapse.py; here, that
    its "stopped" summary becomes exit 3 with one line naming the symptom."""
    import qwenlong.app.input_checks as input_checks
    import qwenlong.rl.trainer as trainer

    stopped = {"symptom": "entropy_collapse", "since": 2, "step": 4, "action": "stop"}
    monkeypatch.setattr(trainer, "train", lambda config, out: {"steps": 3, "stopped": stopped})
    monkeypatch.setattr(input_checks, "check_train_inputs", lambda config: None)
    config = write_yaml(tmp_path / "train.yaml", "model: m\ndata: {train: [d]}\nsteps: 4\n")
    code, err = run_cli(["train", str(config), "--out", str(tmp_path / "run")], capsys)
    assert code == INCOMPLETE
    assert err[-1].startswith("incomplete: collapse: entropy_collapse from step 2 to step 4")
