"""The Megatron backend's parallel primitives against their single-process definitions.

Pure checks (micro-batch packing, the CP split and its inverse, load balance) run here; the
collective ones (vocabulary-parallel log-probs and entropy, cp_unshard, the global token count,
context-parallel attention) run together in ONE pair of spawned gloo processes, which save
their results for the tests below to compare with single-process references.
"""

from __future__ import annotations

import itertools
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor

from qwenlong.core.errors import ConfigError
from qwenlong.rl.entropy import token_logprobs_and_entropy
from qwenlong.rl.megatron.cp_attention import cp_causal_attention
from qwenlong.rl.megatron.packing import (
    cp_shard,
    cp_unshard,
    global_token_count,
)
from qwenlong.rl.megatron.vocab_parallel import vocab_parallel_logprobs_and_entropy
from qwenlong.rl.micro_batches import plan_packed

torch.set_num_threads(1)

WORLD = 2
TEMPERATURE = 0.7
VOCAB, REAL_VOCAB = 52, 50
"""Two ranks of 26 columns; with vocab_size 50, rank 1's last two are Megatron-style padding."""
ATTENTION_LENGTHS = [7, 12]
HEADS, KV_HEADS, DIM = 4, 2, 8


# --------------------------------------------------------------------------- inputs


def _vocab_inputs() -> tuple[Tensor, Tensor, Tensor]:
    """(logits [37, 52], targets [37], weights [37]); two masked (-inf) entries, one per rank."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(37, VOCAB, generator=gen) * 2
    logits[0, 3] = -torch.inf
    logits[1, 40] = -torch.inf
    targets = torch.randint(0, REAL_VOCAB, (37,), generator=gen)
    return logits, targets, torch.randn(37, generator=gen)


def _packed(lengths: list[int]) -> tuple[Tensor, Tensor]:
    """(distinct token ids [N], cu_seqlens [S+1])."""
    bounds = torch.tensor([0, *lengths]).cumsum(0)
    return torch.arange(int(bounds[-1])) + 100, bounds


def _attention_inputs() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(q [19, 4, 8], k [19, 2, 8], v [19, 2, 8], output weights [19, 4, 8])."""
    gen = torch.Generator().manual_seed(1)
    tokens = sum(ATTENTION_LENGTHS)
    q = torch.randn(tokens, HEADS, DIM, generator=gen)
    k = torch.randn(tokens, KV_HEADS, DIM, generator=gen)
    v = torch.randn(tokens, KV_HEADS, DIM, generator=gen)
    return q, k, v, torch.randn(tokens, HEADS, DIM, generator=gen)


# --------------------------------------------------------------------------- the spawned run


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        results = {**_vocab_checks(rank), **_cp_checks(rank), **_attention_checks(rank)}
        if rank == 0:
            torch.save(results, Path(out) / "results.pt")
    finally:
        dist.destroy_process_group()


def _gather(local: Tensor, dim: int = 0) -> Tensor:
    parts = [torch.empty_like(local) for _ in range(WORLD)]
    dist.all_gather(parts, local.contiguous())
    return torch.cat(parts, dim=dim)


def _vocab_checks(rank: int) -> dict[str, Tensor]:
    logits, targets, weights = _vocab_inputs()
    width = VOCAB // WORLD
    results = {}
    for name, vocab_size in (("full", None), ("padded", REAL_VOCAB)):
        local = logits[:, rank * width : (rank + 1) * width].clone().requires_grad_()
        logprobs, entropy = vocab_parallel_logprobs_and_entropy(
            local, targets, TEMPERATURE, None, rank * width, chunk_size=8, vocab_size=vocab_size
        )
        (logprobs * weights).sum().backward()
        results[f"{name}_logprobs"] = _gather(logprobs.detach().unsqueeze(0))
        results[f"{name}_entropy"] = _gather(entropy.unsqueeze(0))
        results[f"{name}_grad"] = _gather(local.grad, dim=1)
        results[f"{name}_entropy_grad"] = torch.tensor(entropy.requires_grad)
    return results


