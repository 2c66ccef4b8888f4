"""The `hf` backend: chat generation with transformers on CPU or GPU.

This is the backend of every CPU test and of RL rollouts on the torch path, so its log-probs
must be exactly what the policy recomputes: for each returned token, log_softmax(logits / T) of
the full vocabulary at the sampled id (T = 1 for greedy). top-p truncation changes which token is
drawn but is not reflected in the reported log-prob, because the policy's recomputation has no
truncation either.

Decoding is a KV-cached loop written here rather than `model.generate`, so that every step is
visible: the prompt of each conversation is prefilled once and its cache repeated for the `n`
samples, rows that finish leave the batch, and each row draws its uniform numbers from its own
counter-based stream keyed by (seed, prompt, sample index). Same seed and same conversation thus
give the same completion whatever else is in the batch or how conversations are chunked (up to
the last-bit float differences a different batch shape can cause in the logits).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from qwenlong.core.backends.config import BackendConfig
from qwenlong.core.errors import BackendError, first_line
from qwenlong.core.interfaces import SamplingParams
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

        path = Path(model)
        if not (path / "config.json").is_file():
            raise BackendError(f"no model directory at {path} (config.json not found)")
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
                self.tokenizer = AutoTokenizer.from_pretrained(path)
                self.model = AutoModelForCausalLM.from_pretrained(path, dtype=_DTYPES[dtype])
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

        Conversations are sorted by prompt length and decoded `batch_size` at a time (left
        padded), which keeps padding small without changing any output. `token_ids` end with
        the eos token when one was generated, or with the token that completed a stop string
        (the text is cut before the stop string); `logprobs` are filled when `sampling.logprobs`.
        """
        if self.model is None:
            raise BackendError(f"{self.name}: generate called after close")
        _check_sampling(sampling)
        prompts = [
            self.encode_prompt(conversation, i) for i, conversation in enumerate(conversations)
        ]
        base_seed = sampling.seed if sampling.seed is not None else secrets.randbits(63)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[list[Completion]] = [[] for _ in prompts]
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            outputs = self._generate_chunk([prompts[i] for i in chunk], sampling, base_seed)
            for i, completions in zip(chunk, outputs, strict=True):
                results[i] = completions
        return results

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
        from jinja2 import TemplateError

        try:
            text = self.tokenizer.apply_chat_template(
                list(conversation), add_generation_prompt=True, tokenize=False
            )
        except (TemplateError, KeyError, TypeError) as err:
            raise BackendError(f"conversation {index}: chat template failed: {err}") from None
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return ids

    def _generate_chunk(
        self, prompts: list[list[int]], sampling: SamplingParams, base_seed: int
    ) -> list[list[Completion]]:
        n, limit = sampling.n, sampling.max_new_tokens
        for prompt in prompts:
            if self.max_positions is not None and len(prompt) + limit > self.max_positions:
                raise BackendError(
                    f"{self.name}: prompt of {len(prompt)} tokens + max_new_tokens {limit} "
                    f"exceeds the model's {self.max_positions} positions"
                )
        rows = [
            _Row(len(prompt), _row_seed(base_seed, prompt, j))
            for prompt in prompts
            for j in range(n)
        ]
        seeds = np.array([row.seed for row in rows], dtype=np.uint64)
        active = np.arange(len(rows))
        stop_window = 4 * max((len(s) for s in sampling.stop), default=0) + 4
        with torch.inference_mode():
            logits, cache, mask, next_pos = self._prefill(prompts, n)
            for step in range(limit):
                tokens, logprobs = _choose_tokens(
                    logits, sampling.temperature, sampling.top_p, _uniforms(seeds[active], step)
                )
                still: list[int] = []
                for k, (token, logprob) in enumerate(
                    zip(tokens.tolist(), logprobs.tolist(), strict=True)
                ):
                    row = rows[active[k]]
                    row.token_ids.append(token)
                    row.logprobs.append(logprob)
                    row.finish_reason = self._finish_reason(row, sampling, stop_window)
                    if row.finish_reason is None:
                        still.append(k)
                if not still:
                    break
                if len(still) < len(active):
                    keep = torch.tensor(still, device=self.device)
                    cache.batch_select_indices(keep)
                    mask, next_pos, tokens = mask[keep], next_pos[keep], tokens[keep]
                    active = active[still]
                mask = torch.cat([mask, mask.new_ones((len(still), 1))], dim=1)
                out = self.model(
                    input_ids=tokens[:, None],
                    attention_mask=mask,
                    position_ids=next_pos[:, None],
                    past_key_values=cache,
                    use_cache=True,
                )
                logits = out.logits[:, -1].float()
                next_pos = next_pos + 1
        completions = [self._completion(row, sampling) for row in rows]
        return [completions[i * n : (i + 1) * n] for i in range(len(prompts))]

    def _prefill(
        self, prompts: list[list[int]], n: int
    ) -> tuple[torch.Tensor, object, torch.Tensor, torch.Tensor]:
        """Run the left-padded prompts once and repeat logits and cache for the n samples."""
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[i, width - len(prompt) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
        )
        cache = out.past_key_values
        if n > 1:
            cache.batch_repeat_interleave(n)
        logits = out.logits[:, -1].float().repeat_interleave(n, dim=0)
        next_pos = positions[:, -1].repeat_interleave(n) + 1
        return logits, cache, mask.repeat_interleave(n, dim=0), next_pos

    def _finish_reason(self, row: _Row, sampling: SamplingParams, stop_window: int) -> str | None:
        if row.token_ids[-1] in self.eos_ids:
            return "stop"
        if sampling.stop:
            # A stop string that just appeared lies within the last few tokens: each character
            # spans at most 4 byte-level tokens.
            tail = self.tokenizer.decode(row.token_ids[-stop_window:], skip_special_tokens=True)
            if any(stop in tail for stop in sampling.stop):
                return "stop"
        if len(row.token_ids) >= sampling.max_new_tokens:
            return "length"
        return None

    def _completion(self, row: _Row, sampling: SamplingParams) -> Completion:
        text = self.tokenizer.decode(row.token_ids, skip_special_tokens=True)
        cuts = [text.find(stop) for stop in sampling.stop if stop in text]
        if cuts:
            text = text[: min(cuts)]
        return Completion(
            text=text,
            token_ids=row.token_ids,
            logprobs=row.logprobs if sampling.logprobs else None,
            finish_reason=row.finish_reason or "length",
            prompt_tokens=row.prompt_tokens,
        )


