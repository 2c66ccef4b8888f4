"""The records that pass between packages.

`TaskSample` is the unit of work of the whole project: synthesis writes it, evaluation and RL
read it, and the evals package turns it into a prompt and scores outputs against it. It is
stored as parquet through HF `datasets` (see `qwenlong.core.dataset_io`), with a schema version
on every row so old files are recognised and rejected with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypedDict

SCHEMA_VERSION = 1
"""Version of the `TaskSample` on-disk schema; bump it when a field changes meaning or type."""

TASK_TYPES = ("mc", "multihop", "reading", "dialogue_memory", "numerical")
"""The five task types the RL sampler balances (RECIPE.md section 1). Generators may add more."""

AnswerKind = Literal["text", "choice", "number", "sequence"]
ANSWER_KINDS: tuple[str, ...] = ("text", "choice", "number", "sequence")
"""text: short entity or phrase; choice: a letter A-D; number: a numeric value;
sequence: a long string graded densely (dialogue needles, MRCR)."""


class Message(TypedDict):
    """One chat turn, as every chat API takes it."""

    role: Literal["system", "user", "assistant"]
    content: str


Conversation = list[Message]


@dataclass
class Completion:
    """One generated response.

    `token_ids` are the generated tokens only (no prompt); `logprobs[i]` is the log-probability
    the sampling distribution gave `token_ids[i]` (None when the backend does not report them).
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] | None = None
    finish_reason: str = "stop"
    """"stop" (end-of-sequence or a stop string) or "length" (hit max_new_tokens)."""
    prompt_tokens: int | None = None
    entropies: list[float] | None = None
    """`entropies[i]`: the full-vocabulary entropy of the distribution `token_ids[i]` was drawn
    from (the one `logprobs` are read from), when the backend reports it with the log-probs
    (the hf backend does; vLLM and OpenAI endpoints cannot). The RL trainer reads them instead
    of recomputing them in the policy when strictly on-policy."""


@dataclass
class Document:
    """One corpus document."""

    id: str
    """Stable id: the same input gives the same id on every run (a content hash or source path)."""
    text: str
    domain: str = "general"
    """Coarse kind: code, academic, professional, general, literature, dialogue, ..."""
    title: str = ""
    source: str = ""
    """Where it came from: a file path, a dataset name, or a generator name."""
    n_tokens: int | None = None
    """Length in the target tokenizer's tokens, when counted."""
    meta: dict[str, str] = field(default_factory=dict)


@dataclass
class Provenance:
    """How a sample was made: enough to re-derive or audit its answer."""

    generator: str = ""
    """Synthesis generator (kg_multihop, corpus_numerical, mase, dialogue) or benchmark name."""
    source_documents: list[str] = field(default_factory=list)
    """Ids of the documents the answer depends on."""
    reasoning_chain: list[str] = field(default_factory=list)
    """The graph path or the steps that lead to the answer, one step per item."""
    sql: str = ""
    """The SQL whose execution gave the answer (corpus-level numerical questions)."""


@dataclass
class TaskSample:
    """A verifiable long-context question (DESIGN.md, "Typed interfaces")."""

    id: str
    task_type: str
    """One of TASK_TYPES for training data; benchmarks map onto the same five."""
    question: str
    """The core question (q_core in the memory agent), without format instructions."""
    answers: list[str]
    """Gold answers; any one of them is correct. Numbers are stored as their decimal string.
    An empty list is legal only for numerical questions whose SQL returned nothing."""
    answer_kind: str = "text"
    """One of ANSWER_KINDS."""
    instruction: str = ""
    """Format instructions (q_inst), kept apart from the question so the memory agent can use it
    only in the final step."""
    context: str = ""
    """The long input, already assembled. Either this or `documents` is set."""
    documents: list[str] = field(default_factory=list)
    """The long input as separate documents, joined by the prompt builder."""
    choices: list[str] = field(default_factory=list)
    """Options for multiple choice, in order A, B, C, D."""
    provenance: Provenance = field(default_factory=Provenance)
    context_tokens: int | None = None
    """Length of the context in the target tokenizer's tokens, when counted."""
    difficulty: float | None = None
    """Pass rate of a reference model (pass@k), or a generator's difficulty level."""
    meta: dict[str, str] = field(default_factory=dict)
    """Benchmark breakdown keys and scorer inputs: e.g. difficulty/length (LongBench-V2),
    bin (MRCR), domain (CorpusQA), dataset (LongBench-V1), prefix (MRCR)."""
