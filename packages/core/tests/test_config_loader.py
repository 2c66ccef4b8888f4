"""YAML + overrides into config models; every error is one line naming file:line or --set."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import Field

from qwenlong.core.config import ConfigModel
from qwenlong.core.config_loader import (
    config_to_yaml,
    load_config,
    load_config_dict,
    write_resolved_config,
)
from qwenlong.core.errors import ConfigError


class Aepo(ConfigModel):
    enabled: bool = True
    entropy_high: float = 0.25
    entropy_low: float = 0.15


class Stage(ConfigModel):
    name: str
    steps: int = 1


class Train(ConfigModel):
    lr: float = 1e-6
    aepo: Aepo = Aepo()
    stages: list[Stage] = Field(default_factory=list)
    clip: float = math.inf
    tags: tuple[str, ...] = ()
    seed: int | None = None
    scale: float | str = 1.0


class Experiment(ConfigModel):
    model: str
    train: Train = Train()
    judges: dict[str, Aepo] = Field(default_factory=dict)


STAGE1 = """\
model: tiny
train:
  lr: 2.0e-6
  aepo:
    enabled: true
    entropy_hgh: 0.3
  stages:
    - name: warmup
    - name: main
      stpes: 3
"""


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error(
    path: Path | str, model: type[ConfigModel] = Experiment, overrides: tuple[str, ...] = ()
) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, model, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_valid_file_loads_with_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "model: tiny\ntrain:\n  lr: 3.0e-6\n"), Experiment)
    assert cfg.model == "tiny" and cfg.train.lr == 3e-6 and cfg.train.aepo == Aepo()


def test_unknown_nested_key_names_line_and_close_field(tmp_path: Path) -> None:
    path = write(tmp_path, STAGE1)
    assert error(path) == (
        f"config error: {path}:6: train.aepo.entropy_hgh is not a field "
        "(did you mean entropy_high?) (and 1 more)"
    )


def test_unknown_key_inside_list_item(tmp_path: Path) -> None:
    path = write(tmp_path, STAGE1.replace("    entropy_hgh: 0.3\n", ""))
    assert error(path) == (
        f"config error: {path}:9: train.stages.1.stpes is not a field (did you mean steps?)"
    )


def test_unknown_top_level_and_dict_value_keys(tmp_path: Path) -> None:
    top = write(tmp_path, "model: m\ntrian:\n  lr: 1\n", "top.yaml")
    assert error(top) == f"config error: {top}:2: trian is not a field (did you mean train?)"
    nested = write(tmp_path, "model: m\njudges:\n  gpt:\n    enabld: false\n", "dict.yaml")
    assert error(nested) == (
        f"config error: {nested}:4: judges.gpt.enabld is not a field (did you mean enabled?)"
    )


def test_unknown_key_without_close_match_has_no_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\nzzz: 1\n")
    assert error(path) == f"config error: {path}:2: zzz is not a field"


def test_wrong_type_shows_value_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\n\ntrain:\n  lr: abc\n")
    assert error(path) == (
        f"config error: {path}:4: train.lr: Input should be a valid number, "
        "unable to parse string as a number (got 'abc')"
    )


def test_missing_required_field_points_at_its_section(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\ntrain:\n  stages:\n    - steps: 2\n")
    assert error(path) == f"config error: {path}:4: train.stages.0.name is required and missing"
    empty = write(tmp_path, "# nothing yet\n", "empty.yaml")
    assert error(empty) == f"config error: {empty}: model is required and missing"


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\ntrain:\n  lr: [1, 2\n  seed: 3\n")
    assert error(path).startswith(f"config error: {path}:4: invalid YAML: ")


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\ntrain:\n  lr: 1.0\n  lr: 2.0\n")
    assert error(path) == f"config error: {path}:4: train.lr appears twice (first at line 3)"


def test_missing_file_and_non_mapping_top_level(tmp_path: Path) -> None:
    assert error(tmp_path / "nope.yaml") == f"config error: {tmp_path / 'nope.yaml'}: no such file"
    path = write(tmp_path, "- model\n- train\n")
    assert (
        error(path)
        == f"config error: {path}: top level must be a mapping of config keys, got a list"
    )


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, ""), Train) == Train()


def test_exponent_without_dot_is_a_float(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "model: m\ntrain:\n  scale: 1e-6\n"), Experiment)
    assert cfg.train.scale == 1e-6 and isinstance(cfg.train.scale, float)


def test_overrides_are_typed_as_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\ntrain:\n  lr: 1.0\n")
    cfg = load_config(
        path,
        Experiment,
        [
            "train.lr=3e-6",
            "train.seed=7",
            "train.aepo.enabled=false",
            "train.tags=[a, b]",
            "train.scale=1e-3",
            "model=other",
        ],
    )
    assert cfg.train.lr == 3e-6 and cfg.train.seed == 7 and cfg.train.aepo.enabled is False
    assert cfg.train.tags == ("a", "b") and cfg.train.scale == 1e-3 and cfg.model == "other"
    assert load_config(path, Experiment, ["train.seed=null"]).train.seed is None


def test_overrides_create_nested_keys_and_index_lists(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\ntrain:\n  stages: [{name: a}, {name: b}]\n")
    cfg = load_config(path, Experiment, ["judges.gpt.entropy_low=0.1", "train.stages.1.steps=9"])
    assert cfg.judges == {"gpt": Aepo(entropy_low=0.1)}
    assert cfg.train.stages == [Stage(name="a"), Stage(name="b", steps=9)]
    assert error(path, overrides=("train.stages.5.steps=1",)) == (
        "config error: --set train.stages.5.steps=1: train.stages.5 is not an index of a 2-item list"
    )


def test_override_errors_are_blamed_on_the_override(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\ntrain:\n  lr: 1.0\n")
    assert error(path, overrides=("train.lr=abc",)) == (
        "config error: --set train.lr=abc: train.lr: Input should be a valid number, "
        "unable to parse string as a number (got 'abc')"
    )
    assert error(path, overrides=("train.aepo.entropy_hgh=1",)) == (
        "config error: --set train.aepo.entropy_hgh=1: train.aepo.entropy_hgh is not a field "
        "(did you mean entropy_high?)"
    )


def test_override_fixes_a_bad_file_value(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\ntrain:\n  lr: abc\n")
    assert load_config(path, Experiment, ["train.lr=0.5"]).train.lr == 0.5


def test_malformed_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\ntrain:\n  lr: 1.0\n")
    assert error(path, overrides=("train.lr",)) == (
        "config error: --set train.lr: expected KEY=VALUE with a dotted KEY, e.g. train.lr=1e-6"
    )
    assert error(path, overrides=("train..lr=1",)).startswith(
        "config error: --set train..lr=1: expected"
    )
    assert error(path, overrides=("train.lr.x=1",)) == (
        "config error: --set train.lr.x=1: train.lr is a float, not a mapping"
    )
    assert error(path, overrides=("train.tags=[a",)).startswith(
        "config error: --set train.tags=[a: the value is not valid YAML"
    )


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, "model: m\n"),
        Experiment,
        ["train.tags=[x]", "train.stages=[{name: s}]", "judges.j.enabled=false"],
    )
    text = config_to_yaml(cfg)
    assert "clip: .inf" in text  # JSON would have turned infinity into null
    assert "aepo:" in text and "entropy_low: 0.15" in text  # defaults written out
    path = write_resolved_config(cfg, tmp_path / "run" / "config.yaml")
    assert path.read_text().startswith("# Resolved Experiment")
    assert load_config(path, Experiment) == cfg


def test_load_config_dict_names_its_source_and_keeps_input() -> None:
    data = {"model": "m", "train": {"lr": 1.0}}
    cfg = load_config_dict(data, Experiment, "recipe:stage1", overrides=["train.lr=2.0"])
    assert cfg.train.lr == 2.0 and data["train"] == {"lr": 1.0}
    with pytest.raises(ConfigError) as info:
        load_config_dict({"model": "m", "train": {"lrr": 1}}, Experiment, "recipe:stage1")
    assert (
        str(info.value)
        == "config error: recipe:stage1: train.lrr is not a field (did you mean lr?)"
    )
    with pytest.raises(ConfigError, match="recipe:x: top level must be a mapping, got a list"):
        load_config_dict([1], Experiment, "recipe:x")  # type: ignore[arg-type]


def test_anchors_and_merge_keys_work_and_self_reference_is_refused(tmp_path: Path) -> None:
    text = (
        "model: m\n"
        "judges:\n"
        "  a: &base\n"
        "    entropy_high: 0.3\n"
        "    entropy_low: 0.1\n"
        "  b:\n"
        "    <<: *base\n"
        "    entropy_low: 0.2\n"
    )
    cfg = load_config(write(tmp_path, text), Experiment)
    assert cfg.judges["b"] == Aepo(entropy_high=0.3, entropy_low=0.2)
    shared = write(
        tmp_path, "model: m\njudges:\n  a: &j {entropy_low: 0.1}\n  b: *j\n", "alias.yaml"
    )
    cfg = load_config(shared, Experiment, ["judges.b.entropy_low=0.3"])
    assert cfg.judges["a"].entropy_low == 0.1 and cfg.judges["b"].entropy_low == 0.3
    loop = write(tmp_path, "model: m\ntrain:\n  stages: &s\n    - *s\n", "loop.yaml")
    assert error(loop) == f"config error: {loop}:3: train.stages.0 contains itself"
