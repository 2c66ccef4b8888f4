"""The proposer's prompt: all of its wording lives here, in our own words.

The solver needs no prompt of its own: it reads a candidate exactly as an evaluated model reads
a sample (`qwenlong.evals.prompts.build_messages`), so a question that passes here is phrased
the way training and evaluation will present it. The verifier's only prompt is the evals judge's.

Prompt structure, in order: the role and goal; the cluster's documents, each fenced and titled;
the task kind (what sort of question); the answer form (multiple choice or short answer, with the
JSON schema to fill); from round two, the history of questions already validated on this
cluster and the instruction to go harder and elsewhere; last, the output rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qwenlong.core.records import Conversation, Document
from qwenlong.core.registry import Registry

PROPOSER_INTRO = (
    "You write questions for a reading test. Below are {count} related documents. Write one "
    "question that a careful reader can answer from these documents alone, together with its "
    "correct answer."
)
"""Opening: the proposer's role and the one hard constraint (answerable from the documents)."""

DOCUMENT_BLOCK = '<document index="{index}" title="{title}">\n{text}\n</document>'
"""One document of the cluster; titles help the proposer refer to sources in viewpoint tasks."""

FORM_INSTRUCTIONS = {
    "mc": (
        "Form: multiple choice with exactly four options. One option is correct; the other three "
        "must sound plausible but be wrong according to the documents. Reply with a JSON object "
        'of this shape: {{"question": "...", "choices": ["...", "...", "...", "..."], '
        '"answer": "<the letter A, B, C or D of the correct option>", "evidence": "<the '
        'passage(s) of the documents that settle the answer>"}}'
    ),
    "short": (
        "Form: short answer. The answer is a name, number, date or phrase of at most {max_words} "
        "words, so that it can be checked by matching text. Reply with a JSON object of this "
        'shape: {{"question": "...", "answer": "...", "evidence": "<the passage(s) of the '
        'documents that settle the answer>"}}'
    ),
}
"""What each answer form asks for, with the JSON schema the parser validates. `{max_words}` is
`MaseConfig.max_answer_words`."""

HISTORY_HEADER = (
    "These questions about the same documents were already accepted (a solver reading the "
    "documents answered them correctly):"
)
HISTORY_ENTRY = "{index}. Question: {question}\n   Answer: {answer}"
"""One validated pair in the history block."""

EVOLVE_INSTRUCTION = (
    "Your new question must be harder than every accepted question above and different from "
    "them: ask about other facts or other parts of the documents, make the reader combine more "
    "pieces of evidence (ideally from more than one document), and reuse neither their wording "
    "nor their answers."
)
"""The self-evolution push (SPELL's history-conditioned questioner), shown with the history."""

OUTPUT_RULE = "Output the JSON object only, with no text before or after it."

PART_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class TaskPrompt:
    """A MASE task kind: what sort of question the proposer should write."""

    name: str
    title: str
    """Short label for reports."""
    instruction: str
    """The paragraph the proposer reads."""


TASKS: Registry[TaskPrompt] = Registry("MASE task")
"""Task kinds by name; the config's `tasks` lists names from here."""

TASKS.add(
    "viewpoint",
    TaskPrompt(
        "viewpoint",
        "viewpoint analysis",
        "Task: viewpoint analysis. Ask about the positions, opinions, claims or perspectives that "
        "people, organisations or the documents themselves express: who holds a view, how two "
        "views differ, what reason supports a position, or how a stance changed over time. The "
        "answer must be stated in the documents or follow directly from them, never from general "
        "knowledge.",
    ),
)
TASKS.add(
    "icl",
    TaskPrompt(
        "icl",
        "long in-context learning",
        "Task: long in-context learning. Treat the documents as a set of worked examples: find a "
        "pattern that repeats across them (a format, a rule, a mapping from one attribute to "
        "another, a way of classifying or computing something), describe a new case in the "
        "question, and ask the reader to apply the pattern to it. The answer must be fixed by the "
        "pattern the documents show, not by outside knowledge.",
    ),
)


@dataclass(frozen=True)
class HistoryItem:
    """A validated pair as the proposer sees it (MC answers as the text of the right option)."""

    question: str
    answer: str


def render_documents(documents: Sequence[Document]) -> str:
    """The cluster's documents, fenced and numbered from 1."""
    return PART_SEPARATOR.join(
        DOCUMENT_BLOCK.format(index=i, title=doc.title or doc.id, text=doc.text)
        for i, doc in enumerate(documents, 1)
    )


def render_history(history: Sequence[HistoryItem]) -> str:
    """The history block with the self-evolution instruction; empty without history."""
    if not history:
        return ""
    entries = "\n".join(
        HISTORY_ENTRY.format(index=i, question=item.question, answer=item.answer)
        for i, item in enumerate(history, 1)
    )
    return PART_SEPARATOR.join([f"{HISTORY_HEADER}\n{entries}", EVOLVE_INSTRUCTION])


def proposer_messages(
    documents: Sequence[Document],
    task: TaskPrompt,
    form_instruction: str,
    history: Sequence[HistoryItem],
    max_answer_words: int,
) -> Conversation:
    """The proposer's one-turn conversation for a cluster, task kind and answer form
    (`form_instruction`: a `FORM_INSTRUCTIONS` entry, formatted here with the word limit)."""
    parts = [
        PROPOSER_INTRO.format(count=len(documents)),
        render_documents(documents),
        task.instruction,
        form_instruction.format(max_words=max_answer_words),
    ]
    block = render_history(history)
    if block:
        parts.append(block)
    parts.append(OUTPUT_RULE)
    return [{"role": "user", "content": PART_SEPARATOR.join(parts)}]
