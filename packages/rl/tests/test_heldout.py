"""The held-out split is fixed by ids alone; its evaluation is the training reward's mean and
standard error."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

import pytest
from pydantic import ValidationError

from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Conversation, TaskSample
from qwenlong.core.testing import EchoChatModel
from qwenlong.rl.config import HeldoutConfig
from qwenlong.rl.heldout import (
    Responder,
    evaluate_heldout,
    gain_fields,
    hash_unit,
    heldout_sampling,
    heldout_subset,
    paired_gain,
    remove_ids,
    split_heldout,
)
from qwenlong.rl.rewards import RewardConfig, RewardFn
from qwenlong.rl.stages import StageConfig


def samples(n: int) -> list[TaskSample]:
    return [
        TaskSample(id=f"id-{i}", task_type="reading", question="q", answers=[f"k{i}"])
        for i in range(n)
    ]


def echo(conversations: list[Conversation]) -> Responder:
    """A responder answering sample i with `EchoChatModel`'s replies to conversation i."""

    def respond(held: Sequence[TaskSample], sampling: SamplingParams) -> list[str]:
        groups = EchoChatModel().generate(conversations[: len(held)], sampling)
        return [completion.text for group in groups for completion in group]

    return respond


def test_responses_must_cover_every_prompt_and_sample() -> None:
    held = samples(2)
    with pytest.raises(ValueError, match="1 responses for 2 prompts x 1 samples"):
        evaluate_heldout(lambda *_: ["x"], RewardFn(RewardConfig()), held, SamplingParams(n=1))


def test_split_depends_on_ids_not_order() -> None:
    pool = samples(1000)
    train, held = split_heldout(pool, 0.2)
    assert len(train) + len(held) == 1000 and 150 < len(held) < 250
    assert all(hash_unit(s.id) < 0.2 for s in held)
    shuffled = pool[:]
    random.Random(0).shuffle(shuffled)
    assert {s.id for s in split_heldout(shuffled, 0.2)[1]} == {s.id for s in held}
    grown = split_heldout(pool + samples(1200)[1000:], 0.2)[1]
    assert {s.id for s in held} <= {s.id for s in grown}  # new data never moves old samples
    assert split_heldout(pool, 0.0)[1] == []


def test_subset_is_the_first_ids_in_hash_order() -> None:
    pool = samples(50)
    first = heldout_subset(pool, 10)
    assert len(first) == 10
    assert heldout_subset(list(reversed(pool)), 10) == first
    assert max(hash_unit(s.id) for s in first) < min(
        hash_unit(s.id) for s in pool if s not in first
    )
    assert len(heldout_subset(pool, 80)) == 50


def test_remove_ids_keeps_training_away_from_a_separate_heldout_file() -> None:
    pool = samples(5)
    assert [s.id for s in remove_ids(pool, pool[1:3])] == ["id-0", "id-3", "id-4"]


def test_evaluation_reports_mean_and_standard_error() -> None:
    held = samples(3)
    replies = ["Therefore, the answer is k0.", "Therefore, the answer is k1.", "It is zz."]
    conversations = [[{"role": "user", "content": text}] for text in replies]
    sampling = SamplingParams(max_new_tokens=100, temperature=0.0, stop=("#",))
    result = evaluate_heldout(echo(conversations), RewardFn(RewardConfig()), held, sampling)
    assert result.mean == pytest.approx(2 / 3)
    assert result.stderr == pytest.approx(math.sqrt(1 / 3) / math.sqrt(3))
    assert (result.count, result.accuracy) == (3, pytest.approx(2 / 3))
    assert result.by_task == {"reading": pytest.approx(2 / 3)}
    assert result.per_prompt == [1.0, 1.0, 0.0]


def test_several_responses_average_per_prompt_and_the_error_is_over_prompts() -> None:
    # Echo's completion k ends in "#k", which the normalisation turns into a trailing k: with
    # gold "x0" response 0 is right and response 1 wrong.
    held = [
        TaskSample(id=f"id-{i}", task_type="reading", question="q", answers=[gold])
        for i, gold in enumerate(["x0", "x1", "zz"])
    ]
    conversations = [[{"role": "user", "content": "Therefore, the answer is x"}]] * 3
    sampling = SamplingParams(max_new_tokens=100, temperature=0.7, n=2)
    result = evaluate_heldout(echo(conversations), RewardFn(RewardConfig()), held, sampling)
    assert result.per_prompt == [0.5, 0.5, 0.0]
    assert (result.count, result.responses) == (3, 2)
    assert result.mean == pytest.approx(1 / 3)
    assert result.stderr == pytest.approx(statistics.stdev([0.5, 0.5, 0.0]) / math.sqrt(3))
    assert result.accuracy == pytest.approx(2 / 6)


def test_paired_gain_uses_the_spread_of_per_prompt_differences() -> None:
    before = [0.0, 1.0, 0.5, 1.0]
    after = [0.5, 1.0, 1.0, 1.0]
    gain, stderr = paired_gain(before, after)
    assert gain == pytest.approx(0.25)
    assert stderr == pytest.approx(statistics.stdev([0.5, 0.0, 0.5, 0.0]) / 2)
    # The same prompts shifted alike: no uncertainty left, while unpaired errors stay large.
    assert paired_gain([0.0, 1.0, 0.0], [0.5, 1.5, 0.5]) == (pytest.approx(0.5), 0.0)
    with pytest.raises(ValueError, match="same non-empty prompts"):
        paired_gain([1.0], [1.0, 0.0])


def test_gain_fields_compare_sampled_and_greedy_figures() -> None:
    before = {"per_prompt": [0.0, 0.5], "greedy": {"per_prompt": [0.0, 1.0]}}
    after = {"per_prompt": [0.5, 1.0], "greedy": {"per_prompt": [1.0, 1.0]}}
    fields = gain_fields("heldout_gain", before, after)
    assert fields == {
        "heldout_gain": pytest.approx(0.5),
        "heldout_gain_stderr": 0.0,
        "heldout_gain_greedy": pytest.approx(0.5),
        "heldout_gain_greedy_stderr": pytest.approx(0.5),
    }
    one = gain_fields("g", {"per_prompt": [0.0]}, {"per_prompt": [1.0]})
    assert one == {"g": 1.0, "g_stderr": None}


def test_heldout_config_refuses_settings_that_measure_nothing_new() -> None:
    with pytest.raises(ValidationError, match="temperature is 0"):
        HeldoutConfig(size=10, samples=4)
    with pytest.raises(ValidationError, match="greedy: true needs temperature"):
        HeldoutConfig(size=10, greedy=True)
    assert HeldoutConfig(size=10, temperature=0.7, samples=4, greedy=True).samples == 4


def test_heldout_sampling_is_greedy_at_zero_temperature() -> None:
    stage = StageConfig(name="s", steps=1, max_input_tokens=100, max_output_tokens=7)
    greedy = heldout_sampling(0.0, 0.95, stage, seed=5)
    assert (greedy.temperature, greedy.top_p, greedy.n, greedy.max_new_tokens) == (0.0, 1.0, 1, 7)
    assert heldout_sampling(0.7, 0.95, stage, seed=5).top_p == 0.95
    assert heldout_sampling(0.7, 0.95, stage, seed=5, samples=4).n == 4
    with pytest.raises(ValueError, match="one response per prompt"):
        heldout_sampling(0.0, 0.95, stage, seed=5, samples=4)
