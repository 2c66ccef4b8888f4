"""The LLM judge (batching, verdict rule, cache) and max(rule, judge) scoring."""

from __future__ import annotations

import json
import re

import pytest

from qwenlong.core.errors import BackendUnavailable, ConfigError, DatasetError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.prompt_set import PromptSet
from qwenlong.core.records import Completion, TaskSample
from qwenlong.evals.interfaces import JudgeItem, Score
from qwenlong.evals.judge import (
    DEFAULT_JUDGE_SAMPLING,
    JudgedScorer,
    LLMJudge,
    judge_messages,
    make_judged_scorer,
    parse_verdict,
)


class StubJudgeModel:
    """Says [[YES]] when prediction and reference agree case-insensitively; counts its calls."""

    def __init__(self, name: str = "stub-judge", fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.calls: list[int] = []

    def generate(self, conversations, sampling):
        if self.fail:
            raise BackendUnavailable("judge server unreachable")
        self.calls.append(len(conversations))
        out = []
        for conversation in conversations:
            text = conversation[0]["content"]
            gold = re.search(r"Reference answer: (.*)", text).group(1)
            pred = re.search(r"Predicted answer: (.*)", text).group(1)
            same = gold.strip().lower() == pred.strip().lower()
            out.append([Completion(text="[[YES]]" if same else "[[NO]]")])
        return out

    def close(self) -> None:
        pass


class RecordingJudge:
    """A `Judge` that says yes to listed (prediction, gold) pairs and records every batch."""

    def __init__(self, yes: set[tuple[str, str]]) -> None:
        self.yes = yes
        self.batches: list[list[JudgeItem]] = []

    def judge(self, items):
        self.batches.append(list(items))
        return [(i.prediction, i.gold) in self.yes for i in items]


def exact_rule(sample: TaskSample, output: str) -> Score:
    """Stand-in rule: exact match of the text after 'the answer is'."""
    if "the answer is" not in output:
        return Score(0.0, False, {"extracted": None})
    extracted = output.rsplit("the answer is", 1)[1].strip().rstrip(".")
    ok = extracted in sample.answers
    return Score(float(ok), ok, {"extracted": extracted})


def _sample(answers: list[str], sid: str = "s") -> TaskSample:
    return TaskSample(id=sid, task_type="multihop", question="Who?", answers=answers)


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("[[YES]]", True),
        ("Both name the same city.\n[[YES]]", True),
        ("[[NO]]", False),
        ("[[YES]] or maybe [[NO]]", False),
        ("At first [[NO]] looked right, but they agree.\n[[YES]]", True),  # the last tag
        ("yes", None),  # no tag: no verdict
        ("", None),
        ("The prediction names Lyon, the reference Par", None),  # cut by the budget
        ("<think>is it [[NO]]? no, same city</think>[[YES]]", True),
        ("<think>looks like [[YES]]</think>[[NO]]", False),
        ("<think>clearly [[YES]]</think>", None),  # a tag inside the reasoning is not a verdict
    ],
)
def test_verdict_is_the_last_tag_after_the_reasoning(reply, verdict):
    assert parse_verdict(reply) is verdict


def test_prompt_carries_question_both_answers_and_the_no_solving_rule():
    text = judge_messages(JudgeItem("Which city?", "Paris, France", "Paris"))[0]["content"]
    assert "Which city?" in text and "Paris, France" in text and "Reference answer: Paris" in text
    assert "Do not solve" in text and "[[YES]]" in text and "[[NO]]" in text


def test_prompt_asks_for_a_short_explanation_before_the_verdict():
    text = judge_messages(JudgeItem("q", "a", "b"))[0]["content"]
    explain, verdict = text.index("explain in one or two sentences"), text.index("[[YES]]")
    assert explain < verdict
    assert DEFAULT_JUDGE_SAMPLING.max_new_tokens >= 256  # room for the explanation and the tag


def test_a_configured_template_is_used_and_keys_its_own_cache(tmp_path):
    template = tmp_path / "judge.txt"
    template.write_text("Gold: $gold\nPred: $prediction\nSay [[YES]] or [[NO]].\n")
    prompts = PromptSet({"judge": template})
    item = JudgeItem("q", "Ada", "ada")
    assert (
        judge_messages(item, prompts)[0]["content"]
        == "Gold: ada\nPred: Ada\nSay [[YES]] or [[NO]]."
    )
    model = StubJudgeModel()
    shipped, custom = LLMJudge(model), LLMJudge(model, prompts=prompts)
    assert shipped.key(item) != custom.key(item)  # another prompt is another question


class TaglessModel(StubJudgeModel):
    """Replies without a verdict tag until `fixed`, then like the stub."""

    def __init__(self) -> None:
        super().__init__()
        self.fixed = False

    def generate(self, conversations, sampling):
        if self.fixed:
            return super().generate(conversations, sampling)
        self.calls.append(len(conversations))
        return [[Completion(text="They seem to agree, but")] for _ in conversations]


