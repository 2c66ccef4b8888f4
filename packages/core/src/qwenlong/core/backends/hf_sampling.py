"""Per-row token choice for the hf backend: random streams keyed per sample, not per batch.

Each sample draws its uniform numbers from its own counter-based stream keyed by (seed, prompt,
sample index), and temperature and top-p are applied row by row. A row's token therefore
depends only on its own logits, settings and stream position, never on which other requests
share the batch, which is what lets requests with different seeds and settings decode together
(up to the last-bit float differences a different batch shape can cause in the logits).
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import numpy as np
import torch


def row_seed(base_seed: int, prompt: list[int], sample_index: int) -> int:
    """A 64-bit stream key from the request's seed, the prompt tokens and the sample index."""
    digest = hashlib.sha256()
    digest.update(int(base_seed).to_bytes(16, "little", signed=True))
    digest.update(sample_index.to_bytes(8, "little"))
    digest.update(np.asarray(prompt, dtype=np.int64).tobytes())
    return int.from_bytes(digest.digest()[:8], "little")


def uniforms(seeds: np.ndarray, step: int | np.ndarray) -> torch.Tensor:
    """Uniform [0, 1) numbers: for each row, the `step`-th number of its splitmix64 stream.

    `step` is one position for every row, or one per row (rows that joined a running batch
    are at different positions). Counter-based: the number depends only on (seed, step), not
    on how many rows share the batch or in which order they were drawn.
    """
    counters = np.asarray(step, dtype=np.uint64) + np.uint64(1)
    with np.errstate(over="ignore"):
        z = seeds + np.uint64(0x9E3779B97F4A7C15) * counters
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return torch.from_numpy((z >> np.uint64(11)).astype(np.float64) * 2.0**-53)


class Choice(NamedTuple):
    """One sampled token per row, with what the RL trainer reads of its distribution."""

    tokens: torch.Tensor
    """[rows] int64 token ids."""
    logprobs: torch.Tensor
    """[rows] log-prob of each token under log_softmax(logits / T), untruncated."""
    entropy: torch.Tensor
    """[rows] full-vocabulary entropy of that same distribution (nats)."""


def choose_tokens(
    logits: torch.Tensor,
    temperature: float | torch.Tensor,
    top_p: float | torch.Tensor,
    uniform: torch.Tensor,
) -> Choice:
    """Pick one token per row; return it with its log-prob under log_softmax(logits / T) and
    the entropy of that distribution.

    `temperature` and `top_p` are one value for all rows or one per row. Greedy rows (T = 0)
    take the argmax and report the T = 1 log-prob and entropy. Other rows sort tokens by
    probability, keep the smallest prefix whose mass reaches their `top_p` (at least one token),
    and map their uniform number through the kept tokens' cumulative mass (inverse-CDF
    sampling). The reported log-prob and entropy are of the full, untruncated distribution:
    what the policy recomputes (qwenlong.rl.entropy), which has no truncation either.
    """
    rows = logits.shape[0]
    temperature = torch.as_tensor(temperature, dtype=logits.dtype, device=logits.device)
    top_p = torch.as_tensor(top_p, dtype=logits.dtype, device=logits.device)
    temperature, top_p = temperature.expand(rows), top_p.expand(rows)
    greedy = temperature == 0
    # Dividing by exactly 1 leaves a greedy row's logits bit for bit as they are.
    scaled = logits / torch.where(greedy, torch.ones_like(temperature), temperature)[:, None]
    logprobs = torch.log_softmax(scaled, dim=-1)
    probs = logprobs.exp()
    # Masked vocabulary entries (-inf) have p = 0; clamping keeps 0 * log p at 0, not NaN.
    entropy = -(probs * logprobs.clamp(min=torch.finfo(logprobs.dtype).min)).sum(dim=-1)
    tokens = logits.argmax(dim=-1)
    if not bool(greedy.all()):
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
        kept = torch.where(mass_before < top_p[:, None], sorted_probs, 0.0)
        cdf = kept.cumsum(dim=-1)
        target = uniform.to(cdf.device, cdf.dtype)[:, None] * cdf[:, -1:]
        last_kept = (kept > 0).sum(dim=-1, keepdim=True).clamp(min=1) - 1
        position = torch.searchsorted(cdf, target, right=True).clamp(max=last_kept)
        tokens = torch.where(greedy, tokens, order.gather(-1, position)[:, 0])
    return Choice(tokens, logprobs.gather(-1, tokens[:, None])[:, 0], entropy)
