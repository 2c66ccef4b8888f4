"""Dialogue needles: gold re-derived by recount, mrcr grading, length in the tiny tokenizer,
MRCR-loader compatibility, determinism."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from qwenlong.core.records import TaskSample
from qwenlong.evals.benchmarks.mrcr import MRCR, render_conversation
from qwenlong.evals.metrics import make_scorer
from qwenlong.synth.dialogue import DialogueConfig, DialogueNeedleGenerator, ordinal
from qwenlong.synth.interfaces import Corpus, GenerationContext

TARGETS = (2048, 6000)
QUESTION = re.compile(
    r"Prepend (\S+) to the (\d+)(?:st|nd|rd|th) \(1 indexed\) (\w+) about (\w+)\."
)


@pytest.fixture(scope="module")
def count_tokens(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _generate(count_tokens, seed: int = 0, **overrides) -> list[TaskSample]:
    settings = {"target_tokens": TARGETS, "samples_per_target": 3, **overrides}
    generator = DialogueNeedleGenerator(DialogueConfig(**settings))
    ctx = GenerationContext(rng=random.Random(seed), log=lambda _: None)
    return list(generator.generate(Corpus([], count_tokens), ctx))


@pytest.fixture(scope="module")
def samples(count_tokens) -> list[TaskSample]:
    return _generate(count_tokens)


def _recount(sample: TaskSample) -> tuple[str, list[int], int]:
    """(prefix, indices of matching user requests, k) read from the messages and question only."""
    messages = json.loads(sample.meta["messages"])
    prefix, k, noun, topic = QUESTION.match(messages[-1]["content"]).groups()
    phrase = re.compile(rf"\b{noun} about {topic}\b")
    matches = [
        i
        for i, message in enumerate(messages[:-1])
        if message["role"] == "user" and phrase.search(message["content"])
    ]
    return prefix, matches, int(k)


@pytest.mark.parametrize(("number", "text"), [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"),
                                             (11, "11th"), (12, "12th"), (13, "13th"),
                                             (21, "21st"), (22, "22nd"), (111, "111th")])  # fmt: skip
def test_ordinal(number: int, text: str) -> None:
    assert ordinal(number) == text


def test_gold_is_the_kth_matching_answer(samples: list[TaskSample]) -> None:
    for sample in samples:
        messages = json.loads(sample.meta["messages"])
        prefix, matches, k = _recount(sample)
        assert prefix == sample.meta["prefix"]
        assert len(matches) == int(sample.meta["n_needles"])
        assert 1 <= k <= len(matches)
        answer_index = matches[k - 1] + 1
        assert messages[answer_index]["role"] == "assistant"
        assert sample.answers == [prefix + messages[answer_index]["content"]]
        assert int(sample.meta["desired_msg_index"]) == answer_index


def test_needle_answers_differ(samples: list[TaskSample]) -> None:
    for sample in samples:
        messages = json.loads(sample.meta["messages"])
        _, matches, _ = _recount(sample)
        answers = [messages[i + 1]["content"] for i in matches]
        assert len(set(answers)) == len(answers)


def test_distractors_include_near_misses(samples: list[TaskSample]) -> None:
    """Long enough conversations hold requests for the needle's topic in another kind and for
    its kind on another topic: the look-alikes that make counting necessary."""
    for sample in (s for s in samples if s.meta["target_tokens"] == "6000"):
        messages = json.loads(sample.meta["messages"])[:-1]
        _, _, noun, topic = QUESTION.match(sample.question).groups()
        requests = [m["content"] for m in messages if m["role"] == "user"]
        needle = re.compile(rf"\b{noun} about {topic}\b")
        same_topic = [r for r in requests if f"about {topic}" in r and not needle.search(r)]
        same_kind = [r for r in requests if f"{noun} about " in r and not needle.search(r)]
        assert same_topic and same_kind


def test_needle_counts_cycle_through_config(samples: list[TaskSample]) -> None:
    assert [s.meta["n_needles"] for s in samples] == ["2", "4", "8"] * len(TARGETS)
    assert [s.difficulty for s in samples] == [2.0, 4.0, 8.0] * len(TARGETS)


def test_mrcr_metric_rewards_gold_and_penalises_the_neighbour(samples: list[TaskSample]) -> None:
    scorer = make_scorer("mrcr")
    for sample in samples:
        messages = json.loads(sample.meta["messages"])
        prefix, matches, k = _recount(sample)
        neighbour = matches[k] if k < len(matches) else matches[k - 2]
        wrong = prefix + messages[neighbour + 1]["content"]
        assert scorer(sample, sample.answers[0]).value == 1.0
        assert scorer(sample, wrong).value < 1.0
        assert scorer(sample, sample.answers[0].removeprefix(prefix)).value == 0.0


def test_lengths_within_two_percent_of_target(samples: list[TaskSample], count_tokens) -> None:
    for sample in samples:
        target = int(sample.meta["target_tokens"])
        tokens = count_tokens(sample.context)
        assert sample.context_tokens == tokens
        assert abs(tokens - target) <= 0.02 * target, (tokens, target)


def test_sample_fields_follow_the_conventions(samples: list[TaskSample]) -> None:
    for sample in samples:
        messages = json.loads(sample.meta["messages"])
        assert sample.context == render_conversation(messages[:-1])
        assert sample.question == messages[-1]["content"]
        assert sample.task_type == "dialogue_memory" and sample.answer_kind == "sequence"
        assert sample.provenance.generator == "dialogue_needles"
        assert sample.provenance.source_documents == []
    assert len({s.id for s in samples}) == len(samples)


def test_loader_reads_our_rows_back_identically(samples: list[TaskSample], tmp_path: Path) -> None:
    """Written in MRCR's published columns, our samples load through the evals MRCR loader to
    the same context, question, answer and scorer inputs."""
    rows = [
        {
            "prompt": s.meta["messages"],
            "answer": s.answers[0],
            "random_string_to_prepend": s.meta["prefix"],
            "n_needles": int(s.meta["n_needles"]),
            "desired_msg_index": int(s.meta["desired_msg_index"]),
        }
        for s in samples
    ]
    path = tmp_path / "synthetic.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    loaded = MRCR().load(path, subset="all")
    assert len(loaded) == len(samples)
    for ours, theirs in zip(samples, loaded, strict=True):
        assert (theirs.context, theirs.question, theirs.answers) == (
            ours.context,
            ours.question,
            ours.answers,
        )
        for key in ("prefix", "n_needles", "desired_msg_index", "messages"):
            assert theirs.meta[key] == ours.meta[key]


def test_same_seed_same_samples_other_seed_other_samples(count_tokens) -> None:
    first = _generate(count_tokens, seed=5, target_tokens=(2048,))
    again = _generate(count_tokens, seed=5, target_tokens=(2048,))
    other = _generate(count_tokens, seed=6, target_tokens=(2048,))
    assert first == again
    assert {s.id for s in first}.isdisjoint({s.id for s in other})


def test_single_speaker_gives_plain_two_party_requests(count_tokens) -> None:
    [sample] = _generate(count_tokens, target_tokens=(2048,), samples_per_target=1, speakers=1)
    requests = [m["content"] for m in json.loads(sample.meta["messages"]) if m["role"] == "user"]
    assert not any(" asks: " in r or r.startswith("From ") for r in requests)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"target_tokens": (1024,)}, "below 2048"),
        ({"kinds": ("poem", "sonnet")}, "unknown writing kinds"),
        ({"kinds": ("poem", "poem")}, "two distinct"),
        ({"needle_counts": (0,)}, "at least 1"),
    ],
)
def test_config_rejects_bad_settings(override: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DialogueConfig(**override)
