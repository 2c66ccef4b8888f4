"""The log-probs a step's training forward computed, put back together across ranks.

Strictly on-policy, the log-probs the loss differentiates are pi_old itself, the policy's
log-probs before the update: the trainer compares them with the engine's (the mismatch metrics,
qwenlong.rl.rollout_correction) when it took the entropies from the rollout and ran no pass of
its own (qwenlong.rl.rollout_stats). Each rank returns its share's in `StepStats.logprobs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from qwenlong.rl.batches import PackedBatch, StepStats


def with_share_logprobs(
    summed: StepStats, batch: PackedBatch, shares: Sequence[Sequence[int]], parts: Sequence
) -> StepStats:
    """`summed` (the ranks' figures added up) with the shares' log-probs put back in `batch`'s
    packed order, when every share's rank returned them; else `summed` as it is."""
    pieces = [part.logprobs for part in parts]
    if any(piece is None for piece in pieces):
        return summed
    logprobs = torch.full((batch.num_tokens,), float("nan"), dtype=torch.float32)
    for share, piece in zip(shares, pieces, strict=True):
        logprobs[batch.token_positions(share)] = piece
    return replace(summed, logprobs=logprobs)
