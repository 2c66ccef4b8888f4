"""Continuous batching for the hf backend: a KV-cached decode batch that requests join and leave
between steps.

Each request's prompt is prefilled once (requests admitted together share one left-padded
forward pass) and its cache repeated for its `n` samples; its rows are then merged into the
running batch by left-padding whichever of the two caches is shorter, with the padding masked
out. Positions are passed explicitly, so padding never shifts RoPE. Rows that finish leave the
batch at once (`batch_select_indices`), and leading cache columns that only padding is left in
are cropped. Every row carries its own sampling settings and random stream
(`qwenlong.core.backends.hf_sampling`), so requests with different seeds, temperatures and
lengths decode together and each gets what it would have got alone.

Merging needs plain full-attention cache layers (`DynamicLayer`); a model with other layers
(sliding windows) still decodes, but new requests wait until the batch has emptied.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from transformers.cache_utils import Cache, DynamicLayer

from qwenlong.core.backends.hf_sampling import choose_tokens, row_seed, uniforms
from qwenlong.core.decoding import Key, RequestTooLong
from qwenlong.core.errors import BackendError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation


@dataclass
class _Request(Generic[Key]):
    key: Key
    sampling: SamplingParams
    stop_window: int
    """Tokens decoded to look for a stop string: each character spans at most 4 byte tokens."""
    unfinished: int
    rows: list[_Row] = field(default_factory=list)


@dataclass
class _Row:
    """One sample being decoded."""

    request: _Request
    prompt_tokens: int
    seed: int
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    entropies: list[float] = field(default_factory=list)
    finish_reason: str | None = None


@dataclass
class _State:
    """The batch's tensors, one entry per active row, in `rows` order."""

    cache: Cache
    mask: torch.Tensor
    """[rows, width] 1 where the cache column holds a real token of that row."""
    next_pos: torch.Tensor
    """[rows] the position of the token each row feeds next."""
    logits: torch.Tensor
    """[rows, vocab] the logits each row chooses its next token from."""


def check_sampling(sampling: SamplingParams) -> None:
    """Refuse settings no backend can honour, naming the field."""
    if sampling.max_new_tokens < 1:
        raise BackendError(f"sampling.max_new_tokens must be >= 1, got {sampling.max_new_tokens}")
    if sampling.n < 1:
        raise BackendError(f"sampling.n must be >= 1, got {sampling.n}")
    if sampling.temperature < 0:
        raise BackendError(f"sampling.temperature must be >= 0, got {sampling.temperature}")
    if not 0 < sampling.top_p <= 1:
        raise BackendError(f"sampling.top_p must be in (0, 1], got {sampling.top_p}")
    if any(not stop for stop in sampling.stop):
        raise BackendError("sampling.stop contains an empty string")


class LoadedModel(Protocol):
    """What decoding reads of the hf backend's `HFChatModel` (declared here, so this module
    and the backend do not import each other)."""

    name: str
    model: Any
    tokenizer: Any
    device: Any
    pad_id: int
    eos_ids: Any
    max_positions: int | None

    def encode_prompt(self, conversation: Conversation, index: int = 0) -> list[int]: ...


