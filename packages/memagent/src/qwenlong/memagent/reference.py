"""Reference trajectories: what the memory agent should write when it knows where the evidence is.

A model that has never seen the update prompt does not write `<memory>` blocks, so its final
answers are guesses and memory-agent RL has no reward to climb. The paper starts Memory-RL from
a model that already reads well (RECIPE.md section 3); a tiny CPU model needs a supervised warm
start first, and this module gives it targets. For a sample whose evidence is known (synth
records it in `meta["evidence_chars"]`: character spans of the evidence documents in the
context), the reference agent reads the same chunks as the real one and after chunk t holds:

    memory  the evidence text found in chunks 1..t, verbatim and in document order (the update
            rules ask for exactly this: copy relevant facts as written, leave the rest out)
    plan    whether evidence is still to come

then answers from that memory. Each step is the prompt the real agent would see at that point
(`update_messages` with the reference state so far) and the reply it should give; the final
prompt is `final_messages` over the last reference memory. Evidence is located by its text, so
a middle-truncated document keeps whichever evidence survived the cut; an evidence piece split
by a chunk boundary enters the memory in two parts, each when its chunk is read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import Conversation, TaskSample
from qwenlong.memagent.chunking import iter_chunks
from qwenlong.memagent.config import MemAgentConfig
from qwenlong.memagent.interfaces import AgentTask, MemoryState, ParsedUpdate
from qwenlong.memagent.parse import MEMORY_TAG, PLAN_TAG, clip_state
from qwenlong.memagent.prompts import final_messages, update_messages

EVIDENCE_KEY = "evidence_chars"
"""`TaskSample.meta` key of the evidence spans: a JSON list of `[start, end)` character offsets
into `sample.context` (written by qwenlong.synth.assemble)."""

NOTHING_YET = "Nothing relevant yet."
"""The reference memory before any evidence has been read."""

PLAN_SEARCHING = "Read on for the evidence."
"""The reference plan while evidence is still ahead."""

PLAN_DONE = "Evidence found; keep it."
"""The reference plan once every evidence piece has been read."""


@dataclass(frozen=True)
class ReferenceStep:
    """One update step: the prompt the agent sees and the reply it should give."""

    conversation: Conversation
    target: str
    """`<memory>...</memory>` then `<plan>...</plan>`, as `qwenlong.memagent.parse` reads it."""


@dataclass(frozen=True)
class ReferenceTrajectory:
    """The reference agent's steps over one document and its final-answer prompt."""

    steps: list[ReferenceStep]
    final: Conversation
    """The final-answer prompt over the last reference memory."""
    found: int
    """Evidence pieces found in the document (the others were cut by truncation)."""


def evidence_texts(sample: TaskSample) -> list[str] | None:
    """The evidence pieces of `sample` as text, or None when it records none.

    Raises `DatasetError` when the spans are malformed or fall outside the context.
    """
    raw = sample.meta.get(EVIDENCE_KEY)
    if raw is None:
        return None
    context = sample.context or ""
    try:
        spans = json.loads(raw)
        pieces = [context[int(a) : int(b)] for a, b in spans]
        valid = all(0 <= int(a) < int(b) <= len(context) for a, b in spans)
    except (ValueError, TypeError) as err:
        raise DatasetError(
            f"sample {sample.id!r}: meta.{EVIDENCE_KEY} is not a list of [start, end] spans ({err})"
        ) from None
    if not valid:
        raise DatasetError(
            f"sample {sample.id!r}: meta.{EVIDENCE_KEY} {raw} does not fit a context of "
            f"{len(context)} characters"
        )
    return pieces


def locate(document: str, pieces: Sequence[str]) -> list[tuple[int, int]]:
    """Character spans of `pieces` in `document`, in document order; a piece that is not
    there (truncated away) is left out. Repeated text is matched at its first free place."""
    spans: list[tuple[int, int]] = []
    for piece in pieces:
        text = piece.strip()
        start = document.find(text) if text else -1
        while start >= 0 and any(a <= start < b for a, b in spans):
            start = document.find(text, start + 1)
        if start >= 0:
            spans.append((start, start + len(text)))
    return sorted(spans)


def render_update(state: MemoryState) -> str:
    """The reply an update step should give for `state`."""
    memory = f"<{MEMORY_TAG}>\n{state.memory}\n</{MEMORY_TAG}>"
    return f"{memory}\n<{PLAN_TAG}>\n{state.plan}\n</{PLAN_TAG}>"


def reference_trajectory(
    task: AgentTask, pieces: Sequence[str], tokenizer: object, config: MemAgentConfig
) -> ReferenceTrajectory:
    """The reference agent over `task`'s document, given its evidence `pieces` (see module)."""
    document = "".join(task.read())
    spans = locate(document, pieces)
    read = [""] * len(spans)  # the part of each evidence piece read so far
    steps: list[ReferenceStep] = []
    state = MemoryState()
    offset = 0
    for chunk in iter_chunks(task.read(), tokenizer, config.chunk_tokens, config.read_chars):
        end = offset + len(chunk.text)
        for i, (a, b) in enumerate(spans):
            read[i] += document[max(a, offset) : min(b, end)]
        memory = "\n".join(part.strip() for part in read if part.strip()) or NOTHING_YET
        plan = PLAN_DONE if spans and all(b <= end for _, b in spans) else PLAN_SEARCHING
        new = clip_state(
            ParsedUpdate(MemoryState(memory, plan), "ok"),
            tokenizer,
            config.memory_tokens,
            config.plan_tokens,
        ).state
        prompt = update_messages(task, state, chunk, config.memory_tokens, config.plan_tokens)
        steps.append(ReferenceStep(prompt, render_update(new)))
        state, offset = new, end
    return ReferenceTrajectory(steps, final_messages(task, state), len(spans))
