"""The seam for continuous batching: a model that decodes one token at a time for a batch
that requests join and leave between steps.

A `ChatModel.generate` call runs a batch to its end, so a server that merges requests into
calls makes an 8-token request wait for the 2,000-token one it was merged with. A
`SteppedChatModel` hands out a `StepDecoder` instead: the server's scheduler
(`qwenlong.core.continuous_batcher`) admits waiting requests between steps and answers each
one the step it finishes. Every request keeps its own sampling settings, seed included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from qwenlong.core.errors import BackendError
from qwenlong.core.interfaces import ChatModel, SamplingParams
from qwenlong.core.records import Completion, Conversation

Key = TypeVar("Key")
"""Whatever the caller uses to tell its requests apart (a job, an index)."""


class RequestTooLong(BackendError):
    """The prompt plus the tokens asked for exceed the model's positions.

    The request, not the backend, has to change: a server answers it with 400, where other
    backend errors are 500.
    """


class StepDecoder(Protocol[Key]):
    """A decode batch that requests join and leave between steps. Driven by one thread."""

    @property
    def active(self) -> int:
        """Requests admitted and not finished yet."""
        ...

    def can_admit(self) -> bool:
        """Whether requests may join now: always when idle; while decoding only where the
        model's KV cache can be merged (full attention)."""
        ...

    def admit(
        self, requests: Sequence[tuple[Key, Conversation, SamplingParams]]
    ) -> list[tuple[Key, BackendError]]:
        """Prefill `requests` and add them to the batch; return those refused, each with why
        (a failed chat template, `RequestTooLong`, invalid settings). The rest are admitted."""
        ...

    def step(self) -> list[tuple[Key, list[Completion]]]:
        """Choose one token for every active sample and run the model once; return the
        requests whose `n` samples have all finished, with their completions."""
        ...


@runtime_checkable
class SteppedChatModel(ChatModel, Protocol):
    """A `ChatModel` that can also decode step by step (the hf backend)."""

    def decoder(self) -> StepDecoder[Any]:
        """A new, empty decode batch over this model."""
        ...
