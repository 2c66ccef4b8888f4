"""The memory agent's prompts: the update prompt of every step and the final-answer prompt.

The update prompt has the structure the paper gives (RECIPE.md section 3), in our own words:
the problem (q_core), the previous memory and plan, and the new section, each in XML tags, then
the rules for rewriting the memory: read the sections in order, keep every relevant detail,
correct earlier mistakes, copy the relevant text instead of pointing at it (the section will not
be seen again), and do not be taken in by passages that only look like the answer. The reply is
`<memory>...</memory>` then `<plan>...</plan>`, which `qwenlong.memagent.parse` reads.

The final prompt gives the problem, the memory and the format instructions (q_inst) and ends with
the same answer request as the single-pass prompt (`qwenlong.evals.prompts`), so the evals
extractors find the answer in either solver's output.

All template text lives in the module constants; the functions only assemble them.
"""

from __future__ import annotations

from qwenlong.core.records import Conversation
from qwenlong.evals.prompts import ANSWER_REQUEST, CHOICE_ANSWER_REQUEST, CHOICE_TEMPLATE
from qwenlong.memagent.interfaces import AgentTask, Chunk, MemoryState

UPDATE_INTRO = (
    "You are answering a problem about a document that is too long to read at once. It is "
    "shown to you one section at a time, in order, and after each section you keep only the "
    "notes you write now: a memory of what matters for the problem and a plan for the rest of "
    "the reading."
)
"""Opening of every update prompt: the situation the model is in."""

PROBLEM_TEMPLATE = "<problem>\n{problem}\n</problem>"
"""q_core (with its options for multiple choice)."""

PREVIOUS_TEMPLATE = (
    "<previous_memory>\n{memory}\n</previous_memory>\n\n<previous_plan>\n{plan}\n</previous_plan>"
)
"""The state carried from the last step. Tag names differ from the reply's `<memory>` and
`<plan>`, so an echo of the prompt is never read as the new memory."""

EMPTY_MEMORY = "(empty: this is the first section)"
"""Shown in place of the memory before anything has been read."""

EMPTY_PLAN = "(none yet)"
"""Shown in place of the plan before the first step."""

SECTION_TEMPLATE = '<section number="{number}">\n{text}\n</section>'
"""The new section x_t, numbered from 1."""

UPDATE_RULES = (
    "Rewrite the memory and the plan using this section. Follow these rules:\n"
    "1. The sections arrive in the document's order; what came before this one survives only in "
    "the previous memory.\n"
    "2. Keep every detail of the previous memory that bears on the problem, and add what this "
    "section contributes. Leave out what is unrelated.\n"
    "3. If this section shows that something in the memory is wrong or incomplete, correct it.\n"
    "4. Copy the relevant facts as they are written: names, numbers, dates, units and exact "
    "wording. Do not write things like 'see section 3', since no section can be read again.\n"
    "5. Watch for distractors: passages that look like what the problem asks for but differ in "
    "a detail (another person, year, place, version or unit). Record only what matches the "
    "problem exactly, or note how a near match differs.\n"
    "6. The plan says what is still missing and what to look for in the sections to come.\n"
    "7. Keep the memory under about {memory_tokens} tokens and the plan under about "
    "{plan_tokens} tokens.\n\n"
    "Reply with the new memory between <memory> and </memory>, then the new plan between "
    "<plan> and </plan>."
)
"""Closing instructions of every update prompt; the budgets are filled in."""

FINAL_INTRO = (
    "You have read a long document section by section and kept the notes below. The document "
    "itself is no longer available: answer the problem from the notes."
)
"""Opening of the final-answer prompt."""

MEMORY_TEMPLATE = "<memory>\n{memory}\n</memory>"
"""The final memory m_K in the final prompt."""

NO_MEMORY = "(no notes were kept)"
"""Shown when the memory is empty at the end (every step failed, or an empty document)."""

SPLIT_PROMPT = (
    "Below is a request that may mix a question with instructions about how to present the "
    "answer (its format, length, or the phrase to end with). Separate the two without solving "
    "anything and without rewording: copy the question part between <question> and "
    "</question>, and the presentation instructions between <format> and </format> (leave "
    "<format></format> empty when there are none).\n\n<request>\n{query}\n</request>"
)
"""The optional LLM query split (`query_split: llm`)."""

PART_SEPARATOR = "\n\n"
"""Between the parts of every prompt."""


def render_problem(task: AgentTask) -> str:
    """q_core with the options of a multiple-choice question, as every step shows it."""
    lines = [task.question.strip()]
    lines += [
        CHOICE_TEMPLATE.format(letter=chr(ord("A") + i), choice=choice)
        for i, choice in enumerate(task.choices)
    ]
    return "\n".join(lines)


def update_messages(
    task: AgentTask, state: MemoryState, chunk: Chunk, memory_tokens: int, plan_tokens: int
) -> Conversation:
    """The update prompt of step `chunk.index` as a one-turn conversation."""
    parts = [
        UPDATE_INTRO,
        PROBLEM_TEMPLATE.format(problem=render_problem(task)),
        PREVIOUS_TEMPLATE.format(
            memory=state.memory.strip() or EMPTY_MEMORY, plan=state.plan.strip() or EMPTY_PLAN
        ),
        SECTION_TEMPLATE.format(number=chunk.index + 1, text=chunk.text),
        UPDATE_RULES.format(memory_tokens=memory_tokens, plan_tokens=plan_tokens),
    ]
    return [{"role": "user", "content": PART_SEPARATOR.join(parts)}]


def answer_request(task: AgentTask) -> str:
    """The single-pass prompt's closing request for this answer kind (extractors rely on it)."""
    return CHOICE_ANSWER_REQUEST if task.answer_kind == "choice" else ANSWER_REQUEST


def final_messages(task: AgentTask, state: MemoryState) -> Conversation:
    """The final-answer prompt: problem, memory, q_inst, and the answer request."""
    parts = [
        FINAL_INTRO,
        PROBLEM_TEMPLATE.format(problem=render_problem(task)),
        MEMORY_TEMPLATE.format(memory=state.memory.strip() or NO_MEMORY),
    ]
    instruction = task.instruction
    for request in (ANSWER_REQUEST, CHOICE_ANSWER_REQUEST):  # appended below, never twice
        instruction = instruction.replace(request, "")
    if instruction.strip():
        parts.append(instruction.strip())
    parts.append(answer_request(task))
    return [{"role": "user", "content": PART_SEPARATOR.join(parts)}]


def split_messages(query: str) -> Conversation:
    """The LLM query-split prompt for one query."""
    return [{"role": "user", "content": SPLIT_PROMPT.format(query=query.strip())}]