def test_a_reply_without_a_tag_is_no_verdict_logged_and_asked_again(tmp_path):
    cache = tmp_path / "cache.jsonl"
    model = TaglessModel()
    items = [JudgeItem("q", "Ada", "ada")]
    assert LLMJudge(model, cache_path=cache).judge(items) == [None]
    [record] = [json.loads(line) for line in cache.read_text().splitlines()]
    assert record["verdict"] is None and record["reply"] == "They seem to agree, but"
    model.fixed = True
    assert LLMJudge(model, cache_path=cache).judge(items) == [True]  # the next run asks again
    assert model.calls == [1, 1]


def test_no_verdict_leaves_the_item_pending_not_wrong():
    class Undecided:
        def judge(self, items):
            return [None if i.gold == "Ada Lovelace" else False for i in items]

    samples = [_sample(["Countess", "Ada Lovelace"], "a"), _sample(["Bo"], "b")]
    outputs = ["the answer is Ada L.", "the answer is Cy"]
    pending, wrong = JudgedScorer(exact_rule, Undecided()).score_many(samples, outputs)
    assert pending.pending and not pending.correct and pending.details["decided_by"] == "pending"
    assert not wrong.pending and wrong.details["decided_by"] == "judge"


def test_any_yes_outweighs_a_missing_verdict():
    class Mixed:
        def judge(self, items):
            return [None if i.gold == "Countess" else True for i in items]

    [score] = JudgedScorer(exact_rule, Mixed()).score_many(
        [_sample(["Countess", "Ada Lovelace"])], ["the answer is Ada L."]
    )
    assert score.correct and not score.pending


def test_uncached_items_go_out_in_one_call_deduplicated():
    model = StubJudgeModel()
    judge = LLMJudge(model)
    items = [JudgeItem("q", "Ada", "ada"), JudgeItem("q", "Bo", "Cy"), JudgeItem("q", "Ada", "ada")]
    assert judge.judge(items) == [True, False, True]
    assert model.calls == [2]
    assert judge.judge(items) == [True, False, True]
    assert model.calls == [2]


def test_cache_file_makes_a_rerun_free(tmp_path):
    cache = tmp_path / "judge" / "cache.jsonl"
    items = [JudgeItem("q", "Ada", "ada"), JudgeItem("q", "Bo", "Cy")]
    first = StubJudgeModel()
    assert LLMJudge(first, cache_path=cache).judge(items) == [True, False]
    assert first.calls == [2]
    assert len(cache.read_text().splitlines()) == 2

    second = StubJudgeModel()
    assert LLMJudge(second, cache_path=cache).judge(items) == [True, False]
    assert second.calls == []

    other_model = StubJudgeModel(name="another-judge")
    LLMJudge(other_model, cache_path=cache).judge(items)
    assert other_model.calls == [2]


def test_outage_propagates_and_caches_nothing(tmp_path):
    cache = tmp_path / "cache.jsonl"
    items = [JudgeItem("q", "Ada", "ada")]
    with pytest.raises(BackendUnavailable):
        LLMJudge(StubJudgeModel(fail=True), cache_path=cache).judge(items)
    assert not cache.exists() or cache.read_text() == ""
    later = StubJudgeModel()
    assert LLMJudge(later, cache_path=cache).judge(items) == [True]
    assert later.calls == [1]


def test_torn_last_line_is_asked_again_but_a_corrupt_line_is_an_error(tmp_path):
    cache = tmp_path / "cache.jsonl"
    items = [JudgeItem("q", "Ada", "ada")]
    LLMJudge(StubJudgeModel(), cache_path=cache).judge(items)
    with cache.open("a") as f:
        f.write('{"key": "abc", "verd')
    model = StubJudgeModel()
    resumed = LLMJudge(model, cache_path=cache)
    assert resumed.judge(items) == [True]
    assert model.calls == []
    resumed.judge([JudgeItem("q", "Bo", "bo")])  # appended after the cut, on its own line
    third = StubJudgeModel()
    assert LLMJudge(third, cache_path=cache).judge([*items, JudgeItem("q", "Bo", "bo")]) == [
        True,
        True,
    ]
    assert third.calls == []
    assert cache.read_text().endswith("}\n")

    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n" + json.dumps({"key": "k", "verdict": True}) + "\n")
    with pytest.raises(DatasetError, match=r"bad\.jsonl line 1"):
        LLMJudge(StubJudgeModel(), cache_path=bad)


def test_judge_needs_exactly_one_completion_per_item():
    with pytest.raises(ConfigError, match="n is 2"):
        LLMJudge(StubJudgeModel(), sampling=SamplingParams(n=2))


def test_rule_correct_items_never_reach_the_judge():
    judge = RecordingJudge(yes=set())
    [score] = JudgedScorer(exact_rule, judge).score_many([_sample(["Ada"])], ["the answer is Ada"])
    assert (score.value, score.correct) == (1.0, True)
    assert score.details == {"extracted": "Ada", "rule": 1.0, "judge": None, "decided_by": "rule"}
    assert judge.batches == []