def _cp_checks(rank: int) -> dict[str, Any]:
    ids, bounds = _packed([7, 12, 5])
    gen = torch.Generator().manual_seed(2)
    loss_mask = torch.rand(ids.numel(), generator=gen) < 0.6
    per_token = torch.randn(ids.numel(), generator=gen)
    shard = cp_shard(ids, bounds, WORLD, rank, loss_mask=loss_mask, pad_id=0)
    count = global_token_count(int(shard.loss_mask.sum()), None)
    contribution = (shard.take(per_token) * shard.loss_mask).sum() / count
    dist.all_reduce(contribution)
    return {
        "unshard_ids": cp_unshard(shard.input_ids, shard, None),
        "unshard_pairs": cp_unshard(torch.stack([shard.positions, shard.source], 1), shard, None),
        "local_tokens": _gather(torch.tensor([shard.source.numel()])),
        "local_loss_tokens": _gather(shard.loss_mask.sum().view(1)),
        "global_tokens": count,
        "cp_loss": contribution,
    }


def _attention_checks(rank: int) -> dict[str, Tensor]:
    ids, bounds = _packed(ATTENTION_LENGTHS)
    shard = cp_shard(ids, bounds, WORLD, rank)
    q, k, v, weights = (shard.take(x) for x in _attention_inputs())
    q, k, v = (x.requires_grad_() for x in (q, k, v))
    out = cp_causal_attention(q, k, v, shard.positions, shard.sequence_index, None)
    (out * weights).sum().backward()
    tensors = {"out": out.detach(), "q_grad": q.grad, "k_grad": k.grad, "v_grad": v.grad}
    return {f"attention_{name}": cp_unshard(x, shard, None) for name, x in tensors.items()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def spawned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Results of the two-process gloo run, shared by every test that needs collectives."""
    out = tmp_path_factory.mktemp("gloo")
    # Spawned children import this module by pytest's name for it (rootdir-relative, e.g.
    # packages.rl.tests.test_...), so the directory that name starts from must be on their path.
    root = str(Path(__file__).parents[len(__name__.split(".")) - 1])
    sys.path.insert(0, root)
    try:
        mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD)
    finally:
        sys.path.remove(root)
    return torch.load(out / "results.pt")


# --------------------------------------------------------------------------- vocabulary parallel


def _autograd_reference(logits: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
    """Gradient of sum(log p(target) * weights) by plain autograd on the full logits."""
    full = logits.clone().requires_grad_()
    log_p = torch.log_softmax(full / TEMPERATURE, dim=-1)
    (log_p.gather(1, targets.unsqueeze(1)).squeeze(1) * weights).sum().backward()
    assert full.grad is not None
    return full.grad


@pytest.mark.parametrize("case", ["full", "padded"])
def test_vocab_parallel_matches_single_process(spawned: dict[str, Any], case: str) -> None:
    logits, targets, _ = _vocab_inputs()
    columns = VOCAB if case == "full" else REAL_VOCAB
    want_logprobs, want_entropy = token_logprobs_and_entropy(
        logits[:, :columns], targets, TEMPERATURE, chunk_size=5
    )
    logprobs, entropy = spawned[f"{case}_logprobs"], spawned[f"{case}_entropy"]
    # Both ranks hold the same values, and they are the single-process ones.
    assert torch.equal(logprobs[0], logprobs[1]) and torch.equal(entropy[0], entropy[1])
    # 1e-6, and 1e-6 relative: log-probs reach -20 here, where float32's spacing is 2e-6.
    torch.testing.assert_close(logprobs[0], want_logprobs, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(entropy[0], want_entropy, atol=1e-6, rtol=1e-6)
    assert not bool(spawned[f"{case}_entropy_grad"])


@pytest.mark.parametrize("case", ["full", "padded"])
def test_vocab_parallel_gradient_matches_autograd(spawned: dict[str, Any], case: str) -> None:
    logits, targets, weights = _vocab_inputs()
    columns = VOCAB if case == "full" else REAL_VOCAB
    grad = spawned[f"{case}_grad"]
    want = _autograd_reference(logits[:, :columns], targets, weights)
    torch.testing.assert_close(grad[:, :columns], want, atol=1e-6, rtol=0)
    # Padding columns of the vocabulary are no tokens: no probability, no gradient.
    assert torch.equal(grad[:, columns:], torch.zeros(37, VOCAB - columns))
    assert float(grad[0, 3]) == 0.0  # a masked (-inf) logit


# --------------------------------------------------------------------------- thd micro-batches


def test_plan_packed_first_fit_decreasing_by_hand() -> None:
    # Longest first: 12 -> [5]; 9 -> new [1]; 7 -> new [3]; 5 fits with 7 (12); 3 fits with 9;
    # 2 fits nowhere -> new [4].
    lengths = [5, 9, 3, 7, 2, 12]
    assert plan_packed(lengths, 12) == [[5], [1, 2], [3, 0], [4]]
    assert plan_packed(lengths, 100) == [[5, 1, 3, 0, 2, 4]]


def test_plan_packed_long_sequence_alone_and_ties_by_index() -> None:
    assert plan_packed([3, 20, 4], 10) == [[1], [2, 0]]
    assert plan_packed([4, 4, 4], 8) == [[0, 1], [2]]
    assert plan_packed([], 8) == []
    with pytest.raises(ConfigError, match="max_tokens"):
        plan_packed([1], 0)


# --------------------------------------------------------------------------- context parallel


def test_cp_shard_layout_by_hand() -> None:
    # Length 7 at CP=2: padded to 8, chunks of 2; rank 0 holds chunks 0 and 3, rank 1 chunks 1, 2.
    ids, bounds = _packed([7])
    first, second = (cp_shard(ids, bounds, 2, rank, pad_id=-5) for rank in (0, 1))
    assert first.positions.tolist() == [0, 1, 6, 7]
    assert first.source.tolist() == [0, 1, 6, -1]
    assert first.input_ids.tolist() == [100, 101, 106, -5]
    assert first.loss_mask.tolist() == [True, True, True, False]
    assert second.positions.tolist() == [2, 3, 4, 5]
    assert second.input_ids.tolist() == [102, 103, 104, 105]
    assert first.cu_seqlens.tolist() == [0, 4] and first.cu_seqlens_padded.tolist() == [0, 8]
    assert cp_shard(ids, None, 2, 1).source.tolist() == second.source.tolist()


@pytest.mark.parametrize("cp_size", [1, 2, 3, 4])
def test_cp_shard_round_trip(cp_size: int) -> None:
    for lengths in ([7, 12], [1], [5, 8, 3, 16], [0, 9, 2], [13]):
        ids, bounds = _packed(lengths)
        values = torch.randn(ids.numel(), 3)
        shards = [cp_shard(ids, bounds, cp_size, rank) for rank in range(cp_size)]
        sizes = {shard.source.numel() for shard in shards}
        assert len(sizes) == 1  # every rank holds the same number of tokens
        index = shards[0].unshard_index
        assert torch.equal(torch.cat([s.input_ids for s in shards])[index], ids)
        assert torch.equal(torch.cat([s.take(values) for s in shards])[index], values)
        chunks = 2 * cp_size if cp_size > 1 else 1
        starts = bounds[:-1]
        for shard in shards:
            real = ~shard.is_padding
            # Positions count within each sequence; padding sits past the sequence's end.
            want = shard.source[real] - starts[shard.sequence_index[real]]
            assert torch.equal(shard.positions[real], want)
            lengths_t = torch.tensor(lengths)[shard.sequence_index]
            assert torch.equal(shard.is_padding, shard.positions >= lengths_t)
            assert not shard.loss_mask[shard.is_padding].any()
            assert not shard.take(torch.ones(ids.numel(), dtype=torch.bool), False)[~real].any()
        padded = shards[0].cu_seqlens_padded.diff()
        assert (padded % chunks == 0).all() and (padded - torch.tensor(lengths) < chunks).all()


def _causal_work(positions: Tensor) -> int:
    """Query-key pairs of causal attention for these queries (key positions 0..p)."""
    return int((positions + 1).sum())


@pytest.mark.parametrize("cp_size", [2, 3, 4])
def test_cp_shard_balances_causal_work(cp_size: int) -> None:
    for length in (1, 7, 12, 33, 64, 250):
        ids, bounds = _packed([length])
        shards = [cp_shard(ids, bounds, cp_size, rank) for rank in range(cp_size)]
        padded = int(shards[0].cu_seqlens_padded[-1])
        chunk = padded // (2 * cp_size)
        # What the kernel computes (padding included) is identical on every rank...
        assert len({_causal_work(s.positions) for s in shards}) == 1
        # ...and the real tokens' work differs by at most one chunk's (chunk queries x keys).
        real = [_causal_work(s.positions[~s.is_padding]) for s in shards]
        assert max(real) - min(real) <= chunk * padded
    # A plain split in CP pieces would give the last rank 2CP-1 times the first one's work.
    balanced = [_causal_work(cp_shard(*_packed([64]), cp_size, r).positions) for r in (0, 1)]
    plain = [_causal_work(piece) for piece in torch.arange(64).chunk(cp_size)]
    assert balanced[0] == balanced[1] and plain[-1] > (2 * cp_size - 2) * plain[0]


def test_cp_shard_rejects_bad_input() -> None:
    ids, bounds = _packed([4])
    with pytest.raises(ValueError, match="cp_rank"):
        cp_shard(ids, bounds, 2, 2)
    with pytest.raises(ValueError, match="cu_seqlens"):
        cp_shard(ids, torch.tensor([0, 3]), 2, 0)


def test_cp_unshard_over_gloo_restores_packed_order(spawned: dict[str, Any]) -> None:
    ids, _ = _packed([7, 12, 5])
    assert torch.equal(spawned["unshard_ids"], ids)
    positions = torch.cat([torch.arange(n) for n in (7, 12, 5)])
    assert torch.equal(spawned["unshard_pairs"], torch.stack([positions, torch.arange(24)], 1))
    assert spawned["local_tokens"].tolist() == [14, 14]  # (8 + 12 + 8) / 2 each


def test_global_token_count_sums_cp_shards(spawned: dict[str, Any]) -> None:
    gen = torch.Generator().manual_seed(2)
    loss_mask = torch.rand(24, generator=gen) < 0.6
    per_token = torch.randn(24, generator=gen)
    # Each CP rank holds part of every sequence: the count is the sum, i.e. the whole batch's.
    assert int(spawned["local_loss_tokens"].sum()) == spawned["global_tokens"]
    assert spawned["global_tokens"] == int(loss_mask.sum())
    assert global_token_count(5, None) == 5  # no process group: the local count
    # So the CP ranks' loss contributions add up to the single-process token-mean loss.
    want = per_token[loss_mask].sum() / loss_mask.sum()
    torch.testing.assert_close(spawned["cp_loss"], want, atol=1e-6, rtol=0)


def _full_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Causal attention over each whole sequence, one process."""
    outs = []
    bounds = [0, *torch.tensor(ATTENTION_LENGTHS).cumsum(0).tolist()]
    for start, end in itertools.pairwise(bounds):
        keys = k[start:end].repeat_interleave(HEADS // KV_HEADS, dim=1).transpose(0, 1)
        values = v[start:end].repeat_interleave(HEADS // KV_HEADS, dim=1).transpose(0, 1)
        out = torch.nn.functional.scaled_dot_product_attention(
            q[start:end].transpose(0, 1), keys, values, is_causal=True
        )
        outs.append(out.transpose(0, 1))
    return torch.cat(outs)


def test_cp_attention_matches_full_sequence_attention(spawned: dict[str, Any]) -> None:
    q, k, v, weights = _attention_inputs()
    q, k, v = (x.requires_grad_() for x in (q, k, v))
    out = _full_attention(q, k, v)
    (out * weights).sum().backward()
    want = {"out": out.detach(), "q_grad": q.grad, "k_grad": k.grad, "v_grad": v.grad}
    for name, expected in want.items():
        torch.testing.assert_close(spawned[f"attention_{name}"], expected, atol=1e-5, rtol=1e-5)
