"""The memory agent's prompts: the update prompt of every step and the final-answer prompt.

The wording lives in template files (`templates/*.txt`), selectable per experiment through a
config's `prompts:` (`qwenlong.core.prompt_set`) under the names registered here. The shipped
update prompt has the structure the paper gives (RECIPE.md section 3), in our own words and
with one change of structure: the problem (q_core), the previous memory, the previous plan in a
tag of its own (the paper keeps memory and plan in one previous-memory block), and the new
section, each in XML tags, then the rules for rewriting the memory: read the sections in
order, keep every relevant detail, correct earlier mistakes, copy the relevant text instead of
pointing at it (the section will not be seen again), and do not be taken in by passages that
only look like the answer. The reply is `<memory>...</memory>` then `<plan>...</plan>`, which
`qwenlong.memagent.parse` reads whatever the template says.

The shipped final prompt gives the problem, the memory and the format instructions (q_inst)
and ends with the same answer request as the single-pass prompt (`qwenlong.evals.prompts`), so
the evals extractors find the answer in either solver's output.

The code fills in: `$problem` (q_core with its lettered options), `$memory` and `$plan` (or
the fill-ins below when empty), `$section` and `$section_number` (from 1), `$memory_tokens` and
`$plan_tokens` (the budgets), `$instruction` (q_inst, often empty) and `$query`.
"""

from __future__ import annotations

from qwenlong.core.prompt_set import DEFAULT_PROMPTS, PromptSet
from qwenlong.core.prompt_templates import PromptSpec
from qwenlong.core.records import Conversation
from qwenlong.evals.prompts import ANSWER_REQUEST, CHOICE_ANSWER_REQUEST, render_choices
from qwenlong.memagent.interfaces import AgentTask, Chunk, MemoryState


def _spec(name: str, file: str, required: set[str], optional: set[str] | None = None) -> PromptSpec:
    """A memagent prompt shipped as templates/`file` (registered by `qwenlong.memagent`)."""
    return PromptSpec(
        name,
        "qwenlong.memagent",
        f"templates/{file}",
        frozenset(required),
        frozenset(optional or ()),
    )


UPDATE = _spec(
    "memagent_update",
    "update.txt",
    {"problem", "memory", "section"},
    {"plan", "section_number", "memory_tokens", "plan_tokens"},
)
"""One step: (q_core, m_{t-1}, p_{t-1}, x_t) -> the new memory and plan."""

FINAL = _spec("memagent_final", "final.txt", {"problem", "memory"}, {"instruction"})
"""The final answer from the memory, for free-form answers."""

FINAL_CHOICE = _spec(
    "memagent_final_choice", "final_choice.txt", {"problem", "memory"}, {"instruction"}
)
"""The final answer from the memory, for multiple choice (asks for the letter line)."""

QUERY_SPLIT = _spec("memagent_query_split", "query_split.txt", {"query"})
"""The optional LLM query split (`query_split: llm`): question and format apart."""

# Phrases of the shipped templates that callers and tests search for; tests keep them in the files.
UPDATE_INTRO = (
    "You are answering a problem about a document that is too long to read at once. It is "
    "shown to you one section at a time, in order, and after each section you keep only the "
    "notes you write now: a memory of what matters for the problem and a plan for the rest of "
    "the reading."
)
"""Opening of the shipped update prompt."""

FINAL_INTRO = (
    "You have read a long document section by section and kept the notes below. The document "
    "itself is no longer available: answer the problem from the notes."
)
"""Opening of the shipped final prompts."""

EMPTY_MEMORY = "(empty: this is the first section)"
"""`$memory` before anything has been read."""

EMPTY_PLAN = "(none yet)"
"""`$plan` before the first step."""

NO_MEMORY = "(no notes were kept)"
"""`$memory` of the final prompt when the memory is empty at the end (every step failed, or an
empty document)."""


def render_problem(task: AgentTask) -> str:
    """q_core with the options of a multiple-choice question, as every step shows it."""
    options = render_choices(task.choices, task.id)
    return "\n".join([task.question.strip(), options]) if options else task.question.strip()


def update_messages(
    task: AgentTask,
    state: MemoryState,
    chunk: Chunk,
    memory_tokens: int,
    plan_tokens: int,
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> Conversation:
    """The update prompt of step `chunk.index` as a one-turn conversation."""
    content = prompts.render(
        UPDATE.name,
        problem=render_problem(task),
        memory=state.memory.strip() or EMPTY_MEMORY,
        plan=state.plan.strip() or EMPTY_PLAN,
        section_number=str(chunk.index + 1),
        section=chunk.text,
        memory_tokens=str(memory_tokens),
        plan_tokens=str(plan_tokens),
    )
    return [{"role": "user", "content": content}]


def final_messages(
    task: AgentTask, state: MemoryState, prompts: PromptSet = DEFAULT_PROMPTS
) -> Conversation:
    """The final-answer prompt: problem, memory, q_inst, and (in the template) the answer request.

    The shipped answer requests are removed from q_inst first, so a question that carried one
    is not asked for its answer line twice.
    """
    instruction = task.instruction
    for request in (ANSWER_REQUEST, CHOICE_ANSWER_REQUEST):
        instruction = instruction.replace(request, "")
    name = FINAL_CHOICE.name if task.answer_kind == "choice" else FINAL.name
    content = prompts.render(
        name,
        problem=render_problem(task),
        memory=state.memory.strip() or NO_MEMORY,
        instruction=instruction.strip(),
    )
    return [{"role": "user", "content": content}]


def split_messages(query: str, prompts: PromptSet = DEFAULT_PROMPTS) -> Conversation:
    """The LLM query-split prompt for one query."""
    return [{"role": "user", "content": prompts.render(QUERY_SPLIT.name, query=query.strip())}]
