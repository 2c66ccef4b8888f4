"""The `hf` rollout engine: RL generation through `qwenlong.core.backends.hf.HFChatModel`.

Rollouts and training must agree on two things for the on-policy ratio to be 1: the tokens
(the policy is trained on exactly the ids the engine sampled, after exactly the prompt ids it
fed the model) and the distribution (both report log_softmax(logits / T) of the full
vocabulary). `prompt_ids` therefore renders prompts with the chat backend's own encoder rather
than a re-implementation of it, and `load_weights` copies the policy's tensors into the
engine's model in place, strictly by name and shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from torch import Tensor

from qwenlong.core.backends.config import HFBackendConfig
from qwenlong.core.backends.hf import HFChatModel
from qwenlong.core.errors import BackendError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation
from qwenlong.rl.weights import load_named_tensors


class HFRolloutEngine:
    """A `RolloutEngine` over a local HF model (CPU or GPU), one process.

    `config` holds the `hf` backend settings (device, dtype, batch size, threads); the model
    directory is the policy's starting point, whose weights `load_weights` later replaces.
    """

    def __init__(self, model_path: str | Path, config: HFBackendConfig = HFBackendConfig()) -> None:
        self.chat = HFChatModel(
            model_path,
            device=config.device,
            dtype=config.dtype,
            batch_size=config.batch_size,
            torch_threads=config.torch_threads,
        )
        self.name = self.chat.name
        self.tokenizer = self.chat.tokenizer
        # How many times `load_weights` replaced the weights (0: the initial model), for logs.
        self.weights_version = 0

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """`sampling.n` completions per conversation, each with token ids (and log-probs when
        `sampling.logprobs`), in input order. With a seed, a conversation's completions do
        not depend on the other conversations in the call (the hf backend's per-row streams)."""
        return self.chat.generate(conversations, sampling)

    def prompt_ids(self, conversations: Sequence[Conversation]) -> list[list[int]]:
        """The token ids `generate` feeds the model for each conversation: the chat template
        with the generation prompt, tokenized without added special tokens."""
        # The hf backend's own renderer, so the ids cannot drift from what was generated from.
        return [
            self.chat.encode_prompt(conversation, i) for i, conversation in enumerate(conversations)
        ]

    def load_weights(self, weights: Iterable[tuple[str, Tensor]]) -> None:
        """Copy the policy's named tensors into the engine's model in place (strict)."""
        if self.chat.model is None:
            raise BackendError(f"rollout engine {self.name}: load_weights called after close")
        load_named_tensors(self.chat.model, weights, f"rollout engine {self.name}")
        self.weights_version += 1

    def close(self) -> None:
        """Release the model."""
        self.chat.close()
