"""The update and final prompts: the paper's structure, q_inst only at the end."""

from __future__ import annotations

from qwenlong.evals.prompts import ANSWER_REQUEST, CHOICE_ANSWER_REQUEST
from qwenlong.memagent.chunking import text_reader
from qwenlong.memagent.interfaces import AgentTask, Chunk, MemoryState
from qwenlong.memagent.prompts import (
    EMPTY_MEMORY,
    EMPTY_PLAN,
    NO_MEMORY,
    final_messages,
    update_messages,
)

TASK = AgentTask(
    id="t",
    question="Which harbour closed first?",
    read=text_reader(""),
    instruction="Answer with the harbour's name.",
    choices=("North", "South"),
    answer_kind="choice",
)
CHUNK = Chunk(index=2, text="The South harbour closed in 1901.", n_tokens=9, start_token=40)


def test_update_prompt_orders_problem_memory_plan_section_then_rules():
    [message] = update_messages(
        TASK, MemoryState("North closed 1910.", "Find South."), CHUNK, 300, 50
    )
    text = message["content"]
    assert message["role"] == "user"
    markers = [
        "<problem>\nWhich harbour closed first?\n(A) North\n(B) South\n</problem>",
        "<previous_memory>\nNorth closed 1910.\n</previous_memory>",
        "<previous_plan>\nFind South.\n</previous_plan>",
        '<section number="3">\nThe South harbour closed in 1901.\n</section>',
        "under about 300 tokens and the plan under about 50 tokens",
        "between <memory> and </memory>, then the new plan between <plan> and </plan>",
    ]
    positions = [text.index(marker) for marker in markers]
    assert positions == sorted(positions)
    assert "Answer with the harbour's name." not in text  # q_inst waits for the final prompt
    assert CHOICE_ANSWER_REQUEST not in text


def test_first_step_shows_placeholders_for_the_empty_state():
    text = update_messages(TASK, MemoryState(), CHUNK, 300, 50)[0]["content"]
    assert EMPTY_MEMORY in text and EMPTY_PLAN in text


def test_final_prompt_has_problem_memory_instruction_and_one_answer_request():
    text = final_messages(TASK, MemoryState("South closed 1901; North 1910.", "unused plan"))[0][
        "content"
    ]
    markers = [
        "<problem>\nWhich harbour closed first?\n(A) North\n(B) South\n</problem>",
        "<memory>\nSouth closed 1901; North 1910.\n</memory>",
        "Answer with the harbour's name.",
        CHOICE_ANSWER_REQUEST,
    ]
    positions = [text.index(marker) for marker in markers]
    assert positions == sorted(positions)
    assert "unused plan" not in text  # the final answer sees the memory only
    assert ANSWER_REQUEST not in text


def test_final_prompt_does_not_repeat_a_request_already_in_the_instruction():
    task = AgentTask(id="t", question="Q?", read=text_reader(""), instruction=ANSWER_REQUEST)
    text = final_messages(task, MemoryState())[0]["content"]
    assert text.count(ANSWER_REQUEST) == 1
    assert NO_MEMORY in text
