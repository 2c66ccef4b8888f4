"""Run directories (metrics JSONL, resume, torn lines, TensorBoard, wandb) and progress bars."""

from __future__ import annotations

import io
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qwenlong.core import progress
from qwenlong.core.config_loader import load_config
from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.rundir import LoggingConfig, RunDir, read_metrics


def lines(run: Path) -> list[str]:
    return (run / "metrics.jsonl").read_text().splitlines()


def test_log_appends_one_flushed_object_per_call(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.log(1, {"loss": 0.5, "phase": "warmup"})
    run.log(2, {"loss": 0.25, "aepo_active": True})
    # Read while the run is still open: each call reached the file already.
    assert lines(tmp_path / "run") == [
        '{"step": 1, "loss": 0.5, "phase": "warmup"}',
        '{"step": 2, "loss": 0.25, "aepo_active": true}',
    ]
    run.close()


def test_non_finite_floats_become_null_and_numpy_scalars_plain(tmp_path: Path) -> None:
    with RunDir(tmp_path) as run:
        run.log(
            3,
            {
                "nan": float("nan"),
                "inf": float("-inf"),
                "f32": np.float32(0.5),
                "i": np.int64(4),
                "none": None,
            },
        )
    assert read_metrics(tmp_path) == [
        {"step": 3, "nan": None, "inf": None, "f32": 0.5, "i": 4, "none": None}
    ]


def test_step_is_not_a_metric_name(tmp_path: Path) -> None:
    with RunDir(tmp_path) as run, pytest.raises(ValueError, match="'step'"):
        run.log(1, {"step": 2})


def test_log_after_close_fails(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.close()
    run.close()  # idempotent
    with pytest.raises(RuntimeError, match="after close"):
        run.log(1, {"x": 1})


def test_reopening_a_run_appends(tmp_path: Path) -> None:
    with RunDir(tmp_path) as run:
        run.log(1, {"loss": 1.0})
        run.log(2, {"loss": 0.5})
    with RunDir(tmp_path) as run:
        run.log(3, {"loss": 0.25})
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3]


def test_torn_last_line_is_ignored_then_cut_on_resume(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "lo')
    assert read_metrics(tmp_path) == [{"step": 1, "loss": 1.0}]
    with RunDir(tmp_path) as run:
        run.log(2, {"loss": 0.5})
    assert lines(tmp_path) == ['{"step": 1, "loss": 1.0}', '{"step": 2, "loss": 0.5}']


def test_complete_last_line_missing_its_newline_is_kept(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}')
    assert read_metrics(tmp_path) == [{"step": 1}, {"step": 2}]
    with RunDir(tmp_path) as run:
        run.log(3, {})
    assert read_metrics(tmp_path) == [{"step": 1}, {"step": 2}, {"step": 3}]


def test_corrupt_middle_line_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2, \n{"step": 3}\n')
    with pytest.raises(DatasetError) as info:
        read_metrics(path)
    assert str(info.value).startswith(f"dataset error: {path} line 2: not valid JSON")
    path.write_text('{"step": 1}\n[1, 2]\n')
    with pytest.raises(DatasetError, match=r"line 2: expected a JSON object"):
        read_metrics(path)
    with pytest.raises(DatasetError, match="no such file"):
        read_metrics(tmp_path / "other.jsonl")


def test_save_config_writes_resolved_yaml(tmp_path: Path) -> None:
    config = LoggingConfig(wandb_entity="lab")
    with RunDir(tmp_path) as run:
        path = run.save_config(config)
    assert path == tmp_path / "config.yaml"
    assert "tensorboard: false" in path.read_text()  # defaults are written out
    assert load_config(path, LoggingConfig) == config


def test_path_for_stays_inside_the_run(tmp_path: Path) -> None:
    with RunDir(tmp_path / "run") as run:
        target = run.path_for("checkpoints/step_10/model.safetensors")
        assert target == tmp_path / "run" / "checkpoints" / "step_10" / "model.safetensors"
        assert target.parent.is_dir()
        with pytest.raises(ConfigError, match="not a path inside the run"):
            run.path_for("../elsewhere.txt")


def test_tensorboard_mirrors_numeric_metrics(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with RunDir(tmp_path, LoggingConfig(tensorboard=True)) as run:
        run.log(1, {"loss": 0.5, "phase": "a", "ok": True})
        run.log(2, {"loss": 0.25, "phase": "b", "ok": False})
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["loss", "ok"]  # strings stay in the JSONL only
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(1, 0.5), (2, 0.25)]
    assert [e.value for e in acc.Scalars("ok")] == [1.0, 0.0]


def test_no_tensorboard_folder_unless_asked(tmp_path: Path) -> None:
    with RunDir(tmp_path) as run:
        run.log(1, {"loss": 1.0})
    assert not (tmp_path / "tensorboard").exists()


def test_wandb_missing_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` raise ImportError
    with pytest.raises(ConfigError, match=r"qwenlong-core\[wandb\]"):
        RunDir(tmp_path, LoggingConfig(wandb_project="p"))


class FakeWandbRun:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.logged: list[tuple[dict[str, float], int]] = []
        self.config = types.SimpleNamespace(
            values={}, update=lambda d, allow_val_change: self.config.values.update(d)
        )
        self.finished = False

    def log(self, data: dict[str, float], step: int) -> None:
        self.logged.append((data, step))

    def finish(self) -> None:
        self.finished = True


def test_wandb_mirrors_numbers_and_resumes_the_same_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[FakeWandbRun] = []
    ids = iter(["id-first", "id-second"])
    fake = types.ModuleType("wandb")
    fake.init = lambda **kw: runs.append(FakeWandbRun(**kw)) or runs[-1]  # type: ignore[attr-defined]
    fake.util = types.SimpleNamespace(generate_id=lambda: next(ids))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb", fake)
    logging = LoggingConfig(wandb_project="qwenlong", wandb_entity="lab")
    with RunDir(tmp_path / "exp1", logging) as run:
        run.save_config(logging)
        run.log(5, {"loss": 0.5, "note": "x", "nan": float("nan")})
    first = runs[0]
    assert first.kwargs["project"] == "qwenlong" and first.kwargs["entity"] == "lab"
    assert first.kwargs["id"] == "id-first" and first.kwargs["resume"] == "allow"
    assert first.logged == [({"loss": 0.5}, 5)]
    assert first.config.values["wandb_project"] == "qwenlong" and first.finished
    with RunDir(tmp_path / "exp1", logging):
        pass
    assert runs[1].kwargs["id"] == "id-first"  # reopened run continues the same wandb run


def test_progress_is_silent_without_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(progress.track(range(5), description="work")) == [0, 1, 2, 3, 4]
    with progress.progress_bar(3, "more") as advance:
        advance(3)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_terminal_and_nests(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.delenv(progress.ENV_VAR, raising=False)
    with progress.progress_bar(2, "outer") as advance:
        assert list(progress.track(["a", "b"], description="inner")) == ["a", "b"]
        advance(2)
    assert "outer" in terminal.getvalue() and "inner" in terminal.getvalue()


def test_progress_env_var_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv(progress.ENV_VAR, "0")
    assert not progress.progress_enabled()
    assert list(progress.track(iter([1, 2]), description="quiet")) == [1, 2]
    assert terminal.getvalue() == ""


def test_relogging_a_step_from_before_the_reopening_replaces_it(tmp_path: Path) -> None:
    with RunDir(tmp_path) as run:
        for step in range(3):
            run.log(step, {"generated": 2})
    with RunDir(tmp_path) as run:  # a rerun reports every step again
        for step in range(3):
            run.log(step, {"generated": 0})
        run.log(3, {"generated": 1})
    assert read_metrics(tmp_path) == [{"step": s, "generated": 0 if s < 3 else 1} for s in range(4)]


def test_records_of_one_opening_are_all_kept_and_other_lines_keep_their_bytes(
    tmp_path: Path,
) -> None:
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "x": 1.50}\n{"step": 2, "x": 2}\n')
    with RunDir(tmp_path) as run:
        run.log(2, {"x": 3})
        run.log(2, {"y": 4})  # a second record of the same step within one opening stays
    assert lines(tmp_path) == [
        '{"step": 1, "x": 1.50}',
        '{"step": 2, "x": 3}',
        '{"step": 2, "y": 4}',
    ]
    assert not (tmp_path / "metrics.jsonl.partial").exists()
