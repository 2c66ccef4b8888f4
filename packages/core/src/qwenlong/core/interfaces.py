"""The seams of qwenlong.core: what every backend implements and every caller relies on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from qwenlong.core.records import Completion, Conversation


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. Defaults follow the paper's rollout and evaluation settings (RECIPE.md 2, 4)."""

    max_new_tokens: int = 512
    temperature: float = 0.7
    """0 means greedy decoding."""
    top_p: float = 0.95
    n: int = 1
    """Completions per conversation (the GRPO group size G for rollouts)."""
    stop: tuple[str, ...] = ()
    """Generation ends at the first of these strings; the string itself is not returned."""
    seed: int | None = None
    """Makes sampling reproducible for the same inputs and backend."""
    logprobs: bool = False
    """Return the sampled tokens' log-probabilities (when the backend can)."""


@runtime_checkable
class ChatModel(Protocol):
    """Anything that turns conversations into completions.

    Synthesis, judging, the memory agent, evaluation and RL rollouts all take a `ChatModel`, so
    the same code runs on transformers (CPU tests), an OpenAI-compatible server, or vLLM.
    """

    name: str
    """The model's name or path, for reports."""

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """Return `sampling.n` completions for each conversation, in input order.

        Raises `BackendUnavailable` when a server is unreachable or keeps failing after
        retries (callers may retry later), `BackendError` for errors retrying cannot fix.
        """
        ...

    def close(self) -> None:
        """Release processes, threads and memory held by the backend."""
        ...
