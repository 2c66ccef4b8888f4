"""The `hf` backend: chat generation with transformers on CPU or GPU.

This is the backend of every CPU test and of RL rollouts on the torch path, so its log-probs
must be exactly what the policy recomputes: for each returned token, log_softmax(logits / T) of
the full vocabulary at the sampled id (T = 1 for greedy), and the entropy of that same
distribution. top-p truncation changes which token is drawn but is not reflected in the
reported log-prob or entropy, because the policy's recomputation has no truncation either.

Decoding is a KV-cached loop (`qwenlong.core.backends.hf_decode`) rather than `model.generate`,
so that every step is visible and requests can join and leave a running batch: the prompt of each
conversation is prefilled once and its cache repeated for the `n` samples, rows that finish leave
the batch, and each row draws its uniform numbers from its own counter-based stream keyed by
(seed, prompt, sample index). Same seed and same conversation thus give the same completion
whatever else is in the batch or how conversations are chunked (up to the last-bit float
differences a different batch shape can cause in the logits). `decoder()` hands that batch to a
server, which admits requests between steps (`qwenlong.core.continuous_batcher`).
"""

from __future__ import annotations

import contextlib
import gc
import secrets
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from qwenlong.core.backends.config import BackendConfig
from qwenlong.core.backends.hf_decode import DecodeBatch, check_sampling
from qwenlong.core.errors import BackendError, first_line
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.model_paths import check_model_dir

# The sampling helpers, under the names callers imported them by from this module.
from qwenlong.core.prompt_ids import render_prompt_ids
from qwenlong.core.records import Completion, Conversation

_DTYPES: dict[str, torch.dtype | str] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "auto": "auto",
}
_CHAT_EOS = "<|im_end|>"


@contextlib.contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """Silence transformers' load/save progress bars for the duration, then restore them."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class HFChatModel:
    """A local HF causal LM with a chat template, implementing `ChatModel`.

    `tokenizer` is public so callers can count tokens in the model's own units.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 8,
        torch_threads: int | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = check_model_dir(model)
        if dtype not in _DTYPES:
            raise BackendError(f"{path}: unknown dtype {dtype!r}; known: {', '.join(_DTYPES)}")
        if batch_size < 1:
            raise BackendError(f"{path}: batch_size must be >= 1, got {batch_size}")
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            with quiet_progress_bars():
                # local_files_only: a broken folder fails here, never on a hub lookup
                self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                self.model = AutoModelForCausalLM.from_pretrained(
                    path, dtype=_DTYPES[dtype], local_files_only=True
                )
            self.model.to(device)
        except (OSError, ValueError, KeyError, RuntimeError, AssertionError) as err:
            raise BackendError(f"cannot load model from {path}: {first_line(err)}") from None
        if not self.tokenizer.chat_template:
            raise BackendError(f"{path}: the tokenizer has no chat template")
        self.model.eval()
        self.name = str(model)
        self.device = self.model.device
        self.batch_size = batch_size
        self.eos_ids = self._eos_ids()
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.eos_ids)
        self.max_positions: int | None = getattr(self.model.config, "max_position_embeddings", None)

    @classmethod
    def from_config(cls, config: BackendConfig) -> HFChatModel:
        """Build from `config.model` (a local directory) and the `config.hf` settings."""
        hf = config.hf
        return cls(
            config.model,
            device=hf.device,
            dtype=hf.dtype,
            batch_size=hf.batch_size,
            torch_threads=hf.torch_threads,
        )

    def count_tokens(self, text: str) -> int:
        """Length of `text` in this model's tokens (no special tokens added)."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """`sampling.n` completions per conversation, in input order.

        Every prompt is encoded and checked before anything is decoded. Conversations then
        enter one decode batch shortest prompt first, at most `batch_size` at a time, each
        taking the place of one that finished (left padded; padding changes no output).
        `token_ids` end with the eos token when one was generated, or with the token that
        completed a stop string (the text is cut before the stop string); `logprobs` and
        `entropies` (of the same tempered distribution) are filled when `sampling.logprobs`.
        Without a seed, one random seed serves the call.
        """
        batch = self.decoder()
        check_sampling(sampling)
        prompts = [
            self.encode_prompt(conversation, i) for i, conversation in enumerate(conversations)
        ]
        for prompt in prompts:
            batch.check_length(prompt, sampling)
        seeded = replace(sampling, seed=secrets.randbits(63)) if sampling.seed is None else sampling
        waiting = deque(sorted(range(len(prompts)), key=lambda i: len(prompts[i])))
        results: list[list[Completion]] = [[] for _ in prompts]
        while waiting or batch.active:
            room = min(len(waiting), self.batch_size - batch.active) if batch.can_admit() else 0
            if room:
                joining = [waiting.popleft() for _ in range(room)]
                batch.admit_encoded([(i, prompts[i], seeded) for i in joining])
            for i, completions in batch.step():
                results[i] = completions
        return results

    def decoder(self) -> DecodeBatch[Any]:
        """A new, empty decode batch over this model (`qwenlong.core.decoding.StepDecoder`)."""
        if self.model is None:
            raise BackendError(f"{self.name}: generate called after close")
        return DecodeBatch(self)

    def close(self) -> None:
        """Drop the weights and return GPU memory."""
        on_cuda = self.device.type == "cuda"
        self.model = None
        gc.collect()
        if on_cuda:
            torch.cuda.empty_cache()

    # --- internals ----------------------------------------------------------------------

    def _eos_ids(self) -> frozenset[int]:
        """Every id that ends a turn: the generation config's eos list, the tokenizer's eos,
        and `<|im_end|>` when the vocabulary has it."""
        ids: set[int] = set()
        configured = self.model.generation_config.eos_token_id
        if configured is not None:
            ids.update([configured] if isinstance(configured, int) else configured)
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        chat_eos = self.tokenizer.convert_tokens_to_ids(_CHAT_EOS)
        if isinstance(chat_eos, int) and chat_eos != self.tokenizer.unk_token_id:
            ids.add(chat_eos)
        if not ids:
            raise BackendError(f"{self.name}: neither the tokenizer nor the model defines eos")
        return frozenset(ids)

    def encode_prompt(self, conversation: Conversation, index: int = 0) -> list[int]:
        """Token ids of `conversation` rendered with the chat template and generation prompt,
        exactly as `generate` feeds it (`index` names the conversation in errors)."""
        return render_prompt_ids(self.tokenizer, conversation, index)
