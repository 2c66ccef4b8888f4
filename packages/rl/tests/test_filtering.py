"""Retrospective filtering: length limit, pass-rate thresholds, reasons, pass-rate tallies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenlong.core.config_loader import load_config_dict
from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.evals.prompts import build_prompt
from qwenlong.rl.filtering import (
    PassRateTally,
    RetroFilterConfig,
    prompt_tokens,
    read_pass_rates,
    replay_pool,
    retrospective_filter,
)


def sample(sid: str, tokens: int | None, task: str = "reading", context: str = "") -> TaskSample:
    return TaskSample(
        id=sid,
        task_type=task,
        question="Who?",
        answers=["x"],
        context=context,
        context_tokens=tokens,
    )


def test_length_and_pass_rate_reasons_counted_per_task() -> None:
    samples = [
        sample("fits", 90),  # 90 + 10 = 100: exactly the limit, kept
        sample("long", 91),  # 101: too long, whatever its pass rate
        sample("easy", 50, task="mc"),
        sample("hard", 50, task="mc"),
        sample("mid", 50, task="mc"),
        sample("new", 50),
    ]
    rates = {"fits": 0.5, "long": 0.5, "easy": 1.0, "hard": 0.0, "mid": 0.125, "gone": 0.5}
    config = RetroFilterConfig(max_input_tokens=100, prompt_margin_tokens=10)
    report = retrospective_filter(samples, rates, config)
    assert [s.id for s in report.kept] == ["fits", "mid", "new"]
    assert report.counts == {"kept": 3, "too_long": 1, "always_solved": 1, "never_solved": 1}
    assert report.by_task["mc"] == {"always_solved": 1, "never_solved": 1, "kept": 1}
    assert report.by_task["reading"] == {"kept": 2, "too_long": 1}
    assert report.summary() == "kept=3, too_long=1, always_solved=1, never_solved=1"


def test_thresholds_are_configurable_and_can_be_switched_off() -> None:
    samples = [sample(str(i), 10) for i in range(5)]
    rates = {"0": 0.0, "1": 0.25, "2": 0.5, "3": 0.75, "4": 1.0}
    keep_all = RetroFilterConfig(never_solved_at_most=None, always_solved_at_least=None)
    assert len(retrospective_filter(samples, rates, keep_all).kept) == 5
    middle = RetroFilterConfig(never_solved_at_most=0.25, always_solved_at_least=0.75)
    assert [s.id for s in retrospective_filter(samples, rates, middle).kept] == ["2"]


def test_unmeasured_samples_can_be_dropped() -> None:
    config = RetroFilterConfig(keep_unmeasured=False)
    report = retrospective_filter([sample("a", 1), sample("b", 1)], {"a": 0.5}, config)
    assert [s.id for s in report.kept] == ["a"]
    assert report.counts["unmeasured_dropped"] == 1


def test_counter_measures_the_prompt_only_where_needed() -> None:
    def chars(text: str) -> int:
        return len(text)

    config = RetroFilterConfig(max_input_tokens=10_000)
    known = sample("k", 500, context="long text " * 50)
    unknown = sample("u", None, context="long text " * 50)
    # A known context length is not re-counted: only the prompt around it is.
    assert prompt_tokens(known, config, chars) == 500 + len(build_prompt(known, context=""))
    assert prompt_tokens(unknown, config, chars) == len(build_prompt(unknown))
    assert len(build_prompt(unknown)) - len(build_prompt(unknown, context="")) == 500


def test_missing_length_without_counter_names_the_sample() -> None:
    with pytest.raises(DatasetError, match="sample u: context_tokens is not set"):
        retrospective_filter([sample("u", None)], {}, RetroFilterConfig(max_input_tokens=5))
    # Without a length limit nothing needs counting.
    assert len(retrospective_filter([sample("u", None)], {}, RetroFilterConfig()).kept) == 1


def test_bad_pass_rates_and_thresholds_are_refused() -> None:
    with pytest.raises(DatasetError, match=r"sample a: 1\.5 is not a number in"):
        retrospective_filter([sample("a", 1)], {"a": 1.5}, RetroFilterConfig())
    with pytest.raises(DatasetError, match="sample b: nan"):
        retrospective_filter([], {"b": float("nan")}, RetroFilterConfig())
    with pytest.raises(ConfigError, match="must be below"):
        load_config_dict(
            {"never_solved_at_most": 0.6, "always_solved_at_least": 0.5},
            RetroFilterConfig,
            "stage2.yaml",
        )


def test_tally_rates_state_and_file_round_trip(tmp_path: Path) -> None:
    tally = PassRateTally()
    tally.add(["a"] * 4 + ["b"] * 4, [True, False, False, False, True, True, True, True])
    tally.add(["a"] * 4, [True, True, False, False])
    assert tally.rates() == {"a": 3 / 8, "b": 1.0}
    restored = PassRateTally()
    restored.load_state_dict(json.loads(json.dumps(tally.state_dict())))
    assert restored.rates() == tally.rates()
    path = tally.save(tmp_path / "stage1" / "pass_rates.jsonl")
    assert read_pass_rates(path) == {"a": 0.375, "b": 1.0}
    with pytest.raises(DatasetError, match="2 sample ids but 1 verdicts"):
        tally.add(["a", "b"], [True])


def test_pass_rate_file_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rates.jsonl"
    path.write_text('{"id": "a", "pass_rate": 0.5}\n{"id": "b"}\n')
    with pytest.raises(DatasetError, match=r"rates.jsonl line 2: expected a JSON object"):
        read_pass_rates(path)
    with pytest.raises(DatasetError, match="no such pass-rate file"):
        read_pass_rates(tmp_path / "none.jsonl")


def test_replay_repeats_earlier_questions_by_the_bin_of_their_pass_rate() -> None:
    kept = [sample(key, 10) for key in ("hard", "mid", "easy", "new", "unmeasured")]
    rates = {"hard": 0.125, "mid": 0.5, "easy": 0.875, "new": 0.125}
    seen = {"hard", "mid", "easy", "unmeasured"}
    pool = replay_pool(kept, rates, seen, RetroFilterConfig())
    # Default bins (0.25, 0.5, 0.75) and weights (4, 3, 2, 1); 0.5 falls in [0.5, 0.75).
    assert [s.id for s in pool] == ["hard"] * 4 + ["mid"] * 2 + ["easy", "new", "unmeasured"]
    flat = RetroFilterConfig(replay_weights=(1, 1, 1, 1))
    assert [s.id for s in replay_pool(kept, rates, seen, flat)] == [s.id for s in kept]


def test_replay_bins_and_weights_must_match() -> None:
    with pytest.raises(ValueError, match="replay_weights needs 4 whole numbers"):
        RetroFilterConfig(replay_weights=(2, 1))
    with pytest.raises(ValueError, match="must be ascending"):
        RetroFilterConfig(replay_bins=(0.5, 0.25, 0.75))
