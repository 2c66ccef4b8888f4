"""Prompt token ids from a conversation: the one renderer every engine and the trainer share.

RL trains on exactly the ids an engine generated from, so every engine (the hf backend, the vLLM
rollout engine) renders a conversation the same way: the tokenizer's chat template with the
generation prompt, as text, then tokenized without added special tokens (the template already
writes them).
"""

from __future__ import annotations

from typing import Any

from qwenlong.core.errors import BackendError
from qwenlong.core.records import Conversation


def render_prompt_ids(tokenizer: Any, conversation: Conversation, index: int = 0) -> list[int]:
    """Token ids of `conversation` with the chat template and generation prompt (`index`
    names the conversation in errors)."""
    from jinja2 import TemplateError

    try:
        text = tokenizer.apply_chat_template(
            list(conversation), add_generation_prompt=True, tokenize=False
        )
    except (TemplateError, KeyError, TypeError) as err:
        raise BackendError(f"conversation {index}: chat template failed: {err}") from None
    return tokenizer.encode(text, add_special_tokens=False)
