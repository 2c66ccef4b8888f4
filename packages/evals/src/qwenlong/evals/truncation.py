"""Middle truncation in the target model's tokens (RECIPE.md section 4: keep head and tail).

A context longer than the budget loses its middle: the first half of the budget's tokens and the
last half are kept, as in the LongBench prompt builders. Questions about long documents tend to
depend on the opening (titles, definitions) and the end (conclusions, the latest turns), and
cutting the middle keeps both.

Exactness: the budget is checked on the rendered prompt itself (chat template and generation
header included), not on an estimate, because tokens can merge across the seam between head and
tail or between the document and the template text. A 1M-token document is tokenized once; the
cut is made on its token offsets, and only candidates of budget size are re-tokenized.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.prompt_set import DEFAULT_PROMPTS, PromptSet
from qwenlong.core.records import Conversation, TaskSample
from qwenlong.evals.prompts import build_messages, render_context


@runtime_checkable
class TokenCounter(Protocol):
    """Anything that counts tokens of the target model's tokenizer."""

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` alone, without special tokens."""
        ...


@dataclass
class _Encoded:
    """A text tokenized once: the token count and, per token, where it starts and ends."""

    text: str
    ids: list[int]
    offsets: list[tuple[int, int]] | None
    """Character span of each token; None for tokenizers that cannot report them."""


class HFTokenCounter:
    """A `TokenCounter` over a Hugging Face tokenizer, with the chat-aware counts truncation needs.

    Calling the object counts tokens too, so it also fits `Benchmark.load(count_tokens=...)`.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, text: str) -> int:
        return self.count_tokens(text)

    def count_tokens(self, text: str) -> int:
        return len(self._ids(text, special=False))

    def count_messages(self, conversation: Conversation) -> int:
        """Tokens of the prompt the model receives: chat template with the generation header.

        Tokenizers without a chat template count the user turns' text joined by blank lines,
        with the tokenizer's own special tokens (what a plain-text backend would feed).
        """
        return len(self._ids(self.render(conversation), special=not self._has_template))

    def render(self, conversation: Conversation) -> str:
        """The prompt text exactly as the model reads it."""
        if self._has_template:
            return self.tokenizer.apply_chat_template(
                list(conversation), tokenize=False, add_generation_prompt=True
            )
        return "\n\n".join(message["content"] for message in conversation)

    def encode(self, text: str) -> _Encoded:
        """Tokenize once, keeping character offsets when the tokenizer is a fast one."""
        if getattr(self.tokenizer, "is_fast", False):
            enc = self.tokenizer(
                text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
            )
            offsets = list(enc["offset_mapping"])
            return _Encoded(text, list(enc["input_ids"]), offsets)
        return _Encoded(text, self._ids(text, special=False), None)

    def join_ends(self, encoded: _Encoded, head: int, tail: int) -> str:
        """The text of the first `head` and last `tail` tokens, concatenated.

        With offsets the two ends are cut from the original string, so they are verbatim; without
        them the token ids are decoded, which may normalise whitespace.
        """
        n = len(encoded.ids)
        if head + tail >= n:
            return encoded.text
        if encoded.offsets is not None:
            head_text = encoded.text[: encoded.offsets[head - 1][1]] if head else ""
            tail_text = encoded.text[encoded.offsets[n - tail][0] :] if tail else ""
            return head_text + tail_text
        decode = self.tokenizer.decode
        head_text = decode(encoded.ids[:head]) if head else ""
        tail_text = decode(encoded.ids[n - tail :]) if tail else ""
        return head_text + tail_text

    @property
    def _has_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def _ids(self, text: str, special: bool) -> Sequence[int]:
        return self.tokenizer(text, add_special_tokens=special, verbose=False)["input_ids"]


def as_token_counter(tokenizer: Any) -> HFTokenCounter:
    """Wrap an HF tokenizer (or pass an `HFTokenCounter` through unchanged)."""
    return tokenizer if isinstance(tokenizer, HFTokenCounter) else HFTokenCounter(tokenizer)


def _halves(keep: int) -> tuple[int, int]:
    """Head and tail token counts for a budget of `keep`: first half, last half."""
    head = keep // 2
    return head, keep - head


def truncate_middle(text: str, tokenizer: Any, max_tokens: int) -> str:
    """`text` cut to at most `max_tokens` tokens by removing its middle.

    The result re-tokenizes to `max_tokens` tokens or fewer (checked, not assumed); a text that
    already fits is returned unchanged.
    """
    if max_tokens < 0:
        raise ConfigError(f"truncate_middle: max_tokens is {max_tokens}, must be >= 0")
    counter = as_token_counter(tokenizer)
    encoded = counter.encode(text)
    keep = min(max_tokens, len(encoded.ids))
    while True:
        candidate = counter.join_ends(encoded, *_halves(keep))
        over = counter.count_tokens(candidate) - max_tokens
        if over <= 0:
            return candidate
        keep = max(0, keep - over)


def fit_context(
    sample: TaskSample,
    tokenizer: Any,
    max_input_tokens: int,
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> str:
    """The sample's document text, middle-truncated so the whole prompt fits `max_input_tokens`.

    Only the document is cut; instruction, question, options and the chat template stay whole.
    The count is that of the prompt rendered from `prompts` with the generation header, so the
    model receives at most `max_input_tokens` tokens. Pass the result, and the same `prompts`,
    to `build_prompt(sample, context=...)`.
    """
    counter = as_token_counter(tokenizer)
    overhead = counter.count_messages(build_messages(sample, "", prompts))
    if overhead > max_input_tokens:
        raise DatasetError(
            f"sample {sample.id!r}: the prompt without its document is {overhead} tokens, over "
            f"max_input_tokens={max_input_tokens}"
        )
    encoded = counter.encode(render_context(sample))
    keep = min(len(encoded.ids), max_input_tokens - overhead)
    while True:
        candidate = counter.join_ends(encoded, *_halves(keep))
        over = counter.count_messages(build_messages(sample, candidate, prompts)) - max_input_tokens
        if over <= 0:
            return candidate
        keep = max(0, keep - over)  # reaches 0 at worst, where the prompt is `overhead` long
