"""The `hf` rollout engine: RL generation through `qwenlong.core.backends.hf.HFChatModel`.

Rollouts and training must agree on two things for the on-policy ratio to be 1: the tokens
(the policy is trained on exactly the ids the engine sampled, after exactly the prompt ids it
fed the model) and the distribution (both report log_softmax(logits / T) of the full
vocabulary, and its entropy, which strictly on-policy spares the trainer a pass of its own:
qwenlong.rl.rollout_stats). `prompt_ids` therefore renders prompts with the chat backend's own encoder rather
than a re-implementation of it, and new weights are copied into the engine's model in place,
strictly, from the HF on-disk names every policy exports (qwenlong.core.hf_weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qwenlong.core.backends.config import HFBackendConfig
from qwenlong.core.backends.hf import HFChatModel
from qwenlong.core.errors import BackendError
from qwenlong.core.hf_weights import HFWeightReceiver
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation
from qwenlong.rl.interfaces import WeightStream


class HFRolloutEngine:
    """A `RolloutEngine` over a local HF model (CPU or GPU), in this process.

    `config` holds the `hf` backend settings (device, dtype, batch size, threads); the model
    directory is the policy's starting point, whose weights `load_weights` later replaces.
    """

    weight_transports = ("stream",)

    def __init__(self, model_path: str | Path, config: HFBackendConfig = HFBackendConfig()) -> None:
        self.chat = HFChatModel(
            model_path,
            device=config.device,
            dtype=config.dtype,
            batch_size=config.batch_size,
            torch_threads=config.torch_threads,
        )
        self.name = self.chat.name

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """`sampling.n` completions per conversation, each with token ids (and log-probs and
        entropies when `sampling.logprobs`), in input order. With a seed, a conversation's completions do
        not depend on the other conversations in the call (the hf backend's per-row streams)."""
        return self.chat.generate(conversations, sampling)

    def prompt_ids(self, conversations: Sequence[Conversation]) -> list[list[int]]:
        """The token ids `generate` feeds the model for each conversation: the chat template
        with the generation prompt, tokenized without added special tokens."""
        # The hf backend's own renderer, so the ids cannot drift from what was generated from.
        return [
            self.chat.encode_prompt(conversation, i) for i, conversation in enumerate(conversations)
        ]

    def load_weights(self, weights: WeightStream) -> None:
        """Copy a complete stream of HF on-disk named tensors into the model in place."""
        self.weight_receiver().receive_all(weights)

    def weight_receiver(self) -> HFWeightReceiver:
        """A receiver for one weight stream fed in pieces (the Ray engine group's chunks)."""
        if self.chat.model is None:
            raise BackendError(f"rollout engine {self.name}: weights sent after close")
        return HFWeightReceiver(self.chat.model, f"rollout engine {self.name}")

    def release_memory(self) -> None:
        """Nothing to release: the HF engine keeps no cache between calls."""

    def reclaim_memory(self) -> None:
        """Nothing to take back (see `release_memory`)."""

    def close(self) -> None:
        """Release the model."""
        self.chat.close()
