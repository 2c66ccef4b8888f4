"""Decontamination by n-gram overlap with evaluation questions and text files."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.synth.filter import (
    DecontamConfig,
    EvalText,
    decontaminate,
    eval_texts_from_samples,
    load_eval_texts,
)

BENCH_QUESTION = (
    "In the year the treaty was signed, which city hosted the first congress of the league of "
    "northern ports?"
)


def sample(sid: str, question: str, answers: list[str] | None = None) -> TaskSample:
    return TaskSample(id=sid, task_type="multihop", question=question, answers=answers or ["x"])


def bench() -> list[EvalText]:
    return eval_texts_from_samples("frames", [sample("b", BENCH_QUESTION, ["Ostrava"])])


def test_a_shared_13_gram_contaminates_and_12_does_not() -> None:
    words = BENCH_QUESTION.rstrip("?").split()
    # normalising drops "the" on both sides: words[4:19] are 13 normalised words
    # ("treaty ... ports"), words[4:18] are 12; both samples have at least 15 words
    inside = "Tell me: " + " ".join(words[4:19]) + " today"
    shorter = "Tell me: " + " ".join(words[4:18]) + " today"
    result = decontaminate(
        [sample("in", inside), sample("short", shorter)], bench(), DecontamConfig()
    )
    assert [s.id for s in result.kept] == ["short"]
    (drop,) = result.drops
    assert (drop.sample_id, drop.reason, drop.stage) == ("in", "contaminated", "decontam")
    assert drop.detail.startswith("frames: '")
    assert result.counts == {"frames": 1}


def test_n_is_configurable() -> None:
    shorter = "Tell me: which city hosted the first congress today"
    assert decontaminate([sample("s", shorter)], bench(), DecontamConfig(ngram=5)).drops
    assert not decontaminate([sample("s", shorter)], bench(), DecontamConfig(ngram=8)).drops


def test_answers_join_the_question_on_both_sides() -> None:
    # the last 6 normalised words of the question plus the answer make a 7-gram
    tail = "first congress of league of northern ports"
    config = DecontamConfig(ngram=8)
    with_answer = sample("a", f"Name the host of the {tail}?", ["Ostrava"])
    assert decontaminate([with_answer], bench(), config).drops
    off = DecontamConfig(ngram=8, include_answers=False)
    texts = eval_texts_from_samples("frames", [sample("b", BENCH_QUESTION, ["Ostrava"])], False)
    assert not decontaminate([with_answer], texts, off).drops


def test_short_questions_match_only_a_whole_equal_question() -> None:
    texts = eval_texts_from_samples("mini", [sample("b", "Who wrote Vell?", ["Ana"])])
    same = sample("same", "who wrote vell", ["ana"])
    part = sample("part", "Who wrote Vell first?", ["Ana"])
    result = decontaminate([same, part], texts, DecontamConfig())
    assert [d.sample_id for d in result.drops] == ["same"]


def test_text_files_and_benchmark_counts(tmp_path: Path) -> None:
    leaked = "the quick brown fox jumps over the lazy dog near the old mill by the river bank"
    path = tmp_path / "heldout.txt"
    path.write_text("header line\n" + leaked + "\nfooter\n", encoding="utf-8")
    config = DecontamConfig(ngram=8, text_files=[path])
    texts = load_eval_texts(config) + bench()
    samples = [
        sample("file", "Did " + leaked[4:60] + "?"),
        sample("bench", BENCH_QUESTION, ["Ostrava"]),
        sample("clean", "What colour is the mill door in the story of the river?"),
    ]
    result = decontaminate(samples, texts, config)
    assert [s.id for s in result.kept] == ["clean"]
    assert result.counts == {"heldout.txt": 1, "frames": 1}


def test_missing_text_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(DatasetError, match=f"decontamination text file not found: {missing}"):
        load_eval_texts(DecontamConfig(text_files=[missing]))


def test_no_evaluation_sets_skips() -> None:
    result = decontaminate([sample("s", BENCH_QUESTION)], [], DecontamConfig())
    assert result.mode == "skipped (no evaluation sets)" and len(result.kept) == 1
