"""Prompts for rollouts: the evals single-pass prompt, its document middle-truncated to a limit.

RL must ask exactly what evaluation asks (the evals package owns the prompt and the answer
format the rewards read), only with the document cut to the stage's input limit. The templates
come from the run's `prompts:` (`TrainConfig.prompts`), the project's wording by default. Truncation
re-tokenizes candidate prompts, which for long documents costs far more than a rollout step's
bookkeeping, and the sampler revisits samples every epoch, so the cut contexts are cached (a
bounded LRU: a 120K-token document is ~0.5 MB of text).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from qwenlong.core.errors import DatasetError
from qwenlong.core.prompt_set import DEFAULT_PROMPTS, PromptSet
from qwenlong.core.records import Conversation, TaskSample
from qwenlong.evals.prompts import build_messages
from qwenlong.evals.truncation import HFTokenCounter, fit_context

END_OF_TURN = "<|im_end|>"
"""The ChatML end-of-turn token: a trained answer ends with it so the model learns to stop."""


class PromptBuilder:
    """Turns samples into one-turn conversations that fit `max_input_tokens` of `tokenizer`,
    rendered from the single-pass templates of `prompts`."""

    def __init__(
        self, tokenizer: Any, cache_size: int = 4096, prompts: PromptSet = DEFAULT_PROMPTS
    ) -> None:
        self.counter = HFTokenCounter(tokenizer)
        self.cache_size = cache_size
        self.prompts = prompts
        self._contexts: OrderedDict[tuple[str, int], str] = OrderedDict()

    def conversations(
        self, samples: Sequence[TaskSample], max_input_tokens: int
    ) -> list[Conversation]:
        """The prompt of each sample, its rendered length (template included) at most the limit.

        A sample whose prompt cannot fit even without its document is a `DatasetError`
        (raised by `fit_context`) naming the sample.
        """
        return [
            build_messages(sample, self.context(sample, max_input_tokens), self.prompts)
            for sample in samples
        ]

    def context(self, sample: TaskSample, max_input_tokens: int) -> str:
        """The sample's document cut to fit, from the cache when seen before."""
        key = (sample.id, max_input_tokens)
        if key in self._contexts:
            self._contexts.move_to_end(key)
            return self._contexts[key]
        context = fit_context(sample, self.counter, max_input_tokens, self.prompts)
        self._contexts[key] = context
        if len(self._contexts) > self.cache_size:
            self._contexts.popitem(last=False)
        return context

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in the policy's tokenizer (for length filters)."""
        return self.counter.count_tokens(text)


class ChatEncoder:
    """Token ids in the driver, rendered exactly as the `hf` backend renders them.

    Prompts: the chat template with the generation header, tokenized without added special
    tokens (what `HFChatModel` feeds the model). Answers: the text, then the end-of-turn token
    (`<|im_end|>`, or the tokenizer's eos when the vocabulary has no ChatML tokens).
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        chat_eos = tokenizer.convert_tokens_to_ids(END_OF_TURN)
        if isinstance(chat_eos, int) and chat_eos != tokenizer.unk_token_id:
            self.end_id = chat_eos
        elif tokenizer.eos_token_id is not None:
            self.end_id = int(tokenizer.eos_token_id)
        else:
            raise DatasetError("tokenizer has neither <|im_end|> nor an eos token to end answers")

    def render(self, conversation: Conversation) -> str:
        """The prompt text the model reads, generation header included."""
        return self.tokenizer.apply_chat_template(
            list(conversation), add_generation_prompt=True, tokenize=False
        )

    def prompt_ids(self, conversations: Sequence[Conversation]) -> list[list[int]]:
        return [
            list(self.tokenizer.encode(self.render(c), add_special_tokens=False))
            for c in conversations
        ]

    def answer_ids(self, text: str) -> list[int]:
        return [*self.tokenizer.encode(text, add_special_tokens=False), self.end_id]
