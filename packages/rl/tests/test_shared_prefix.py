"""Shared-prompt scoring: a prompt run once for its G sequences gives the log-probs, entropies,
loss and gradients of the G sequences run one by one (MoE router and experts included)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qwenlong.rl.interfaces import PackedBatch, PolicyUpdate
from qwenlong.rl.micro_batches import MicroBatchPlanner, plan_shared
from qwenlong.rl.shared_prefix import pad_shared_micro_batch, prefix_groups, prompt_lengths
from qwenlong.rl.torch_policy import TorchPolicy, TorchPolicyConfig

torch.set_num_threads(1)
CPU = torch.device("cpu")


def _grouped_batch() -> PackedBatch:
    """Two groups of three responses (one a single token) and a sequence with its own prompt."""
    generator = torch.Generator().manual_seed(3)

    def ids(n: int) -> list[int]:
        return torch.randint(5, 2000, (n,), generator=generator).tolist()

    first, second = ids(9), ids(5)
    prompts = [first, first, first, second, second, second, ids(7)]
    responses = [ids(n) for n in (4, 1, 6, 3, 5, 2, 4)]
    return PackedBatch.from_sequences(prompts, responses)


def test_groups_and_layout_by_hand() -> None:
    # Sequences: 0 = [5, 6 | 7, 8], 1 = [5, 6 | 9], 2 = [4 | 3].
    batch = PackedBatch.from_sequences([[5, 6], [5, 6], [4]], [[7, 8], [9], [3]])
    assert prompt_lengths(batch).tolist() == [2, 2, 1]
    groups = prefix_groups(batch, [2, 0, 1])
    assert [(g.prefix, g.sequences) for g in groups] == [(1, [2]), (2, [0, 1])]
    micro = pad_shared_micro_batch(batch, groups, None, pad_id=0, device=CPU, head_subset=True)
    assert micro.prefix_ids.tolist() == [[4, 0], [5, 6]]
    assert micro.prefix_mask.tolist() == [[1, 0], [1, 1]]
    # After its prompt, a row holds its tokens but the last: [] for 2, [7] for 0, [] for 1.
    assert micro.suffix_ids.tolist() == [[0], [7], [0]]
    assert micro.suffix_mask.tolist() == [[1, 0, 0], [1, 1, 1], [1, 1, 0]]
    assert micro.suffix_positions.tolist() == [[1], [2], [2]]
    assert micro.member_prefix.tolist() == [0, 1, 1]
    # Read from prompt columns: 3 (row 0, col 0), 6 and 7 (row 1, cols 0, 1), 6 and 9 (row 1,
    # cols 0, 1); from response columns: 8 (sequence row 1, col 0).
    assert micro.targets.tolist() == [3, 6, 7, 6, 9, 8]
    assert micro.positions.tolist() == [8, 1, 2, 5, 6, 3]
    assert micro.prefix_rows.tolist() == [0, 1, 1, 1, 1]
    assert micro.prefix_slots.tolist() == [0, 0, 1, 0, 1]
    assert micro.suffix_rows.tolist() == [1] and micro.suffix_slots.tolist() == [0]
    wanted = batch.loss_mask.clone()
    only = pad_shared_micro_batch(batch, groups, wanted, pad_id=0, device=CPU, head_subset=True)
    assert only.positions.tolist() == [8, 2, 6, 3]
    # Each prompt's last column predicts its sequences' first response token.
    assert only.prefix_rows.tolist() == [0, 1, 1] and only.prefix_slots.tolist() == [0, 1, 1]
    assert only.prefix_keep is None  # columns 0 and 1 are every prompt column


def test_plan_keeps_groups_together_and_cuts_what_does_not_fit() -> None:
    batch = _grouped_batch()
    lengths = batch.lengths().tolist()
    groups = prefix_groups(batch, range(batch.num_sequences))
    whole = plan_shared(groups, lengths, None, None)
    assert sorted(s for micro in whole for s in micro) == list(range(7))
    assert whole == [[0, 1, 2, 6, 3, 4, 5]]  # longest prompt first, all in one
    # 2 rows at most: the groups of three are cut into pieces of two and one.
    rows = plan_shared(groups, lengths, None, 2)
    assert all(len(micro) <= 2 for micro in rows)
    assert sorted(s for micro in rows for s in micro) == list(range(7))
    # A budget of 20 padded tokens: prompt 9 + 2 rows x 5 is the most a micro-batch holds.
    tight = plan_shared(groups, lengths, 20, None)
    assert sorted(s for micro in tight for s in micro) == list(range(7))
    planner = MicroBatchPlanner(None, None, shared_prompts=True)
    assert planner.plan(batch, batch.loss_mask) == whole


def _policies(model: Path, **config: object) -> tuple[TorchPolicy, TorchPolicy]:
    return (
        TorchPolicy(model, TorchPolicyConfig(shared_prompts=True, **config)),
        TorchPolicy(model, TorchPolicyConfig(shared_prompts=False, **config)),
    )


def test_forward_logprobs_equal_the_unshared_ones(tiny_model_dir: Path) -> None:
    shared, alone = _policies(tiny_model_dir)
    batch = _grouped_batch()
    # One prompt, equal response lengths: no padding anywhere, so nothing but causality (with
    # the cache's offset) masks the responses' attention.
    even = PackedBatch.from_sequences([[7, 8, 9, 10]] * 3, [[11, 12, 13], [14, 15, 16], [5, 6, 7]])
    for packed, mask in ((batch, None), (batch, batch.loss_mask), (even, None)):
        ours, theirs = shared.forward_logprobs(packed, mask), alone.forward_logprobs(packed, mask)
        torch.testing.assert_close(ours.logprobs, theirs.logprobs, atol=1e-5, rtol=0)
        torch.testing.assert_close(ours.entropy, theirs.entropy, atol=1e-5, rtol=0)
    theirs = alone.forward_logprobs(batch, batch.loss_mask)
    shared._head_subset = False  # models without `logits_to_keep`: every column through the head
    full = shared.forward_logprobs(batch, batch.loss_mask)
    torch.testing.assert_close(full.logprobs, theirs.logprobs, atol=1e-5, rtol=0)


def _gradients(policy: TorchPolicy, batch: PackedBatch, update: PolicyUpdate) -> dict:
    """The summed gradients of one `train_step`, taken before the optimizer would use them."""
    grads: dict[str, torch.Tensor] = {}

    def capture(extra: dict[str, float]) -> float:
        for name, param in policy.model.named_parameters():
            grads[name] = torch.zeros_like(param) if param.grad is None else param.grad.clone()
        policy.optimizer.zero_grad(set_to_none=True)
        return 0.0

    policy._apply_gradients = capture  # type: ignore[method-assign]
    grads["loss"] = torch.tensor(policy.train_step(batch, update).loss)
    return grads


@pytest.mark.parametrize("micro_batch_tokens", [None, 20])
def test_gradients_equal_the_sum_over_separate_sequences(
    tiny_model_dir: Path, micro_batch_tokens: int | None
) -> None:
    # 20 tokens cut the groups into pieces, each running its prompt again: still exact.
    shared, alone = _policies(tiny_model_dir, micro_batch_tokens=micro_batch_tokens)
    batch = _grouped_batch()
    advantages = torch.tensor([1.0, -0.5, 0.25, -1.0, 0.75, 0.5, -0.25])
    update = PolicyUpdate(
        advantages=advantages[batch.sequence_index()] * batch.loss_mask,
        token_mask=batch.loss_mask.clone(),
        old_logprobs=None,
        ref_logprobs=None,
        global_tokens=int(batch.loss_mask.sum()),
    )
    ours, theirs = _gradients(shared, batch, update), _gradients(alone, batch, update)
    assert set(ours) == set(theirs)
    moe = [name for name in ours if "experts" in name or "gate" in name]
    assert moe and all(theirs[name].abs().sum() > 0 for name in moe)  # the router gets gradient
    for name, grad in theirs.items():
        scale = float(grad.abs().max()) or 1.0
        torch.testing.assert_close(ours[name] / scale, grad / scale, atol=1e-5, rtol=0)
