"""The single-pass prompt: how a `TaskSample` becomes the one user turn a model reads.

The structure follows the QwenLong seed template (RECIPE.md section 4), in our own words: an
instruction to read the document, the document between `<text>` tags, the question, the
options for multiple choice, the sample's own format instruction, and last the request to end
with "Therefore, the answer is (insert answer here)" (for multiple choice, LongBench-V2's
"The correct answer is (X)"). Those closing phrases are what the extractors search for ("answer
is" for the paper's, the exact LongBench-V2 line for its letter), so every scorer that reads the
final answer depends on them: change the requests and the extractors stop finding answers.

All template text lives in the module constants below; the functions only assemble them.
`render_context` is separate from `build_prompt` so middle truncation can cut the document alone
and hand the cut text back through `context=`.
"""

from __future__ import annotations

import string

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import Conversation, TaskSample

READ_INSTRUCTION = (
    "Read the document below carefully. Then answer the question that follows it, using the "
    "document as your source."
)
"""Opening line of every prompt: what the model is asked to do before it sees the document."""

DOCUMENT_TEMPLATE = "<text>\n{context}\n</text>"
"""The document, fenced by `<text>` tags as in the seed template, so the model can tell where the
material ends and the question begins."""

DOCUMENT_HEADER = "Document {index}:"
"""Heading put above each part when a sample carries `documents` instead of one `context`."""

DOCUMENT_SEPARATOR = "\n\n"
"""Between one document's text and the next document's heading."""

QUESTION_TEMPLATE = "Question: {question}"
"""The core question (`TaskSample.question`)."""

CHOICE_TEMPLATE = "({letter}) {choice}"
"""One multiple-choice option; letters run A, B, C, D in `TaskSample.choices` order."""

ANSWER_REQUEST = (
    'Think it through, then end your response with a line of the form: "Therefore, the answer '
    'is (insert answer here)".'
)
"""Closing request for free-form answers. Must contain "the answer is": the paper's extractor
takes the text after its last occurrence."""

CHOICE_ANSWER_REQUEST = (
    'Think it through, then end your response with a line of the form: "The correct answer is '
    '(insert answer here)", with only the letter of the correct option inside the parentheses, '
    'for example "The correct answer is (B)".'
)
"""Closing request for multiple choice. LongBench-V2's scorer (official and the paper's) reads
exactly "The correct answer is (X)", case-sensitive, so the letter line takes that form; it
still contains "answer is", which the paper's extractor also accepts."""

PART_SEPARATOR = "\n\n"
"""Between the parts of the prompt (instruction, document, question, options, requests)."""


def render_context(sample: TaskSample) -> str:
    """The document text of `sample`: its `context`, or its `documents` under numbered headings.

    A sample with both set uses `context` (the assembled form wins, as `TaskSample` documents).
    """
    if sample.context or not sample.documents:
        return sample.context
    parts = [
        f"{DOCUMENT_HEADER.format(index=i)}\n{text}" for i, text in enumerate(sample.documents, 1)
    ]
    return DOCUMENT_SEPARATOR.join(parts)


def render_choices(sample: TaskSample) -> str:
    """Options as `(A) ...` lines; empty when the sample has none."""
    letters = string.ascii_uppercase
    if len(sample.choices) > len(letters):
        raise DatasetError(
            f"sample {sample.id!r}: {len(sample.choices)} choices, more than the {len(letters)} "
            "option letters A-Z"
        )
    return "\n".join(
        CHOICE_TEMPLATE.format(letter=letters[i], choice=choice)
        for i, choice in enumerate(sample.choices)
    )


def build_prompt(sample: TaskSample, context: str | None = None) -> str:
    """The single-pass user prompt for `sample`.

    `context` replaces the sample's document text when given (the output of `fit_context` after
    middle truncation); None renders the full document.
    """
    if not sample.question.strip():
        raise DatasetError(f"sample {sample.id!r}: field 'question' is empty")
    is_choice = sample.answer_kind == "choice"
    if is_choice and not sample.choices:
        raise DatasetError(f"sample {sample.id!r}: answer_kind is 'choice' but 'choices' is empty")
    document = render_context(sample) if context is None else context
    parts = [
        READ_INSTRUCTION,
        DOCUMENT_TEMPLATE.format(context=document),
        QUESTION_TEMPLATE.format(question=sample.question.strip()),
    ]
    if sample.choices:
        parts.append(render_choices(sample))
    if sample.instruction.strip():
        parts.append(sample.instruction.strip())
    parts.append(CHOICE_ANSWER_REQUEST if is_choice else ANSWER_REQUEST)
    return PART_SEPARATOR.join(parts)


def build_messages(sample: TaskSample, context: str | None = None) -> Conversation:
    """The prompt as a one-turn conversation (no system message: the model's default applies)."""
    return [{"role": "user", "content": build_prompt(sample, context)}]
