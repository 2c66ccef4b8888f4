"""Read an update output into the next memory and plan, whatever the model actually wrote.

A long run makes hundreds of update calls per sample, and some outputs will be malformed: no
tags, cut off by the token budget, empty, or (for thinking models) all reasoning and no answer.
One bad step must not wipe what the previous steps gathered, so every failure keeps the previous
state and says why (`ParseStatus`), and the trace shows how often it happened. Repairs that lose
nothing (a closing tag forgotten by a model that stopped on its own) are applied and recorded.

Parsing (`parse_update`) is pure string work; fitting the result into the token budgets
(`clip_state`) needs the target tokenizer and is a separate step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from qwenlong.evals.reasoning import THINK_END, THINK_START, answer_text
from qwenlong.evals.truncation import as_token_counter, truncate_middle
from qwenlong.memagent.interfaces import MemoryState, ParsedUpdate

MEMORY_TAG = "memory"
PLAN_TAG = "plan"


def parse_update(
    text: str, previous: MemoryState, finish_reason: str = "stop", thinking: bool = False
) -> ParsedUpdate:
    """The state an update output `text` leads to, and how it was read.

    Only the text after the last `</think>` counts. A thinking model's output without
    `</think>` (or any output opening `<think>` and never closing it) is unfinished reasoning.
    The memory is the content of the last closed `<memory>` block; the plan that of the last
    closed `<plan>` block, the previous plan when there is none. `finish_reason` "length" marks
    an output cut by its budget: an unclosed block then lost its end and is not used.
    """
    if THINK_END in text:
        body = answer_text(text)
    elif thinking or text.lstrip().startswith(THINK_START):
        return ParsedUpdate(previous, "unfinished_reasoning")
    else:
        body = text
    if not body.strip():
        return ParsedUpdate(previous, "empty")
    memory = _block(body, MEMORY_TAG)
    if memory is None:
        return ParsedUpdate(previous, "missing_memory")
    memory_text, memory_closed = memory
    cut = finish_reason == "length"
    if not memory_closed and cut:
        return ParsedUpdate(previous, "truncated")
    issues: list[str] = []
    if not memory_closed:
        memory_text = memory_text.split(f"<{PLAN_TAG}>")[0]
    plan = _block(body, PLAN_TAG)
    if plan is None:
        plan_text, issue = previous.plan, "plan_missing"
    elif not plan[1] and cut:
        plan_text, issue = previous.plan, "plan_truncated"
    else:
        plan_text, issue = plan[0], ("" if plan[1] else "plan_unclosed")
    issues += [issue] if issue else []
    state = MemoryState(memory=memory_text.strip(), plan=plan_text.strip())
    return ParsedUpdate(state, "ok" if memory_closed else "repaired", tuple(issues))


def clip_state(
    parsed: ParsedUpdate, tokenizer: Any, memory_tokens: int, plan_tokens: int
) -> ParsedUpdate:
    """`parsed` with memory and plan cut to their token budgets (middle truncation).

    The middle goes because a rewritten memory usually holds the oldest established facts first
    and this section's additions last; both ends matter more than the middle. A discarded output
    carries the previous state, which already fits, and is returned unchanged.
    """
    if parsed.kept_previous:
        return parsed
    counter = as_token_counter(tokenizer)
    issues = list(parsed.issues)
    memory, plan = parsed.state.memory, parsed.state.plan
    if counter.count_tokens(memory) > memory_tokens:
        memory = truncate_middle(memory, counter, memory_tokens)
        issues.append("memory_clipped")
    if counter.count_tokens(plan) > plan_tokens:
        plan = truncate_middle(plan, counter, plan_tokens)
        issues.append("plan_clipped")
    if len(issues) == len(parsed.issues):
        return parsed
    return replace(parsed, state=MemoryState(memory, plan), issues=tuple(issues))


def _block(body: str, tag: str) -> tuple[str, bool] | None:
    """(content, closed) of the last `<tag>` block that is closed, else of the last `<tag>`
    opened and left open; None when `<tag>` never appears.

    Searching from the end skips drafts and echoes: a model that first says "I will write
    <memory> then <plan>" and then writes them has its real blocks last.
    """
    opening, closing = f"<{tag}>", f"</{tag}>"
    end = body.rfind(closing)
    if end >= 0:
        start = body.rfind(opening, 0, end)
        if start >= 0:
            return body[start + len(opening) : end], True
    start = body.rfind(opening)
    if start < 0:
        return None
    return body[start + len(opening) :], False
