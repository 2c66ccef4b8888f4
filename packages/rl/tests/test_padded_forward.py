"""Unpacking into a right-padded micro-batch: hand-checked layout, and scoring that skips the
output head's unneeded columns without changing a value."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from qwenlong.rl.interfaces import PackedBatch
from qwenlong.rl.padded_forward import accepts_logits_to_keep, pad_micro_batch, score_micro_batch

torch.set_num_threads(1)
CPU = torch.device("cpu")

# Packed: sequence 0 = [5, 6, 7] at positions 0-2, sequence 1 = [8, 9] at positions 3-4.
BATCH = PackedBatch.from_sequences([[5], [8]], [[6, 7], [9]])


def test_padding_layout_and_targets_by_hand() -> None:
    micro = pad_micro_batch(BATCH, [0, 1], None, pad_id=0, device=CPU, head_subset=True)
    assert micro.input_ids.tolist() == [[5, 6, 7], [8, 9, 0]]
    assert micro.attention_mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    # Every token but each row's first is predicted, by the column before it.
    assert micro.targets.tolist() == [6, 7, 9]
    assert micro.rows.tolist() == [0, 0, 1]
    assert micro.slots.tolist() == [0, 1, 0]
    assert micro.positions.tolist() == [1, 2, 4]
    # The last column predicts nothing, so the output head runs on columns [0, 1] only.
    assert micro.logits_to_keep is not None and micro.logits_to_keep.tolist() == [0, 1]


def test_wanted_positions_select_targets_and_head_columns() -> None:
    wanted = torch.tensor([False, False, True, False, True])  # token 7 and token 9
    micro = pad_micro_batch(BATCH, [1, 0], wanted, pad_id=0, device=CPU, head_subset=True)
    assert micro.input_ids.tolist() == [[8, 9, 0], [5, 6, 7]]
    assert micro.targets.tolist() == [9, 7]
    assert micro.positions.tolist() == [4, 2]
    assert micro.logits_to_keep.tolist() == [0, 1]
    assert micro.slots.tolist() == [0, 1]
    plain = pad_micro_batch(BATCH, [1, 0], wanted, pad_id=0, device=CPU, head_subset=False)
    assert plain.logits_to_keep is None and plain.slots.tolist() == [0, 1]


def test_head_subset_scores_equal_the_full_head(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    assert accepts_logits_to_keep(model)
    batch = PackedBatch.from_sequences([[11, 12, 13, 14, 15], [21, 22]], [[16, 17], [23, 24]])
    wanted = batch.loss_mask.clone()
    with torch.no_grad():
        scores = [
            score_micro_batch(
                model,
                pad_micro_batch(batch, [0, 1], wanted, pad_id=0, device=CPU, head_subset=subset),
                temperature=0.7,
                chunk_size=2,
            )
            for subset in (True, False)
        ]
    (logprobs, entropy), (full_logprobs, full_entropy) = scores
    assert logprobs.shape == (4,)
    torch.testing.assert_close(logprobs, full_logprobs, atol=1e-6, rtol=0)
    torch.testing.assert_close(entropy, full_entropy, atol=1e-6, rtol=0)
