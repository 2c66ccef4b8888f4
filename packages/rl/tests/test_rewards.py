"""Rewards: the evals rule per answer kind, the judge only where it fails, finite or an error."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from qwenlong.core.config_loader import load_config_dict
from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.evals.interfaces import JudgeItem, Score
from qwenlong.rl import rewards
from qwenlong.rl.rewards import RewardConfig, RewardFn

CITY = TaskSample(id="t1", task_type="multihop", question="Capital?", answers=["Paris"])
CHOICE = TaskSample(
    id="c1",
    task_type="mc",
    question="Which?",
    answers=["B"],
    answer_kind="choice",
    choices=["w", "x", "y", "z"],
)
NUMBER = TaskSample(
    id="n1", task_type="numerical", question="How many?", answers=["12.5"], answer_kind="number"
)
NEEDLE = TaskSample(
    id="d1",
    task_type="dialogue_memory",
    question="Repeat",
    answers=["ab12hello world"],
    answer_kind="sequence",
    meta={"prefix": "ab12"},
)


class RecordingJudge:
    """Says yes to exactly the predictions in `accept`; records every question."""

    def __init__(self, accept: set[str]) -> None:
        self.accept = accept
        self.calls: list[list[JudgeItem]] = []

    def judge(self, items: Sequence[JudgeItem]) -> list[bool]:
        self.calls.append(list(items))
        return [item.prediction in self.accept for item in items]


def test_rule_per_answer_kind_with_hand_computed_values() -> None:
    samples = [CITY, CITY, CHOICE, NUMBER, NUMBER, NEEDLE, NEEDLE, NEEDLE]
    outputs = [
        "Therefore, the answer is Paris.",
        "Therefore, the answer is London.",
        "The correct answer is (B)",
        "Therefore, the answer is 12.5",
        "Therefore, the answer is 125",
        "ab12hello world",
        "ab12hello",  # ratio of "hello" vs "hello world": 2 * 5 / (5 + 11)
        "hello world",  # no prefix: 0
    ]
    result = RewardFn(RewardConfig())(samples, outputs)
    assert result.rewards.dtype == torch.float32
    assert result.rewards.tolist() == pytest.approx([1, 0, 1, 1, 0, 1, 0.625, 0])
    assert result.correct.tolist() == [True, False, True, True, False, True, False, False]
    assert [d["metric"] for d in result.details[:4]] == [
        "cover_em",
        "cover_em",
        "longbench_v2",
        "docmath_strict",
    ]
    assert result.details[6]["metric"] == "mrcr"


def test_require_think_zeroes_outputs_without_closed_reasoning() -> None:
    outputs = ["I think...</think>\nTherefore, the answer is Paris.", "the answer is Paris"]
    result = RewardFn(RewardConfig(require_think=True))([CITY, CITY], outputs)
    assert result.rewards.tolist() == [1.0, 0.0]
    assert result.details[1]["decided_by"] == "no_think"
    loose = RewardFn(RewardConfig())([CITY, CITY], outputs)
    assert loose.rewards.tolist() == [1.0, 1.0]


def test_answer_listing_candidates_is_paid_nothing_under_the_word_allowance() -> None:
    job = TaskSample(
        id="t9", task_type="reading", question="Occupation?", answers=["chief executive"]
    )
    outputs = [
        "Therefore, the answer is chief executive.",  # 0 extra words
        "Therefore, the answer is the chief executive officer.",  # "the" is normalised away: 1
        "Therefore, the answer is chief executive or lawyer",  # 2 extra words: the allowance
        "Therefore is lawyer is chief executive is lawyer is",  # no marker: 7 extra words
        "I think...</think>\nMaybe a lawyer, or the chief executive, or an architect",
        "Therefore, the answer is lawyer",  # short and wrong: the rule decides
    ]
    guarded = RewardFn(RewardConfig(answer_max_extra_words=2))([job] * 6, outputs)
    assert guarded.rewards.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert [d.get("decided_by") for d in guarded.details[3:5]] == ["overlong", "overlong"]
    assert guarded.details[3]["extra_words"] == 7
    assert guarded.details[5].get("decided_by") != "overlong"
    # The paper's rule alone pays every answer that contains the gold.
    paper = RewardFn(RewardConfig())([job] * 6, outputs)
    assert paper.rewards.tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_word_allowance_leaves_non_text_answers_to_their_scorers() -> None:
    output = "Let me weigh every option at length. The correct answer is (B)"
    result = RewardFn(RewardConfig(answer_max_extra_words=0))([CHOICE], [output])
    assert result.rewards.tolist() == [1.0]


def test_judge_asked_only_where_the_rule_fails_and_reward_is_the_max() -> None:
    judge = RecordingJudge(accept={"The French capital"})
    reward = RewardFn(RewardConfig(use_judge=True), judge)
    samples = [CITY, CITY, CITY, NEEDLE]
    outputs = [
        "Therefore, the answer is Paris.",
        "Therefore, the answer is The French capital",
        "Therefore, the answer is Lyon",
        "ab12hello",
    ]
    result = reward(samples, outputs)
    assert result.rewards.tolist() == pytest.approx([1.0, 1.0, 0.0, 0.625])
    assert result.correct.tolist() == [True, True, False, False]
    # One batched call, only the two wrong text answers; the needle is never judged.
    assert len(judge.calls) == 1
    assert [item.prediction for item in judge.calls[0]] == ["The French capital", "Lyon"]
    assert [d["decided_by"] for d in result.details] == ["rule", "judge", "judge", "rule"]


def test_judge_needed_when_configured_and_unused_when_off() -> None:
    with pytest.raises(ConfigError, match="use_judge"):
        RewardFn(RewardConfig(use_judge=True))
    judge = RecordingJudge(accept={"Lyon"})
    result = RewardFn(RewardConfig(), judge)([CITY], ["the answer is Lyon"])
    assert result.rewards.tolist() == [0.0] and judge.calls == []


def test_non_finite_reward_names_sample_and_scorer(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(sample: TaskSample, output: str) -> Score:
        return Score(float("nan"), False, {})

    monkeypatch.setattr(rewards, "scorer_for", lambda sample: broken)
    with pytest.raises(DatasetError) as err:
        RewardFn(RewardConfig())([CITY, NUMBER], ["x", "y"])
    assert str(err.value) == (
        "dataset error: sample t1: scorer 'cover_em' returned reward nan; rewards must be finite"
    )


def test_length_mismatch_and_bad_config_are_one_line_errors() -> None:
    with pytest.raises(DatasetError, match="2 samples but 1 outputs"):
        RewardFn(RewardConfig())([CITY, CITY], ["x"])
    with pytest.raises(ConfigError, match="judge_answer_kinds"):
        load_config_dict({"judge_answer_kinds": ["essay"]}, RewardConfig, "exp.yaml")


def test_mean_by_task() -> None:
    samples = [CITY, CITY, NEEDLE]
    result = RewardFn(RewardConfig())(samples, ["the answer is Paris", "no", "ab12hello"])
    assert result.mean_by_task(samples) == pytest.approx(
        {"dialogue_memory": 0.625, "multihop": 0.5}
    )
