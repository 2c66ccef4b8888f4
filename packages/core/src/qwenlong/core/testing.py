"""Pytest fixtures shared by every package's tests (loaded with `-p qwenlong.core.testing`).

- `tiny_model_dir` (session): a tiny Qwen3-MoE directory from `build_tiny_model` with the
  default `TinyModelConfig` (seed 0, generated tokenizer corpus), built once per test session
  under pytest's temporary root. Load it with the transformers Auto classes, or give its path to
  `BackendConfig(model=str(tiny_model_dir))`. Treat it as read-only: every test shares it.
- `tiny_chat_model` (session): an `HFChatModel` (CPU, float32) on that directory, loaded once;
  use it where a test needs a `ChatModel` and does not care about backend settings.
- `echo_chat_model` (function): a fresh `EchoChatModel`, the deterministic stub `ChatModel`
  defined here (subclass the class itself for gated or failing variants).

torch and transformers are imported only when a fixture is first used, so loading this plugin
costs nothing for test runs that never ask for a model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation

if TYPE_CHECKING:
    from qwenlong.core.backends.hf import HFChatModel


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the session's tiny model directory (built on first use, a few seconds)."""
    from qwenlong.core.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_chat_model(tiny_model_dir: Path) -> Iterator[HFChatModel]:
    """The tiny model behind the `hf` backend, shared by the session and closed at its end."""
    from qwenlong.core.backends.hf import HFChatModel

    model = HFChatModel(tiny_model_dir)
    yield model
    model.close()


class EchoChatModel:
    """A deterministic stub `ChatModel` that records what it was asked.

    Completion k of a conversation is its last message's content + '#k', one token (the
    character's code point) per character. Stop strings cut the text at the first occurrence
    (finish "stop"); a text longer than `max_new_tokens` is cut to it (finish "length");
    otherwise finish is "stop". Token i gets log-prob -(i + 1) / 10 when `sampling.logprobs`
    is set, else `logprobs` is None. `prompt_tokens` is the total number of characters in the
    conversation's messages. Every call appends `(list(conversations), sampling)` to `calls`.
    """

    def __init__(self, name: str = "echo") -> None:
        self.name = name
        self.calls: list[tuple[list[Conversation], SamplingParams]] = []

    def complete(self, conversation: Conversation, k: int, sampling: SamplingParams) -> Completion:
        """Completion k of one conversation (what `generate` returns for it)."""
        text, finish = f"{conversation[-1]['content']}#{k}", "stop"
        for stop in sampling.stop:
            text = text.split(stop)[0]
        if len(text) > sampling.max_new_tokens:
            text, finish = text[: sampling.max_new_tokens], "length"
        ids = [ord(ch) for ch in text]
        logprobs = [-(i + 1) / 10 for i in range(len(ids))] if sampling.logprobs else None
        prompt = sum(len(message["content"]) for message in conversation)
        return Completion(text, ids, logprobs, finish, prompt_tokens=prompt)

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """`sampling.n` completions per conversation, in input order; the call is recorded."""
        self.calls.append((list(conversations), sampling))
        return [[self.complete(c, k, sampling) for k in range(sampling.n)] for c in conversations]

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def echo_chat_model() -> EchoChatModel:
    """A fresh `EchoChatModel` named "echo" with no recorded calls."""
    return EchoChatModel()


class ScriptedChatModel:
    """A `ChatModel` whose reply to a conversation is `reply(conversation)` (`n` copies), with
    every call's conversations recorded in `calls`: for tests of code that prompts a model and
    parses what comes back."""

    def __init__(
        self,
        reply: Callable[[Conversation], str],
        finish: str = "stop",
        name: str = "scripted",
    ) -> None:
        self.reply = reply
        self.finish = finish
        self.name = name
        self.calls: list[list[Conversation]] = []

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        self.calls.append(list(conversations))
        return [
            [Completion(self.reply(c), finish_reason=self.finish)] * sampling.n
            for c in conversations
        ]

    def close(self) -> None:
        pass