@dataclass
class _Row:
    """One sample being decoded."""

    prompt_tokens: int
    seed: int
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str | None = None


def _check_sampling(sampling: SamplingParams) -> None:
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


def _row_seed(base_seed: int, prompt: list[int], sample_index: int) -> int:
    """A 64-bit stream key from the call's seed, the prompt tokens and the sample index."""
    digest = hashlib.sha256()
    digest.update(int(base_seed).to_bytes(16, "little", signed=True))
    digest.update(sample_index.to_bytes(8, "little"))
    digest.update(np.asarray(prompt, dtype=np.int64).tobytes())
    return int.from_bytes(digest.digest()[:8], "little")


def _uniforms(seeds: np.ndarray, step: int) -> torch.Tensor:
    """Uniform [0, 1) numbers, the `step`-th of each row's splitmix64 stream.

    Counter-based: the number depends only on (seed, step), not on how many rows share the
    batch or in which order they were drawn, which makes sampling batch-invariant.
    """
    with np.errstate(over="ignore"):
        z = seeds + np.uint64(0x9E3779B97F4A7C15) * np.uint64(step + 1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return torch.from_numpy((z >> np.uint64(11)).astype(np.float64) * 2.0**-53)


def _choose_tokens(
    logits: torch.Tensor, temperature: float, top_p: float, uniforms: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick one token per row and return it with its log-prob under log_softmax(logits / T).

    Greedy (T = 0) takes the argmax and reports the T = 1 log-prob. Otherwise tokens are sorted
    by probability, the smallest prefix whose mass reaches `top_p` is kept (at least one token),
    and the row's uniform number is mapped through the kept tokens' cumulative mass (inverse-CDF
    sampling). The reported log-prob is from the full, untruncated distribution.
    """
    if temperature == 0:
        logprobs = torch.log_softmax(logits, dim=-1)
        tokens = logits.argmax(dim=-1)
        return tokens, logprobs.gather(-1, tokens[:, None])[:, 0]
    logprobs = torch.log_softmax(logits / temperature, dim=-1)
    sorted_probs, order = logprobs.exp().sort(dim=-1, descending=True)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    kept = torch.where(mass_before < top_p, sorted_probs, torch.zeros_like(sorted_probs))
    cdf = kept.cumsum(dim=-1)
    target = uniforms.to(cdf.device, cdf.dtype)[:, None] * cdf[:, -1:]
    last_kept = (kept > 0).sum(dim=-1, keepdim=True).clamp(min=1) - 1
    position = torch.searchsorted(cdf, target, right=True).clamp(max=last_kept)
    tokens = order.gather(-1, position)[:, 0]
    return tokens, logprobs.gather(-1, tokens[:, None])[:, 0]
