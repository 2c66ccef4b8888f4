"""Reruns into a run folder: a changed config is refused naming its keys, --overwrite starts over."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import Field

from qwenlong.core.backends.config import BackendConfig
from qwenlong.core.config import ConfigModel
from qwenlong.core.errors import ConfigError
from qwenlong.core.run_guard import (
    TRANSPORT_KEYS,
    check_same_config,
    claim_run,
    config_differences,
    flat_config,
)
from qwenlong.core.run_lock import LOCK_NAME
from qwenlong.core.rundir import RunDir


class World(ConfigModel):
    seed: int = 0
    n_people: int = 60
    ratio: float = 0.5


class Experiment(ConfigModel):
    seed: int = 0
    world: World = World()
    model: BackendConfig = BackendConfig(model="tiny")
    lengths: list[int] = Field(default_factory=lambda: [4096, 8192])
    notes: dict[str, str] = Field(default_factory=dict)


def _made_with(folder: Path, config: Experiment) -> Path:
    with RunDir(folder) as run:
        run.save_config(config)
    return folder


def test_same_config_resumes_and_a_fresh_folder_has_nothing_to_check(tmp_path: Path) -> None:
    config = Experiment(world=World(ratio=math.nan), lengths=[1, 2])
    check_same_config(tmp_path / "new", config)  # no config.yaml: nothing to protect
    check_same_config(_made_with(tmp_path / "run", config), config)  # NaN equals its own NaN


def test_changed_config_is_refused_naming_every_changed_key(tmp_path: Path) -> None:
    run = _made_with(tmp_path / "run", Experiment())
    changed = Experiment(seed=7, world=World(seed=7, n_people=30))
    with pytest.raises(ConfigError) as info:
        check_same_config(run, changed)
    assert str(info.value) == (
        f"config error: {run}: config differs from the one this folder was made with "
        "(seed: 0 -> 7, world.n_people: 60 -> 30, world.seed: 0 -> 7); "
        "pass --overwrite to start over, or choose another --out"
    )


def test_strings_lists_and_new_sections_are_named(tmp_path: Path) -> None:
    run = _made_with(tmp_path / "run", Experiment())
    changed = Experiment(model=BackendConfig(model="OTHER"), lengths=[4096], notes={"why": "x"})
    with pytest.raises(ConfigError) as info:
        check_same_config(run, changed)
    message = str(info.value)
    assert '(lengths.1: 8192 -> <absent>, model.model: "tiny" -> "OTHER", ' in message
    assert 'notes: {} -> <absent>, notes.why: <absent> -> "x")' in message
    assert "\n" not in message


def test_exempt_keys_match_as_consecutive_parts(tmp_path: Path) -> None:
    run = _made_with(tmp_path / "run", Experiment())
    transport = Experiment(model={"model": "tiny", "openai": {"timeout_s": 5, "max_retries": 0}})
    check_same_config(run, transport, TRANSPORT_KEYS)  # how requests travel, not what they ask
    with pytest.raises(ConfigError, match=r"model\.openai\.timeout_s: 600\.0 -> 5\.0"):
        check_same_config(run, transport)
    check_same_config(run, Experiment(world=World(seed=3)), ["world.seed"])


def test_differences_are_capped_and_counted() -> None:
    saved = {f"k{i}": i for i in range(10)}
    now = {f"k{i}": i + 1 for i in range(10)}
    text = config_differences(saved, now, limit=2)
    assert text == "k0: 0 -> 1, k1: 1 -> 2, and 8 more"
    assert config_differences(saved, saved) == ""


def test_flat_config_indexes_lists_and_drops_excluded_paths() -> None:
    flat = flat_config(Experiment(), ["openai", "vllm", "hf"])
    assert flat["lengths.0"] == 4096 and flat["lengths.1"] == 8192
    assert flat["notes"] == {} and flat["world.n_people"] == 60
    assert not any(".openai." in key or ".hf." in key for key in flat)


def test_an_unreadable_config_yaml_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("seed: [unclosed\n")
    with pytest.raises(ConfigError, match=r"config.yaml: unreadable \(.*\); pass --overwrite"):
        check_same_config(tmp_path, Experiment())


def test_claim_run_refuses_a_changed_config_and_releases_the_lock(tmp_path: Path) -> None:
    run = _made_with(tmp_path / "run", Experiment())
    refused = pytest.raises(ConfigError, match=r"\(seed: 0 -> 1\)")
    with refused, claim_run(run, Experiment(seed=1), ["out.txt"], overwrite=False):
        pytest.fail("the body must not run")
    assert not (run / LOCK_NAME).exists()
    with claim_run(run, Experiment(), ["out.txt"], overwrite=False):
        assert (run / LOCK_NAME).is_file()
    assert not (run / LOCK_NAME).exists()


def test_overwrite_removes_only_the_run_outputs(tmp_path: Path) -> None:
    run = _made_with(tmp_path / "run", Experiment())
    with RunDir(run) as rundir:
        rundir.log(0, {"x": 1})
    (run / "predictions").mkdir()
    (run / "predictions" / "a.jsonl").write_text("{}\n")
    (run / "plot_a.png").write_text("png")
    (run / "my-notes.txt").write_text("keep me")
    with claim_run(run, Experiment(seed=1), ["predictions", "plot_*.png"], overwrite=True):
        assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME, "my-notes.txt"]
    assert (run / "my-notes.txt").read_text() == "keep me"