def test_judge_is_asked_once_per_gold_and_any_yes_counts():
    judge = RecordingJudge(yes={("Ada L", "Ada Lovelace")})
    samples = [_sample(["Countess", "Ada Lovelace"], "a"), _sample(["Bo"], "b")]
    outputs = ["the answer is Ada L.", "the answer is Cy"]
    first, second = JudgedScorer(exact_rule, judge).score_many(samples, outputs)
    assert len(judge.batches) == 1
    assert [(i.prediction, i.gold) for i in judge.batches[0]] == [
        ("Ada L", "Countess"),
        ("Ada L", "Ada Lovelace"),
        ("Cy", "Bo"),
    ]
    assert (first.value, first.correct, first.details["judge"]) == (1.0, True, True)
    assert first.details["rule"] == 0.0 and first.details["decided_by"] == "judge"
    assert (second.value, second.correct, second.details["judge"]) == (0.0, False, False)


def test_nothing_extracted_means_no_judge_question():
    judge = RecordingJudge(yes=set())
    [score] = JudgedScorer(exact_rule, judge).score_many([_sample(["Ada"])], ["I am not sure"])
    assert judge.batches == []
    assert (score.value, score.details["judge"], score.details["decided_by"]) == (0.0, None, "rule")


def test_without_extracted_detail_the_text_after_think_is_judged():
    def bare_rule(sample, output):
        return Score(0.0, False, {})

    judge = RecordingJudge(yes={("Paris", "paris")})
    output = "<think>maybe Lyon</think>\n Paris \n"
    [score] = JudgedScorer(bare_rule, judge).score_many([_sample(["paris"])], [output])
    assert judge.batches[0][0].prediction == "Paris"
    assert score.correct


def test_dense_rule_value_is_kept_unless_the_judge_says_yes():
    def partial(sample, output):
        return Score(0.4, False, {"extracted": output})

    no, yes = RecordingJudge(yes=set()), RecordingJudge(yes={("x", "gold")})
    assert JudgedScorer(partial, no)(_sample(["gold"]), "x").value == 0.4
    assert JudgedScorer(partial, yes)(_sample(["gold"]), "x").value == 1.0


def test_without_a_judge_the_rule_alone_decides():
    [score] = JudgedScorer(exact_rule, None).score_many([_sample(["Ada"])], ["the answer is Bo"])
    assert (score.value, score.details["judge"], score.details["decided_by"]) == (0.0, None, "rule")


def test_backend_outage_propagates_through_the_scorer():
    scorer = JudgedScorer(exact_rule, LLMJudge(StubJudgeModel(fail=True)))
    with pytest.raises(BackendUnavailable):
        scorer.score_many([_sample(["Ada"])], ["the answer is Bo"])


def test_pure_judge_grades_every_answer():
    judge = RecordingJudge(yes={("Ada", "ada")})
    scorer = make_judged_scorer("judge", judge)
    good, bad = scorer.score_many(
        [_sample(["ada"]), _sample(["ada"])], ["<think>hmm</think>Ada", "<think>hmm</think>"]
    )
    assert good.correct and good.details["rule"] is None and good.details["decided_by"] == "judge"
    assert not bad.correct and bad.details["decided_by"] == "none"
    with pytest.raises(ConfigError, match="takes no options"):
        make_judged_scorer("judge", judge, threshold=1)


def test_scorer_rejects_mismatched_lengths_and_needs_a_part():
    with pytest.raises(DatasetError, match="2 samples but 1 outputs"):
        JudgedScorer(exact_rule, None).score_many([_sample(["a"]), _sample(["b"])], ["x"])
    with pytest.raises(ConfigError):
        JudgedScorer(None, None)


def test_cover_em_with_judge_is_the_papers_max():
    judge = RecordingJudge(yes={("the Countess of Lovelace", "Ada Lovelace")})
    scorer = make_judged_scorer("cover_em", judge)
    samples = [_sample(["Ada Lovelace"], "a"), _sample(["Ada Lovelace"], "b")]
    outputs = [
        "<think>...</think>Therefore, the answer is Ada Lovelace.",
        "<think>...</think>Therefore, the answer is the Countess of Lovelace.",
    ]
    by_rule, by_judge = scorer.score_many(samples, outputs)
    assert by_rule.correct and by_rule.details["decided_by"] == "rule"
    assert by_judge.correct and by_judge.details["decided_by"] == "judge"
    assert by_judge.details["rule"] == 0.0 and by_judge.details["judge"] is True
    assert [(i.prediction, i.gold) for i in judge.batches[0]] == [
        ("the Countess of Lovelace", "Ada Lovelace")
    ]
    with pytest.raises(ConfigError, match="unknown metric"):
        make_judged_scorer("cover-em", judge)