class DecodeBatch(Generic[Key]):
    """The hf backend's `StepDecoder`: see the module docstring. One thread drives it."""

    def __init__(self, chat: LoadedModel) -> None:
        self.chat = chat
        self._rows: list[_Row] = []
        self._state: _State | None = None
        self._active = 0
        self._mergeable = True
        """False once a cache turned out to have layers `merge` cannot pad."""

    @property
    def active(self) -> int:
        """Requests admitted and not finished yet."""
        return self._active

    def can_admit(self) -> bool:
        """Always when idle; while decoding, when the cache can be merged."""
        return self._state is None or self._mergeable

    def check_length(self, prompt: list[int], sampling: SamplingParams) -> None:
        """`RequestTooLong` when the prompt and `max_new_tokens` overrun the model's positions."""
        limit, positions = sampling.max_new_tokens, self.chat.max_positions
        if positions is not None and len(prompt) + limit > positions:
            raise RequestTooLong(
                f"{self.chat.name}: prompt of {len(prompt)} tokens + max_new_tokens {limit} "
                f"exceeds the model's {positions} positions"
            )

    def admit(
        self, requests: Sequence[tuple[Key, Conversation, SamplingParams]]
    ) -> list[tuple[Key, BackendError]]:
        """Encode and check each request, prefill those that pass; return the refused ones."""
        refused: list[tuple[Key, BackendError]] = []
        encoded: list[tuple[Key, list[int], SamplingParams]] = []
        for key, conversation, sampling in requests:
            try:
                check_sampling(sampling)
                prompt = self.chat.encode_prompt(conversation)
                self.check_length(prompt, sampling)
            except BackendError as err:
                refused.append((key, err))
                continue
            encoded.append((key, prompt, sampling))
        if encoded:
            self.admit_encoded(encoded)
        return refused

    def admit_encoded(self, requests: Sequence[tuple[Key, list[int], SamplingParams]]) -> None:
        """Prefill already encoded and checked prompts in one forward pass and join them.

        A request without a seed gets a random one here, so its samples still have streams.
        """
        if not requests:
            return
        if not self.can_admit():
            raise BackendError(f"{self.chat.name}: this model's cache cannot take new requests")
        rows: list[_Row] = []
        for key, prompt, sampling in requests:
            seed = sampling.seed if sampling.seed is not None else secrets.randbits(63)
            window = 4 * max((len(s) for s in sampling.stop), default=0) + 4
            request = _Request(key, replace(sampling, seed=seed), window, sampling.n)
            request.rows = [
                _Row(request, len(prompt), row_seed(seed, prompt, j)) for j in range(sampling.n)
            ]
            rows += request.rows
        with torch.inference_mode():
            state = self._prefill(
                [prompt for _, prompt, _ in requests], [s.n for *_, s in requests]
            )
            self._state = state if self._state is None else self._merge(self._state, state)
        self._rows += rows
        self._active += len(requests)

    def step(self) -> list[tuple[Key, list[Completion]]]:
        """One token for every active row, then one forward pass for the rows still going."""
        state = self._state
        if state is None:
            return []
        rows = self._rows
        device = state.logits.device
        temperature = torch.tensor([row.request.sampling.temperature for row in rows])
        top_p = torch.tensor([row.request.sampling.top_p for row in rows])
        seeds = np.array([row.seed for row in rows], dtype=np.uint64)
        counters = np.array([len(row.token_ids) for row in rows], dtype=np.uint64)
        with torch.inference_mode():
            tokens, logprobs, entropy = choose_tokens(
                state.logits, temperature.to(device), top_p.to(device), uniforms(seeds, counters)
            )
        going: list[int] = []
        finished: list[_Request] = []
        chosen = zip(tokens.tolist(), logprobs.tolist(), entropy.tolist(), strict=True)
        for k, (token, logprob, token_entropy) in enumerate(chosen):
            row = rows[k]
            row.token_ids.append(token)
            row.logprobs.append(logprob)
            row.entropies.append(token_entropy)
            row.finish_reason = self._finish_reason(row)
            if row.finish_reason is None:
                going.append(k)
                continue
            row.request.unfinished -= 1
            if row.request.unfinished == 0:
                finished.append(row.request)
        self._active -= len(finished)
        if not going:
            self._rows, self._state = [], None
        else:
            with torch.inference_mode():
                if len(going) < len(rows):
                    self._keep(going)
                    tokens = tokens[torch.tensor(going, device=tokens.device)]
                self._forward(tokens)
        return [
            (request.key, [self._completion(row) for row in request.rows]) for request in finished
        ]

    # --- internals ----------------------------------------------------------------------

    def _prefill(self, prompts: list[list[int]], samples: list[int]) -> _State:
        """Run the left-padded prompts once and repeat each one's cache for its samples."""
        device, pad = self.chat.device, self.chat.pad_id
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[i, width - len(prompt) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.chat.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
        )
        cache = out.past_key_values
        self._mergeable &= all(type(layer) is DynamicLayer for layer in cache.layers)
        logits = out.logits[:, -1].float()
        next_pos = positions[:, -1] + 1
        if any(n > 1 for n in samples):
            index = torch.arange(len(prompts), device=device).repeat_interleave(
                torch.tensor(samples, device=device)
            )
            cache.batch_select_indices(index)
            logits, next_pos, mask = logits[index], next_pos[index], mask[index]
        return _State(cache, mask, next_pos, logits)

    def _merge(self, old: _State, new: _State) -> _State:
        """Stack `new`'s rows under `old`'s, left-padding the narrower cache to the wider."""
        width = max(old.mask.shape[1], new.mask.shape[1])
        for a, b in zip(old.cache.layers, new.cache.layers, strict=True):
            a.keys = torch.cat([_pad_left(a.keys, width, 2), _pad_left(b.keys, width, 2)])
            a.values = torch.cat([_pad_left(a.values, width, 2), _pad_left(b.values, width, 2)])
        return _State(
            old.cache,
            torch.cat([_pad_left(old.mask, width, 1), _pad_left(new.mask, width, 1)]),
            torch.cat([old.next_pos, new.next_pos]),
            torch.cat([old.logits, new.logits]),
        )

    def _keep(self, going: list[int]) -> None:
        """Drop finished rows, then the leading columns no remaining row uses."""
        state = self._state
        assert state is not None
        index = torch.tensor(going, device=state.mask.device)
        state.cache.batch_select_indices(index)
        state.mask, state.next_pos = state.mask[index], state.next_pos[index]
        self._rows = [self._rows[k] for k in going]
        if self._mergeable:
            used = state.mask.any(dim=0).nonzero()
            lead = int(used[0]) if len(used) else 0
            if lead:
                for layer in state.cache.layers:
                    layer.keys = layer.keys[:, :, lead:]
                    layer.values = layer.values[:, :, lead:]
                state.mask = state.mask[:, lead:]

    def _forward(self, tokens: torch.Tensor) -> None:
        """Feed each row its chosen token; keep the logits for the next choice."""
        state = self._state
        assert state is not None
        state.mask = torch.cat([state.mask, state.mask.new_ones((len(tokens), 1))], dim=1)
        out = self.chat.model(
            input_ids=tokens[:, None],
            attention_mask=state.mask,
            position_ids=state.next_pos[:, None],
            past_key_values=state.cache,
            use_cache=True,
        )
        state.logits = out.logits[:, -1].float()
        state.next_pos = state.next_pos + 1

    def _finish_reason(self, row: _Row) -> str | None:
        sampling = row.request.sampling
        if row.token_ids[-1] in self.chat.eos_ids:
            return "stop"
        if sampling.stop:
            # A stop string that just appeared lies within the last few tokens.
            window = row.token_ids[-row.request.stop_window :]
            tail = self.chat.tokenizer.decode(window, skip_special_tokens=True)
            if any(stop in tail for stop in sampling.stop):
                return "stop"
        if len(row.token_ids) >= sampling.max_new_tokens:
            return "length"
        return None

    def _completion(self, row: _Row) -> Completion:
        sampling = row.request.sampling
        text = self.chat.tokenizer.decode(row.token_ids, skip_special_tokens=True)
        cuts = [text.find(stop) for stop in sampling.stop if stop in text]
        if cuts:
            text = text[: min(cuts)]
        return Completion(
            text=text,
            token_ids=row.token_ids,
            logprobs=row.logprobs if sampling.logprobs else None,
            finish_reason=row.finish_reason or "length",
            prompt_tokens=row.prompt_tokens,
            entropies=row.entropies if sampling.logprobs else None,
        )


def _pad_left(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    """`tensor` with zeros prepended along `dim` up to `width` (itself when already that wide)."""
    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    pad = [0, 0] * (tensor.dim() - 1 - dim) + [missing, 0]
    return F.pad(tensor, pad)
