"""The two row formats a Megatron rank runs a packed micro-batch in: whatever the format and
context-parallel size, the ranks together predict exactly the batch's next tokens, each once.

The THD format (Transformer Engine's, GPU) cannot run its attention on a CPU; its bookkeeping,
which decides which token each logit scores, is checked here against the local format's, which
the CPU policy tests check against the torch policy."""

from __future__ import annotations

import pytest
import torch

from qwenlong.rl.interfaces import PackedBatch
from qwenlong.rl.megatron.row_formats import ROW_FORMATS


def _batch() -> PackedBatch:
    generator = torch.Generator().manual_seed(3)
    lengths = [(3, 4), (1, 1), (5, 6), (2, 0)]
    prompts = [torch.randint(5, 90, (p,), generator=generator).tolist() for p, _ in lengths]
    responses = [torch.randint(5, 90, (r,), generator=generator).tolist() for _, r in lengths]
    return PackedBatch.from_sequences(prompts, responses)


def _predictions(fmt: str, batch: PackedBatch, cp: int, extra: int = 0) -> list[tuple[int, int]]:
    """(position in the batch, predicted token id) over all CP ranks, sorted."""
    row_format = ROW_FORMATS[fmt]
    length = row_format.tokens(batch, cp) + extra
    pairs = []
    for rank in range(cp):
        row = row_format.build(batch, length, cp, rank)
        at = row.predicts.nonzero().squeeze(1)
        pairs += list(zip(row.local[at].tolist(), row.targets[at].tolist(), strict=True))
    return sorted(pairs)


def _expected(batch: PackedBatch) -> list[tuple[int, int]]:
    seq = batch.sequence_index()
    ids = batch.input_ids
    return [(i, int(ids[i + 1])) for i in range(batch.num_tokens - 1) if seq[i] == seq[i + 1]]


@pytest.mark.parametrize("fmt", ["local", "transformer_engine"])
@pytest.mark.parametrize("cp", [1, 2, 3])
def test_every_next_token_is_predicted_once(fmt: str, cp: int) -> None:
    batch = _batch()
    assert _predictions(fmt, batch, cp) == _expected(batch)
    chunks = 2 * cp if cp > 1 else 1  # a longer row (the all-gather dispatcher's) adds padding only
    assert _predictions(fmt, batch, cp, extra=2 * chunks) == _expected(batch)


def test_thd_rows_restart_positions_per_sequence_and_bound_the_padded_sequences() -> None:
    batch, cp = _batch(), 2
    row_format = ROW_FORMATS["transformer_engine"]
    length = row_format.tokens(batch, cp)
    assert length == 8 + 4 + 12 + 4  # each sequence padded to a multiple of 2 x CP = 4
    rows = [row_format.build(batch, length, cp, rank) for rank in range(cp)]
    assert {row.ids.shape[1] for row in rows} == {length // cp}  # equal shares
    bounds = rows[0].packed.cu_seqlens_q
    assert bounds.tolist() == [0, 8, 12, 24, 28]
    assert bounds.dtype == torch.int32 and rows[0].packed.max_seqlen_q == 12
    # rank 0 holds chunk 0 and chunk 3 of the first sequence (chunks of 2): positions 0,1,6,7
    assert rows[0].positions[0, :4].tolist() == [0, 1, 6, 7]
    assert rows[1].positions[0, :4].tolist() == [2, 3, 4, 5]
    assert rows[0].mask is None


def test_a_short_thd_row_is_refused() -> None:
    batch = _batch()
    row_format = ROW_FORMATS["transformer_engine"]
    with pytest.raises(ValueError, match="THD row"):
        row_format.build(batch, row_format.tokens(batch, 2) - 4, 2, 0)
