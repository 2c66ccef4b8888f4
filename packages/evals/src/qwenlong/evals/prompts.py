"""The single-pass prompt: how a `TaskSample` becomes the one user turn a model reads.

The wording lives in template files (`templates/single_pass.txt`, and `single_pass_choice.txt`
for multiple choice), selectable per experiment through a config's `prompts:`
(`qwenlong.core.prompt_set`). The shipped templates follow the QwenLong seed template's
structure (RECIPE.md section 4) in our own words: an instruction to read the document, the
document between `<text>` tags, the question, the options, the sample's own format instruction,
and last the request to end with "Therefore, the answer is (insert answer here)" (for multiple
choice, LongBench-V2's "The correct answer is (X)"). Those closing phrases are what the
extractors search for ("answer is" for the paper's, the exact LongBench-V2 line for its letter):
a template that asks for another closing line leaves the extractors finding no answer.

The code fills in the placeholders: `$context` (the document, or the cut one), `$question`,
`$choices` ("(A) ..." lines, empty without options) and `$instruction` (the sample's format
instruction, often empty). `render_context` is separate so middle truncation can cut the
document alone and hand the cut text back through `context=`.

This module also declares the judge's prompt (`JUDGE`): every prompt evals sends is specified
here, and `qwenlong.evals` registers them in `qwenlong.core.prompt_set.PROMPTS`.
"""

from __future__ import annotations

import string

from qwenlong.core.errors import DatasetError
from qwenlong.core.prompt_set import DEFAULT_PROMPTS, PromptSet
from qwenlong.core.prompt_templates import PromptSpec
from qwenlong.core.records import Conversation, TaskSample

_READING = frozenset({"context", "question"})
_READING_OPTIONAL = frozenset({"choices", "instruction"})

SINGLE_PASS = PromptSpec(
    "single_pass",
    "qwenlong.evals",
    "templates/single_pass.txt",
    required=_READING,
    optional=_READING_OPTIONAL,
)
"""The reading prompt for free-form answers (text, number, sequence)."""

SINGLE_PASS_CHOICE = PromptSpec(
    "single_pass_choice",
    "qwenlong.evals",
    "templates/single_pass_choice.txt",
    required=_READING | {"choices"},
    optional=frozenset({"instruction"}),
)
"""The reading prompt for multiple choice (`answer_kind` "choice")."""

JUDGE = PromptSpec(
    "judge",
    "qwenlong.evals",
    "templates/judge.txt",
    required=frozenset({"gold", "prediction"}),
    optional=frozenset({"question"}),
)
"""The LLM judge's question (`qwenlong.evals.judge`)."""

# Phrases of the shipped templates that other code searches for; tests keep them in the files.
READ_INSTRUCTION = (
    "Read the document below carefully. Then answer the question that follows it, using the "
    "document as your source."
)
"""Opening line of the shipped reading prompts."""

DOCUMENT_TEMPLATE = "<text>\n{context}\n</text>"
"""How the shipped templates fence the document (a `str.format` pattern, for callers that
build the fenced block themselves)."""

ANSWER_REQUEST = (
    'Think it through, then end your response with a line of the form: "Therefore, the answer '
    'is (insert answer here)".'
)
"""Closing request of the shipped free-form prompt. The memory agent strips it from questions
(q_inst) and appends it once to its final prompt."""

CHOICE_ANSWER_REQUEST = (
    'Think it through, then end your response with a line of the form: "The correct answer is '
    '(insert answer here)", with only the letter of the correct option inside the parentheses, '
    'for example "The correct answer is (B)".'
)
"""Closing request of the shipped multiple-choice prompt: LongBench-V2's scorer reads exactly
"The correct answer is (X)", case-sensitive; it still contains "answer is" for the paper's."""

CHOICE_TEMPLATE = "({letter}) {choice}"
"""One multiple-choice option in `$choices`; letters run A, B, C, D in `choices` order."""

DOCUMENT_HEADER = "Document {index}:"
"""Heading put above each part when a sample carries `documents` instead of one `context`."""

DOCUMENT_SEPARATOR = "\n\n"
"""Between one document's text and the next document's heading."""


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


def render_choices(choices: list[str] | tuple[str, ...], sample_id: str = "") -> str:
    """Options as `(A) ...` lines; empty when there are none."""
    letters = string.ascii_uppercase
    if len(choices) > len(letters):
        raise DatasetError(
            f"sample {sample_id!r}: {len(choices)} choices, more than the {len(letters)} "
            "option letters A-Z"
        )
    return "\n".join(
        CHOICE_TEMPLATE.format(letter=letters[i], choice=choice) for i, choice in enumerate(choices)
    )


def build_prompt(
    sample: TaskSample, context: str | None = None, prompts: PromptSet = DEFAULT_PROMPTS
) -> str:
    """The single-pass user prompt for `sample`, from `prompts` (the shipped wording by default).

    `context` replaces the sample's document text when given (the output of `fit_context` after
    middle truncation); None renders the full document.
    """
    if not sample.question.strip():
        raise DatasetError(f"sample {sample.id!r}: field 'question' is empty")
    is_choice = sample.answer_kind == "choice"
    if is_choice and not sample.choices:
        raise DatasetError(f"sample {sample.id!r}: answer_kind is 'choice' but 'choices' is empty")
    template = prompts.template(SINGLE_PASS_CHOICE.name if is_choice else SINGLE_PASS.name)
    return template.render(
        {
            "context": render_context(sample) if context is None else context,
            "question": sample.question.strip(),
            "choices": render_choices(sample.choices, sample.id),
            "instruction": sample.instruction.strip(),
        }
    )


def build_messages(
    sample: TaskSample, context: str | None = None, prompts: PromptSet = DEFAULT_PROMPTS
) -> Conversation:
    """The prompt as a one-turn conversation (no system message: the model's default applies)."""
    return [{"role": "user", "content": build_prompt(sample, context, prompts)}]
