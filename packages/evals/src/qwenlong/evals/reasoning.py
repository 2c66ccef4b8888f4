"""Separate a thinking model's reasoning from its answer.

Qwen3 thinking models write their reasoning, then `</think>`, then the answer. Every scorer
grades the answer only, so the split lives here, once. The LAST `</think>` wins: a model that
quotes the tag inside its reasoning ("...I should close with </think>...") still has its answer
found after the final tag, which is also how QwenLong-L1's reward (`split("</think>")[-1]`)
reads a response.

The thinking chat templates put the opening `<think>` in the prompt, so a generated text
usually has no `<think>`; when a backend returns it anyway it is dropped from the reasoning.
"""

from __future__ import annotations

from collections.abc import Sequence

THINK_START = "<think>"
THINK_END = "</think>"

QWEN3_THINK_END_ID = 151668
"""Token id of `</think>` in the Qwen3 tokenizer (RECIPE.md section 4)."""


def split_reasoning(text: str) -> tuple[str, str]:
    """(reasoning, answer): the text before and after the last `</think>`.

    Without `</think>` the whole text is the answer and the reasoning is "". Neither part is
    stripped: MRCR grades the answer character by character, so whitespace is the caller's
    decision. A leading `<think>` (after optional whitespace) is removed from the reasoning.
    """
    cut = text.rfind(THINK_END)
    if cut < 0:
        return "", text
    reasoning = text[:cut]
    opened = reasoning.lstrip()
    if opened.startswith(THINK_START):
        reasoning = opened[len(THINK_START) :]
    return reasoning, text[cut + len(THINK_END) :]


def answer_text(text: str) -> str:
    """The answer part of `text`: after the last `</think>`, or all of it (unstripped)."""
    cut = text.rfind(THINK_END)
    return text if cut < 0 else text[cut + len(THINK_END) :]


def has_closed_reasoning(text: str) -> bool:
    """Whether the model closed its reasoning (QwenLong-L1's reward is 0 when it did not)."""
    return THINK_END in text


def split_reasoning_ids(
    token_ids: Sequence[int], think_end_id: int = QWEN3_THINK_END_ID
) -> tuple[list[int], list[int]]:
    """(reasoning_ids, answer_ids) around the last `think_end_id`, which belongs to neither.

    Without the id every token is an answer token, as in `split_reasoning`. Working on ids
    avoids a decode/re-encode round trip when RL needs the answer span of a rollout.
    """
    ids = list(token_ids)
    for position in range(len(ids) - 1, -1, -1):
        if ids[position] == think_end_id:
            return ids[:position], ids[position + 1 :]
    return [], ids
