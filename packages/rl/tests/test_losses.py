"""The policy loss: hand values, clipping, KL, statistics, and the global-token normalisation
that makes split batches add up to the whole."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from pydantic import ValidationError
from torch import Tensor, nn

from qwenlong.rl.entropy import token_logprobs_and_entropy
from qwenlong.rl.losses import (
    KL_ESTIMATORS,
    LOSS_AGGREGATIONS,
    POLICY_LOSSES,
    LossConfig,
    compute_loss,
)
from qwenlong.rl.updates import group_token_weights

torch.set_num_threads(1)


def _grad(loss: Tensor, logprobs: Tensor) -> list[float]:
    (grad,) = torch.autograd.grad(loss, logprobs)
    return grad.tolist()


@pytest.mark.parametrize("clip", [(0.2, 0.28), (0.0, 0.0)])
def test_on_policy_ratio_is_one_and_gradient_is_minus_advantage_over_global_tokens(
    clip: tuple[float, float],
) -> None:
    # Zero-width clips put the ratio exactly on both bounds: the gradient must still be whole.
    config = LossConfig(clip_low=clip[0], clip_high=clip[1])
    logprobs = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    advantages = torch.tensor([1.0, -2.0, 0.5])
    mask = torch.tensor([True, True, False])
    loss, stats = compute_loss(logprobs, None, None, advantages, mask, 4, config)
    # ratio 1: loss = -(1 - 2) / 4 over the two masked tokens.
    assert loss.item() == pytest.approx(0.25)
    assert _grad(loss, logprobs) == pytest.approx([-1 / 4, 2 / 4, 0.0])
    assert stats["ratio_mean"] == pytest.approx(2 / 4)  # two tokens of ratio 1, over 4
    assert stats["clip_frac_low"] == stats["clip_frac_high"] == 0.0


def _ratios(values: list[float]) -> tuple[Tensor, Tensor]:
    """logprobs (requiring grad) and old logprobs whose ratio is `values`."""
    logprobs = torch.tensor([math.log(v) for v in values], requires_grad=True)
    return logprobs, torch.zeros(len(values))


def test_clip_higher_bounds_on_hand_values() -> None:
    # ratio, advantage -> term: (1.5, +1) clipped high to -1.28; (1.25, +1) inside 1.28: -1.25;
    # (0.5, -1) clipped low to 0.8; (1.5, -1) unclipped 1.5 (the upper bound binds only A > 0).
    logprobs, old = _ratios([1.5, 1.25, 0.5, 1.5])
    advantages = torch.tensor([1.0, 1.0, -1.0, -1.0])
    mask = torch.ones(4, dtype=torch.bool)
    loss, stats = compute_loss(logprobs, old, None, advantages, mask, 4, LossConfig())
    assert loss.item() == pytest.approx((-1.28 - 1.25 + 0.8 + 1.5) / 4, rel=1e-6)
    # d(-A r)/d logp = -A r where unclipped, 0 where a bound binds.
    assert _grad(loss, logprobs) == pytest.approx([0.0, -1.25 / 4, 0.0, 1.5 / 4], rel=1e-6)
    assert stats["clip_frac_high"] == pytest.approx(1 / 4)
    assert stats["clip_frac_low"] == pytest.approx(1 / 4)
    assert stats["ratio_mean"] == pytest.approx((1.5 + 1.25 + 0.5 + 1.5) / 4, rel=1e-6)


def test_symmetric_clip_would_stop_the_token_clip_higher_lets_through() -> None:
    logprobs, old = _ratios([1.25])
    args = (torch.tensor([1.0]), torch.tensor([True]), 1)
    loss, stats = compute_loss(logprobs, old, None, *args, LossConfig(clip_high=0.2))
    assert loss.item() == pytest.approx(-1.2)
    assert _grad(loss, logprobs) == [0.0]
    assert stats["clip_frac_high"] == 1.0


def test_dual_clip_caps_negative_advantage_terms() -> None:
    # A = -1: ratio 4 -> min(max(4, 1.28), 3) = 3 (no gradient); ratio 2 -> 2 (gradient 2).
    logprobs, old = _ratios([4.0, 2.0])
    advantages = torch.tensor([-1.0, -1.0])
    mask = torch.ones(2, dtype=torch.bool)
    config = LossConfig(dual_clip=3.0)
    loss, stats = compute_loss(logprobs, old, None, advantages, mask, 2, config)
    assert loss.item() == pytest.approx((3.0 + 2.0) / 2, rel=1e-6)
    assert _grad(loss, logprobs) == pytest.approx([0.0, 2.0 / 2], rel=1e-6)
    assert stats["clip_frac_dual"] == pytest.approx(1 / 2)
    # Without dual clip the exploding token dominates.
    loss, _ = compute_loss(logprobs, old, None, advantages, mask, 2, LossConfig())
    assert loss.item() == pytest.approx((4.0 + 2.0) / 2, rel=1e-6)


def test_dual_clip_must_exceed_one() -> None:
    with pytest.raises(ValidationError, match="dual_clip"):
        LossConfig(dual_clip=0.9)


def test_kl_estimators_on_hand_values() -> None:
    # pi = 0.5, pi_ref = 0.25: d = log(pi_ref / pi) = -ln 2.
    logp, ref = torch.tensor([math.log(0.5), -1.0]), torch.tensor([math.log(0.25), -1.0])
    ln2 = math.log(2.0)
    assert KL_ESTIMATORS.get("k1")(logp, ref).tolist() == pytest.approx([ln2, 0.0])
    assert KL_ESTIMATORS.get("k2")(logp, ref).tolist() == pytest.approx([ln2**2 / 2, 0.0])
    assert KL_ESTIMATORS.get("k3")(logp, ref).tolist() == pytest.approx([0.5 - 1 + ln2, 0.0])


def test_kl_penalty_adds_beta_times_k3_per_token() -> None:
    logprobs = torch.tensor([math.log(0.5), math.log(0.5)], requires_grad=True)
    ref = torch.tensor([math.log(0.25), math.log(0.5)])
    advantages, mask = torch.tensor([1.0, 1.0]), torch.tensor([True, True])
    config = LossConfig(kl_beta=0.1)
    loss, stats = compute_loss(logprobs, None, ref, advantages, mask, 2, config)
    k3 = 0.5 - 1 + math.log(2.0)
    assert loss.item() == pytest.approx((-2 + 0.1 * k3) / 2, rel=1e-6)
    assert stats["pg_loss"] == pytest.approx(-1.0)
    assert stats["kl"] == pytest.approx(k3 / 2, rel=1e-6)
    # d k3 / d logp = 1 - pi_ref / pi: 0.5 for the first token, 0 for the second.
    assert _grad(loss, logprobs) == pytest.approx([(-1 + 0.1 * 0.5) / 2, -1 / 2], rel=1e-6)


def test_kl_is_only_reported_when_beta_is_zero() -> None:
    logprobs = torch.tensor([math.log(0.5)], requires_grad=True)
    ref = torch.tensor([math.log(0.25)])
    args = (torch.tensor([1.0]), torch.tensor([True]), 1)
    loss, stats = compute_loss(logprobs, None, ref, *args, LossConfig())
    assert loss.item() == pytest.approx(-1.0)
    assert stats["kl"] == pytest.approx(0.5 - 1 + math.log(2.0))
    _, stats = compute_loss(logprobs, None, None, *args, LossConfig())
    assert "kl" not in stats


def test_sequence_aggregations_on_hand_values() -> None:
    # Two sequences, on-policy, per-token terms -A: seq 0 tokens (-1, -1, -1), seq 1 (2).
    logprobs = torch.zeros(4, requires_grad=True)
    advantages = torch.tensor([1.0, 1.0, 1.0, -2.0])
    mask = torch.ones(4, dtype=torch.bool)
    seq = torch.tensor([0, 0, 0, 1])

    def run(name: str) -> float:
        config = LossConfig(aggregation=name)
        loss, _ = compute_loss(
            logprobs, None, None, advantages, mask, 4, config, seq_index=seq, global_sequences=2
        )
        return loss.item()

    assert run("token_global") == pytest.approx((-3 + 2) / 4)
    assert run("seq_mean_token_mean") == pytest.approx((-1 + 2) / 2)
    assert run("seq_mean_token_sum") == pytest.approx((-3 + 2) / 2)


def test_masked_tokens_never_leak_in_even_when_not_finite() -> None:
    logprobs = torch.tensor([-1.0, -1.0], requires_grad=True)
    advantages = torch.tensor([1.0, float("nan")])
    loss, _ = compute_loss(
        logprobs, None, None, advantages, torch.tensor([True, False]), 1, LossConfig()
    )
    assert loss.item() == -1.0
    assert _grad(loss, logprobs) == [-1.0, 0.0]


def test_empty_global_batch_gives_zero_loss() -> None:
    logprobs = torch.tensor([-1.0], requires_grad=True)
    loss, _ = compute_loss(
        logprobs, None, None, torch.ones(1), torch.tensor([False]), 0, LossConfig()
    )
    assert loss.item() == 0.0
    assert _grad(loss, logprobs) == [0.0]


def test_contract_violations_are_rejected() -> None:
    logprobs, adv, mask = torch.zeros(3), torch.zeros(3), torch.ones(3, dtype=torch.bool)
    with pytest.raises(ValueError, match="global_tokens is 2"):
        compute_loss(logprobs, None, None, adv, mask, 2, LossConfig())
    with pytest.raises(ValueError, match="no ref_logprobs"):
        compute_loss(logprobs, None, None, adv, mask, 3, LossConfig(kl_beta=0.1))
    with pytest.raises(ValueError, match="advantages shape"):
        compute_loss(logprobs, None, None, adv[:2], mask, 3, LossConfig())
    with pytest.raises(ValueError, match="needs global_sequences"):
        compute_loss(
            logprobs, None, None, adv, mask, 3, LossConfig(aggregation="seq_mean_token_sum")
        )
    with pytest.raises(ValueError, match="needs seq_index"):
        config = LossConfig(aggregation="seq_mean_token_mean")
        compute_loss(logprobs, None, None, adv, mask, 3, config, global_sequences=1)
    with pytest.raises(ValidationError, match="known"):
        LossConfig(aggregation="token_mean")


def test_registries_and_paper_defaults() -> None:
    config = LossConfig()
    assert (config.clip_low, config.clip_high, config.dual_clip) == (0.2, 0.28, None)
    assert (config.kl_beta, config.kl_estimator, config.aggregation) == (0.0, "k3", "token_global")
    assert POLICY_LOSSES.names() == ["ppo_clip"]
    assert LOSS_AGGREGATIONS.names() == [
        "seq_mean_token_mean",
        "seq_mean_token_sum",
        "token_global",
        "token_group",
    ]


# --- the test: split across ranks and micro-batches, add up to the whole -----------

LENGTHS = [3, 5, 2, 4, 6, 1]
PROMPT = [1, 2, 0, 1, 3, 0]
"""Leading prompt tokens of each sequence (excluded from the loss)."""
RANKS = [[[0, 1], [2]], [[3], [4, 5]]]
"""rank -> micro-batches -> sequences: uneven on purpose."""
GROUPS = [0, 0, 1, 1, 2, 2]
"""The prompt each sequence answers (G = 2), for the per-group form of Eq.4; groups 0 and 1
are split across ranks by RANKS."""


def _batch() -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(0)
    total = sum(LENGTHS)
    seq = torch.repeat_interleave(torch.arange(len(LENGTHS)), torch.tensor(LENGTHS))
    position = torch.cat([torch.arange(n) for n in LENGTHS])
    mask = position >= torch.tensor(PROMPT)[seq]
    seq_adv = torch.tensor([1.2, -0.7, 0.4, -1.5, 0.9, -0.3])
    return {
        "features": torch.randn(total, 5, generator=generator),
        "targets": torch.randint(0, 11, (total,), generator=generator),
        "seq": seq,
        "mask": mask,
        "advantages": torch.where(mask, seq_adv[seq], 0.0),
        "old_noise": 0.4 * torch.randn(total, generator=generator),
        "ref_noise": 0.3 * torch.randn(total, generator=generator),
        "weights": group_token_weights(torch.tensor(GROUPS)[seq], mask),
    }


def _part_loss(
    model: nn.Module,
    batch: dict[str, Tensor],
    sequences: list[int],
    config: LossConfig,
    normaliser: int,
    global_sequences: int,
) -> tuple[Tensor, dict[str, float]]:
    rows = torch.cat([(batch["seq"] == s).nonzero().view(-1) for s in sequences])
    logprobs, _ = token_logprobs_and_entropy(model(batch["features"][rows]), batch["targets"][rows])
    # Off-policy and with a reference, so the ratio clip and the KL term both take part.
    old = logprobs.detach() + batch["old_noise"][rows]
    ref = logprobs.detach() + batch["ref_noise"][rows]
    return compute_loss(
        logprobs,
        old,
        ref,
        batch["advantages"][rows],
        batch["mask"][rows],
        normaliser,
        config,
        seq_index=batch["seq"][rows],
        global_sequences=global_sequences,
        token_weights=batch["weights"][rows] if config.aggregation == "token_group" else None,
    )


def _flat_grad(model: nn.Module) -> Tensor:
    return torch.cat([p.grad.view(-1) for p in model.parameters() if p.grad is not None])


@pytest.mark.parametrize(
    "aggregation", ["token_global", "token_group", "seq_mean_token_mean", "seq_mean_token_sum"]
)
def test_two_ranks_by_two_micro_batches_add_up_to_the_single_process_loss_and_gradient(
    aggregation: str,
) -> None:
    torch.manual_seed(0)
    model = nn.Linear(5, 11)
    batch = _batch()
    config = LossConfig(kl_beta=0.05, dual_clip=3.0, aggregation=aggregation)
    global_tokens = int(batch["mask"].sum())
    everything = list(range(len(LENGTHS)))

    whole = copy.deepcopy(model)
    loss, stats = _part_loss(whole, batch, everything, config, global_tokens, len(LENGTHS))
    loss.backward()
    assert stats["clip_frac_low"] + stats["clip_frac_high"] > 0  # clipping took part

    total_loss = 0.0
    summed_stats: dict[str, float] = dict.fromkeys(stats, 0.0)
    rank_grads = []
    for micro_batches in RANKS:
        replica = copy.deepcopy(model)  # each rank holds its own copy of the weights
        for sequences in micro_batches:
            part, part_stats = _part_loss(
                replica, batch, sequences, config, global_tokens, len(LENGTHS)
            )
            part.backward()  # gradient accumulation within the rank
            total_loss += part.item()
            for key, value in part_stats.items():
                summed_stats[key] += value
        rank_grads.append(_flat_grad(replica))
    all_reduced = torch.stack(rank_grads).sum(0)  # all-reduce SUM across ranks

    assert total_loss == pytest.approx(loss.item(), abs=1e-6)
    assert torch.allclose(all_reduced, _flat_grad(whole), atol=1e-6)
    assert summed_stats == pytest.approx(stats, abs=1e-6)


def test_normalising_by_the_local_token_count_breaks_the_equivalence() -> None:
    """The bug the global count prevents: each micro-batch divides by its own token count and
    ranks average (DDP's default), so a token's weight depends on where it landed."""
    torch.manual_seed(0)
    model = nn.Linear(5, 11)
    batch = _batch()
    config = LossConfig()
    whole = copy.deepcopy(model)
    loss, _ = _part_loss(
        whole, batch, list(range(len(LENGTHS))), config, int(batch["mask"].sum()), 6
    )
    loss.backward()

    rank_grads = []
    for micro_batches in RANKS:
        replica = copy.deepcopy(model)
        for sequences in micro_batches:
            rows = torch.cat([(batch["seq"] == s).nonzero().view(-1) for s in sequences])
            local = int(batch["mask"][rows].sum())
            part, _ = _part_loss(replica, batch, sequences, config, local, 6)
            (part / len(micro_batches)).backward()
        rank_grads.append(_flat_grad(replica))
    averaged = torch.stack(rank_grads).mean(0)
    assert not torch.allclose(averaged, _flat_grad(whole), atol=1e-3)


def test_group_aggregation_is_each_groups_token_mean_averaged_over_groups() -> None:
    """Eq.4 as the paper words it, on hand values: group 0 has 3 loss tokens, group 1 has 1."""
    terms = torch.tensor([1.0, 2.0, 3.0, 8.0])  # -A * rho with rho = 1: advantages are -terms
    groups = torch.tensor([0, 0, 0, 1])
    mask = torch.ones(4, dtype=torch.bool)
    weights = group_token_weights(groups, mask)
    assert weights.tolist() == pytest.approx([1 / 6, 1 / 6, 1 / 6, 1 / 2])
    logprobs = torch.zeros(4, requires_grad=True)
    loss, _ = compute_loss(
        logprobs, None, None, -terms, mask, 4, LossConfig(aggregation="token_group"),
        token_weights=weights,
    )  # fmt: skip
    assert float(loss.detach()) == pytest.approx(((1 + 2 + 3) / 3 + 8 / 1) / 2)  # 5.0
    global_loss, _ = compute_loss(logprobs, None, None, -terms, mask, 4, LossConfig())
    assert float(global_loss.detach()) == pytest.approx(14 / 4)  # the batch-token form differs
    with pytest.raises(ValueError, match="'token_group' needs token_weights"):
        compute_loss(logprobs, None, None, -terms, mask, 4, LossConfig(aggregation="token_group"))
    # Uncounted tokens weigh nothing and do not count in their group.
    partial = group_token_weights(groups, torch.tensor([True, False, True, True]))
    assert partial.tolist() == pytest.approx([1 / 4, 0.0, 1 / 4, 1 / 2])
