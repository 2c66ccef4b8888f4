"""Parsing update outputs: good replies, every failure keeping the previous state, budgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenlong.memagent.interfaces import MemoryState, ParsedUpdate
from qwenlong.memagent.parse import clip_state, parse_update

PREVIOUS = MemoryState(memory="Ada was born in 1815.", plan="Find where she worked.")


def test_well_formed_reply_overwrites_memory_and_plan():
    parsed = parse_update(
        "Notes:\n<memory>\nAda was born in 1815 in London.\n</memory>\n<plan>Look for her job.</plan>",
        PREVIOUS,
    )
    assert parsed == ParsedUpdate(
        MemoryState("Ada was born in 1815 in London.", "Look for her job."), "ok"
    )
    assert not parsed.kept_previous


def test_text_after_the_last_think_end_is_read():
    text = (
        "<think>I could write <memory>draft</memory> but wait</think>\n"
        "<memory>final</memory><plan>p</plan>"
    )
    assert parse_update(text, PREVIOUS, thinking=True).state == MemoryState("final", "p")


def test_thinking_model_without_think_end_keeps_previous_state():
    parsed = parse_update(
        "still reasoning <memory>half</memory>", PREVIOUS, "length", thinking=True
    )
    assert parsed == ParsedUpdate(PREVIOUS, "unfinished_reasoning")
    assert parsed.kept_previous
    # a non-thinking model that opens <think> and never closes it is unfinished too
    assert parse_update("<think>hmm", PREVIOUS).status == "unfinished_reasoning"


@pytest.mark.parametrize("text", ["", "   \n", "<think>x</think>  "])
def test_empty_output_keeps_previous_state(text):
    assert parse_update(text, PREVIOUS) == ParsedUpdate(PREVIOUS, "empty")


def test_missing_memory_tag_keeps_previous_state_even_with_a_plan():
    parsed = parse_update("I found nothing. <plan>new plan</plan>", PREVIOUS)
    assert parsed == ParsedUpdate(PREVIOUS, "missing_memory")


def test_memory_cut_by_the_budget_keeps_previous_state():
    parsed = parse_update("<memory>Ada was born in 1815 and wor", PREVIOUS, "length")
    assert parsed == ParsedUpdate(PREVIOUS, "truncated")


def test_unclosed_memory_of_a_model_that_stopped_is_repaired():
    parsed = parse_update("<memory>Ada worked with Babbage.<plan>Check dates.</plan>", PREVIOUS)
    assert parsed == ParsedUpdate(
        MemoryState("Ada worked with Babbage.", "Check dates."), "repaired"
    )
    parsed = parse_update("<memory>Ada worked with Babbage.", PREVIOUS)
    assert parsed.state == MemoryState("Ada worked with Babbage.", PREVIOUS.plan)
    assert parsed.issues == ("plan_missing",)


def test_plan_missing_or_truncated_keeps_previous_plan_with_new_memory():
    parsed = parse_update("<memory>m2</memory>", PREVIOUS)
    assert parsed == ParsedUpdate(MemoryState("m2", PREVIOUS.plan), "ok", ("plan_missing",))
    parsed = parse_update("<memory>m2</memory><plan>look at", PREVIOUS, "length")
    assert parsed == ParsedUpdate(MemoryState("m2", PREVIOUS.plan), "ok", ("plan_truncated",))
    parsed = parse_update("<memory>m2</memory><plan>look at ch 3", PREVIOUS, "stop")
    assert parsed == ParsedUpdate(MemoryState("m2", "look at ch 3"), "ok", ("plan_unclosed",))


def test_last_closed_block_wins_over_an_echo_or_a_draft():
    text = "<memory>draft</memory> better: <memory>second</memory><plan>a</plan><plan>b</plan>"
    assert parse_update(text, PREVIOUS).state == MemoryState("second", "b")
    # a second memory cut off by the budget leaves the complete first one
    text = "<memory>done</memory><plan>p</plan><memory>redo that was cut"
    assert parse_update(text, PREVIOUS, "length").state == MemoryState("done", "p")


def test_explicitly_empty_memory_is_respected():
    assert parse_update("<memory></memory><plan>x</plan>", PREVIOUS).state == MemoryState("", "x")


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _count(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_clip_state_cuts_memory_and_plan_to_their_budgets_keeping_both_ends(tokenizer):
    memory = "FIRST fact. " + "filler words here. " * 200 + "LAST fact."
    parsed = ParsedUpdate(MemoryState(memory, "short plan"), "ok")
    clipped = clip_state(parsed, tokenizer, memory_tokens=40, plan_tokens=100)
    assert _count(tokenizer, clipped.state.memory) <= 40
    assert clipped.state.memory.startswith("FIRST fact.")
    assert clipped.state.memory.endswith("LAST fact.")
    assert clipped.state.plan == "short plan"
    assert clipped.issues == ("memory_clipped",)
    both = clip_state(parsed, tokenizer, memory_tokens=40, plan_tokens=2)
    assert both.issues == ("memory_clipped", "plan_clipped")
    assert _count(tokenizer, both.state.plan) <= 2


def test_clip_state_leaves_fitting_and_discarded_states_alone(tokenizer):
    fits = ParsedUpdate(MemoryState("tiny", "plan"), "ok", ("plan_missing",))
    assert clip_state(fits, tokenizer, 64, 64) is fits
    big_previous = ParsedUpdate(MemoryState("x " * 500, ""), "truncated")
    assert clip_state(big_previous, tokenizer, 8, 8) is big_previous
