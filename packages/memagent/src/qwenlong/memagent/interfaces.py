"""The seams of qwenlong.memagent: what the memory agent reads, keeps, and reports.

The agent (RECIPE.md section 3) reads a document far beyond the model's window as chunks
x_1..x_K. At step t it rewrites a `MemoryState` (memory m_t and plan p_t) from the previous one,
the chunk and the core question; after the last chunk it answers from the memory alone. Every
step leaves an `AgentStep` record, every finished sample an `AgentResult`, and a
`StepObserver` (the JSONL trace, a progress display, an RL collector) sees both as they happen,
so nothing that grows with the document has to stay in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

ParseStatus = Literal[
    "ok", "repaired", "empty", "missing_memory", "truncated", "unfinished_reasoning"
]
"""How an update output was read.

ok: `<memory>` and `</memory>` found. repaired: `<memory>` opened and never closed, but the
model stopped on its own, so the text up to `<plan>` (or the end) is taken as the memory.
empty: nothing but whitespace after the reasoning. missing_memory: text without a `<memory>` tag.
truncated: the output hit its token budget inside the memory. unfinished_reasoning: a thinking
model stopped before `</think>`. The last four keep the previous memory.
"""

KEEPS_PREVIOUS_MEMORY: frozenset[str] = frozenset(
    {"empty", "missing_memory", "truncated", "unfinished_reasoning"}
)
"""Statuses under which the step's output is discarded and the previous memory carried over."""

Route = Literal["agent", "single_pass"]
"""How a sample was answered: chunk by chunk through the memory, or in one prompt."""


@dataclass(frozen=True)
class MemoryState:
    """What the agent carries from one chunk to the next: both fields are overwritten each step."""

    memory: str = ""
    """m_t: everything the model chose to keep that bears on the question."""
    plan: str = ""
    """p_t: what the model still looks for and how it means to use the next sections."""


@dataclass(frozen=True)
class ParsedUpdate:
    """One update output, read: the state to carry on with and what happened on the way."""

    state: MemoryState
    status: ParseStatus
    issues: tuple[str, ...] = ()
    """Smaller repairs that did not discard the output: "plan_missing" (previous plan kept),
    "plan_truncated", "memory_clipped" / "plan_clipped" (cut to the token budget)."""

    @property
    def kept_previous(self) -> bool:
        """Whether the output was discarded and the previous memory carried over."""
        return self.status in KEEPS_PREVIOUS_MEMORY


@dataclass(frozen=True)
class Chunk:
    """One section x_t of a document, cut at a token boundary of the target tokenizer."""

    index: int
    """0-based position in the document."""
    text: str
    """The section's text, verbatim: the chunks of a document concatenate to the document."""
    n_tokens: int
    """Tokens of `text` alone in the target tokenizer (at most the chunk budget)."""
    start_token: int
    """Sum of `n_tokens` over the chunks before this one."""


@dataclass(frozen=True)
class QuerySplit:
    """A user query taken apart: q_core drives the memory, q_inst only shapes the final answer."""

    question: str
    """q_core: what is asked, without format requests and without the option lines."""
    instruction: str = ""
    """q_inst: how the answer should look, in the order the sentences appeared."""
    choices: tuple[str, ...] = ()
    """Multiple-choice options found in the query, in letter order A, B, C, ..."""
    rules: tuple[str, ...] = ()
    """Which rules fired (e.g. "answer_request", "choices", "answer_with", "llm"), for traces."""


DocumentReader = Callable[[], Iterable[str]]
"""Returns a fresh iterable of consecutive text pieces of one document (file blocks, string
slices). Called once per read, so a document can be streamed more than once (router, agent)."""


@dataclass(frozen=True)
class AgentTask:
    """One question over one document, as the agent needs it: split query and a streamed text."""

    id: str
    """Sample id: the key for traces and resumption."""
    question: str
    """q_core, used in every update prompt and in the final prompt."""
    read: DocumentReader
    """The document, streamed; never required to exist as one string."""
    instruction: str = ""
    """q_inst, used only in the final prompt."""
    choices: tuple[str, ...] = ()
    """Options of a multiple-choice question, shown with the question at every step."""
    answer_kind: str = "text"
    """A `TaskSample.answer_kind`; "choice" asks for the letter line LongBench-V2 reads."""


@dataclass
class AgentStep:
    """The record of one update step of one trajectory (lane)."""

    sample_id: str
    lane: int
    """Which of the `n` independent trajectories of the sample (0-based)."""
    step: int
    """0-based; equals the index of the chunk read at this step."""
    chunk_tokens: int
    chunk_start_token: int
    memory: str
    """Memory after this step (the previous one when the output was discarded)."""
    plan: str
    status: ParseStatus
    issues: list[str] = field(default_factory=list)
    output_tokens: int | None = None
    """Tokens the model generated at this step (None when the backend reports no token ids)."""
    finish_reason: str = "stop"
    raw_output: str | None = None
    """The model's text, kept per `MemAgentConfig.trace_raw_outputs` (by default only when the
    output was discarded, to show why)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what traces and `SolverOutput.trace` hold)."""
        return asdict(self)


@dataclass
class AgentResult:
    """One trajectory's outcome: the final answer and the statistics a report needs."""

    sample_id: str
    lane: int
    text: str
    """The final answer text, as generated (reasoning included for thinking models)."""
    finish_reason: str = "stop"
    output_tokens: int | None = None
    """Tokens of the final answer."""
    route: Route = "agent"
    memory: MemoryState = field(default_factory=MemoryState)
    """The state the final answer was given from."""
    n_steps: int = 0
    failed_steps: int = 0
    """Steps whose output was discarded (status in KEEPS_PREVIOUS_MEMORY)."""
    document_tokens: int = 0
    """Tokens of the document read (the prompt's tokens for single-pass answers)."""
    steps: list[AgentStep] = field(default_factory=list)
    """Every step, when the caller asked to keep them in memory; empty otherwise."""


class StepObserver(Protocol):
    """Sees every step and every finished sample as it happens (the trace file, RL collectors)."""

    def on_step(self, step: AgentStep) -> None:
        """Called once per lane per step, right after the step's output is parsed."""
        ...

    def on_result(self, sample_id: str, results: Sequence[AgentResult]) -> None:
        """Called once per sample with its `n` results, when its final answers are in."""
        ...
