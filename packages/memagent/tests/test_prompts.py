"""The update and final prompts: the paper's structure, q_inst only at the end, templates."""

from __future__ import annotations

import json
from pathlib import Path

from qwenlong.core.prompt_set import DEFAULT_PROMPTS, PromptSet
from qwenlong.evals.prompts import ANSWER_REQUEST, CHOICE_ANSWER_REQUEST
from qwenlong.memagent.chunking import text_reader
from qwenlong.memagent.interfaces import AgentTask, Chunk, MemoryState
from qwenlong.memagent.prompts import (
    EMPTY_MEMORY,
    EMPTY_PLAN,
    FINAL_INTRO,
    NO_MEMORY,
    UPDATE_INTRO,
    final_messages,
    split_messages,
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


# --- templates -----------------------------------------------------------------------------

GOLDEN = json.loads((Path(__file__).parent / "golden_prompts.json").read_text())
"""The prompts as the code built them before they became template files (same cases below)."""

FREE = AgentTask(id="f", question="Where is $x {y}?", read=text_reader(""), instruction="")
SECTION = Chunk(
    index=2, text="The South harbour closed in 1901. $5 {a}", n_tokens=9, start_token=40
)
WITH_REQUEST = AgentTask(
    id="r", question="Q?", read=text_reader(""), instruction="Be brief. " + ANSWER_REQUEST
)


def test_shipped_templates_give_the_prompts_byte_for_byte():
    state = MemoryState("North closed 1910.", "Find South.")
    built = {
        "memagent_update": {
            "full": update_messages(TASK, state, SECTION, 300, 50),
            "empty": update_messages(FREE, MemoryState(), SECTION, 15360, 1024),
        },
        "memagent_final": {
            "choice": final_messages(TASK, MemoryState("South 1901.", "p")),
            "free": final_messages(FREE, MemoryState()),
            "request_in_instruction": final_messages(WITH_REQUEST, MemoryState("m")),
        },
        "memagent_query_split": {"q": split_messages("  What? Answer briefly.  ")},
    }
    for group, cases in built.items():
        for case, [message] in cases.items():
            assert message["content"] == GOLDEN[group][case], (group, case)


def test_shipped_templates_hold_the_phrases_others_search_for():
    update = DEFAULT_PROMPTS.template("memagent_update").text
    assert update.startswith(UPDATE_INTRO)
    final = DEFAULT_PROMPTS.template("memagent_final").text
    choice = DEFAULT_PROMPTS.template("memagent_final_choice").text
    assert final.startswith(FINAL_INTRO) and final.endswith(ANSWER_REQUEST)
    assert choice.startswith(FINAL_INTRO) and choice.endswith(CHOICE_ANSWER_REQUEST)
    assert "$query" in DEFAULT_PROMPTS.template("memagent_query_split").text


def test_a_paper_style_update_template_keeps_memory_and_plan_in_one_block(tmp_path):
    template = tmp_path / "update.txt"
    template.write_text(
        "Problem: $problem\n\n<memory>\n$memory\n$plan\n</memory>\n\n"
        "Section $section_number:\n$section\n\nUpdate the memory.\n"
    )
    prompts = PromptSet({"memagent_update": template})
    state = MemoryState("North closed 1910.", "Find South.")
    [message] = update_messages(TASK, state, SECTION, 300, 50, prompts)
    assert message["content"] == (
        "Problem: Which harbour closed first?\n(A) North\n(B) South\n\n"
        "<memory>\nNorth closed 1910.\nFind South.\n</memory>\n\n"
        "Section 3:\nThe South harbour closed in 1901. $5 {a}\n\nUpdate the memory."
    )
