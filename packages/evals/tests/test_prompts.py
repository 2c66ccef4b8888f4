"""The single-pass prompt: parts, order, multiple choice, documents and the answer line."""

from __future__ import annotations

import pytest

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.evals.extractors import extract_longbench_v2, extract_paper
from qwenlong.evals.prompts import (
    ANSWER_REQUEST,
    CHOICE_ANSWER_REQUEST,
    READ_INSTRUCTION,
    build_messages,
    build_prompt,
    render_context,
)


def _sample(**fields) -> TaskSample:
    base = dict(id="s1", task_type="multihop", question="Who built the bridge?", answers=["Ada"])
    return TaskSample(**{**base, **fields})


def test_parts_appear_in_template_order():
    sample = _sample(context="The bridge was built by Ada.", instruction="Answer with a name.")
    prompt = build_prompt(sample)
    order = [
        READ_INSTRUCTION,
        "<text>\nThe bridge was built by Ada.\n</text>",
        "Question: Who built the bridge?",
        "Answer with a name.",
        ANSWER_REQUEST,
    ]
    positions = [prompt.index(part) for part in order]
    assert positions == sorted(positions)
    assert prompt.endswith(ANSWER_REQUEST)


def _example_line(request: str) -> str:
    """The quoted example the request shows the model, placeholder filled in."""
    return request.split('"')[-2]


def test_answer_line_is_what_the_paper_extractor_reads():
    prompt = build_prompt(_sample(context="x"))
    assert '"Therefore, the answer is (insert answer here)"' in prompt
    reply = "<think>the bridge text names Ada</think>Ada built it. Therefore, the answer is Ada."
    assert extract_paper(reply) == "Ada"


def test_multiple_choice_renders_lettered_options_and_asks_for_the_letter():
    sample = _sample(
        answer_kind="choice",
        context="doc",
        choices=["Ada", "Bo", "Cy", "Di"],
        answers=["A"],
    )
    prompt = build_prompt(sample)
    assert "Question: Who built the bridge?\n\n(A) Ada\n(B) Bo\n(C) Cy\n(D) Di\n\n" in prompt
    assert prompt.endswith(CHOICE_ANSWER_REQUEST)
    example = _example_line(CHOICE_ANSWER_REQUEST)
    assert example == "The correct answer is (B)"
    # Both the official LongBench-V2 extractor and the paper's read the requested line.
    assert extract_longbench_v2(f"<think>...</think>{example}") == "B"
    assert extract_paper(f"<think>...</think>{example}") == "(B)"


def test_documents_are_joined_under_numbered_headings():
    sample = _sample(documents=["first text", "second text"])
    assert render_context(sample) == "Document 1:\nfirst text\n\nDocument 2:\nsecond text"
    assert "<text>\nDocument 1:\nfirst text\n\nDocument 2:\nsecond text\n</text>" in build_prompt(
        sample
    )


def test_context_wins_over_documents_when_both_are_set():
    sample = _sample(context="assembled", documents=["a", "b"])
    assert render_context(sample) == "assembled"


def test_context_argument_replaces_the_document():
    sample = _sample(context="the full long document")
    prompt = build_prompt(sample, context="the cut document")
    assert "<text>\nthe cut document\n</text>" in prompt
    assert "full long" not in prompt
    assert "<text>\n\n</text>" in build_prompt(sample, context="")


def test_build_messages_is_one_user_turn_holding_the_prompt():
    sample = _sample(context="doc")
    assert build_messages(sample) == [{"role": "user", "content": build_prompt(sample)}]


def test_empty_question_names_the_sample():
    with pytest.raises(DatasetError, match=r"sample 's1'.*question"):
        build_prompt(_sample(question="  ", context="doc"))


def test_choice_sample_without_choices_is_rejected():
    with pytest.raises(DatasetError, match=r"sample 's1'.*choices"):
        build_prompt(_sample(answer_kind="choice", context="doc"))
