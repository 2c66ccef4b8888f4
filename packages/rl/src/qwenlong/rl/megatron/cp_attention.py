"""A CPU stand-in for Transformer Engine's context-parallel attention, for tests only.

TE's THD context-parallel attention passes key/value chunks around the CP ring and needs CUDA.
To test what surrounds it on a CPU (the CP split of qwenlong.rl.megatron.packing, positions,
the global-token loss, gradients reaching every rank's q, k and v) this does the same
computation the slow, obvious way: all-gather every rank's keys, values, positions and sequence
ids, then attend each local query to the keys of its own sequence at positions <= its own. It
materialises [heads, local tokens, all tokens] scores, so it is for tests, never for training.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


def cp_causal_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    positions: Tensor,
    sequence_ids: Tensor,
    group: dist.ProcessGroup | None,
) -> Tensor:
    """Causal attention of this rank's queries over the whole CP group's keys: [n, heads, dim].

    `q` [n, heads, dim], `k` and `v` [n, kv_heads, dim] (grouped-query attention: heads a
    multiple of kv_heads, each kv head serving heads / kv_heads consecutive query heads);
    `positions` [n] and `sequence_ids` [n] say where each local token sits (a `CpShard`'s
    positions and sequence_index). Every rank holds the same n. Softmax scale 1 / sqrt(dim).
    Gradients reach the local q, k and v, including through the keys other ranks' queries used.
    """
    heads, kv_heads = q.shape[1], k.shape[1]
    if k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[2] != k.shape[2]:
        raise ValueError(f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} disagree")
    if heads % kv_heads:
        raise ValueError(f"{heads} query heads are not a multiple of {kv_heads} kv heads")
    all_k = _AllGatherTokens.apply(k, group)
    all_v = _AllGatherTokens.apply(v, group)
    key_positions = _all_gather(positions, group)
    key_sequences = _all_gather(sequence_ids, group)
    repeat = heads // kv_heads
    all_k = all_k.repeat_interleave(repeat, dim=1)
    all_v = all_v.repeat_interleave(repeat, dim=1)
    scores = torch.einsum("qhd,khd->hqk", q, all_k) / math.sqrt(q.shape[2])
    visible = (sequence_ids.unsqueeze(1) == key_sequences.unsqueeze(0)) & (
        key_positions.unsqueeze(0) <= positions.unsqueeze(1)
    )
    scores = scores.masked_fill(~visible, -torch.inf)
    return torch.einsum("hqk,khd->qhd", scores.softmax(dim=-1), all_v)


def _all_gather(local: Tensor, group: dist.ProcessGroup | None) -> Tensor:
    """Every rank's equal-sized `local`, concatenated along dim 0 in rank order."""
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, local.contiguous(), group=group)
    return torch.cat(parts)


class _AllGatherTokens(torch.autograd.Function):
    """All-gather along tokens whose backward returns this rank's slice of the SUMMED gradient.

    Each rank's gathered copy receives gradient only from its own queries, so the gradient of
    rank r's tokens is the sum over ranks of slice r of their gradients: a reduce-scatter. Gloo
    has no reduce-scatter, so this all-reduces and slices (CP times the traffic; tests only).
    """

    @staticmethod
    def forward(ctx: Any, local: Tensor, group: dist.ProcessGroup | None) -> Tensor:
        ctx.group = group
        ctx.rows = local.shape[0]
        return _all_gather(local, group)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        total = grad.contiguous().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=ctx.group)
        start = dist.get_rank(ctx.group) * ctx.rows
        return total[start : start + ctx.rows], None


def gather_tokens(local: Tensor, group: dist.ProcessGroup | None) -> Tensor:
    """Every rank's `local` (equal sizes) concatenated along dim 0 in rank order; the gradient
    of this rank's slice is summed over ranks (qwenlong's stand-in for TE's CP exchange)."""
    return _AllGatherTokens.apply(local, group)


def context_parallel_core_attention() -> type:
    """Megatron's local `DotProductAttention` with keys and values gathered over the
    context-parallel group first: a test-only (CPU) stand-in for Transformer Engine's
    context-parallel attention. The caller's `attention_mask` is [1, 1, local queries, all
    keys in gathered order] (True = blocked), so the causal and sequence structure of the
    load-balanced chunks is the mask's, not the module's."""
    import dataclasses

    from megatron.core import parallel_state
    from megatron.core.transformer.dot_product_attention import DotProductAttention

    class ContextParallelDotProductAttention(DotProductAttention):
        def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
            # Upstream refuses CP (only TE's attention exchanges keys); this one gathers them.
            local = dataclasses.replace(config, context_parallel_size=1)
            super().__init__(local, *args, **kwargs)
            self.config = config
            self.cp_group = parallel_state.get_context_parallel_group()

        def forward(self, query: Tensor, key: Tensor, value: Tensor, *args: Any, **kw: Any):
            key = gather_tokens(key, self.cp_group)
            value = gather_tokens(value, self.cp_group)
            return super().forward(query, key, value, *args, **kw)

    return ContextParallelDotProductAttention
