"""The torch policy: log-probs equal a direct HF forward, the update goes where the advantages
point, the step does not depend on the micro-batch split, SFT fits, and state round-trips."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from qwenlong.core.errors import BackendError, CheckpointError
from qwenlong.rl.interfaces import PackedBatch, PolicyUpdate
from qwenlong.rl.torch_policy import TorchPolicy, TorchPolicyConfig

torch.set_num_threads(1)

PROMPTS = (5, 9, 3, 12, 7)
RESPONSES = (4, 2, 7, 6, 5)


def _batch(seed: int = 0) -> PackedBatch:
    generator = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(5, 2000, (n,), generator=generator).tolist() for n in PROMPTS]
    responses = [torch.randint(5, 2000, (n,), generator=generator).tolist() for n in RESPONSES]
    return PackedBatch.from_sequences(prompts, responses)


def _update(batch: PackedBatch, per_sequence: list[float]) -> PolicyUpdate:
    advantages = torch.tensor(per_sequence)[batch.sequence_index()] * batch.loss_mask
    return PolicyUpdate(
        advantages=advantages.float(),
        token_mask=batch.loss_mask.clone(),
        old_logprobs=None,
        ref_logprobs=None,
        global_tokens=int(batch.loss_mask.sum()),
    )


def _weights(policy: TorchPolicy) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in policy.export_weights()}


def test_forward_logprobs_match_a_direct_hf_forward(tiny_model_dir: Path) -> None:
    # A 40-token budget splits the five sequences over several padded micro-batches.
    policy = TorchPolicy(tiny_model_dir, TorchPolicyConfig(micro_batch_tokens=40))
    batch = _batch()
    stats = policy.forward_logprobs(batch)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    for s in range(batch.num_sequences):
        start, end = int(batch.cu_seqlens[s]), int(batch.cu_seqlens[s + 1])
        ids = batch.input_ids[start:end]
        with torch.no_grad():
            logp = torch.log_softmax(model(ids[None]).logits[0] / 0.7, dim=-1)
        want = logp[:-1].gather(1, ids[1:, None])[:, 0]
        entropy = -(logp.exp() * logp).sum(-1)[:-1]
        assert stats.logprobs[start] == 0 and stats.entropy[start] == 0
        torch.testing.assert_close(stats.logprobs[start + 1 : end], want, atol=1e-4, rtol=0)
        torch.testing.assert_close(stats.entropy[start + 1 : end], entropy, atol=1e-4, rtol=0)


def test_masked_forward_computes_only_the_marked_positions(tiny_model_dir: Path) -> None:
    policy = TorchPolicy(tiny_model_dir, TorchPolicyConfig(micro_batch_tokens=40))
    batch = _batch()
    mask = batch.loss_mask.clone()
    mask[int(batch.cu_seqlens[2]) : int(batch.cu_seqlens[3])] = False  # a sequence left out
    full = policy.forward_logprobs(batch)
    part = policy.forward_logprobs(batch, mask)
    torch.testing.assert_close(part.logprobs[mask], full.logprobs[mask], atol=1e-6, rtol=0)
    torch.testing.assert_close(part.entropy[mask], full.entropy[mask], atol=1e-6, rtol=0)
    assert not part.logprobs[~mask].any() and not part.entropy[~mask].any()
    # The same numbers when the output head runs on every column (models without
    # `logits_to_keep` take this path).
    policy._head_subset = False
    torch.testing.assert_close(policy.forward_logprobs(batch, mask).logprobs, part.logprobs)
    with pytest.raises(BackendError, match=r"mask has shape \(3,\)"):
        policy.forward_logprobs(batch, torch.ones(3, dtype=torch.bool))


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_train_step_moves_logprobs_with_the_advantage(tiny_model_dir: Path, sign: float) -> None:
    policy = TorchPolicy(tiny_model_dir, TorchPolicyConfig(lr=1e-3))
    batch = _batch()
    before = policy.forward_logprobs(batch).logprobs[batch.loss_mask].sum()
    stats = policy.train_step(batch, _update(batch, [sign] * batch.num_sequences))
    after = policy.forward_logprobs(batch).logprobs[batch.loss_mask].sum()
    assert sign * (after - before) > 0
    # On-policy the ratio is 1, so the loss is -mean(A) over the tokens = -sign.
    assert stats.loss == pytest.approx(-sign, abs=1e-6)
    assert stats.extra["ratio_mean"] == pytest.approx(1.0, abs=1e-6)
    assert stats.loss_tokens == sum(RESPONSES) and stats.tokens == batch.num_tokens
    assert stats.grad_norm > 0


def test_mixed_advantages_raise_the_advantage_weighted_logprob(tiny_model_dir: Path) -> None:
    policy = TorchPolicy(tiny_model_dir, TorchPolicyConfig(lr=1e-3))
    batch = _batch(1)
    update = _update(batch, [1.0, -1.0, 0.5, -0.5, 2.0])

    def objective() -> float:
        return float((policy.forward_logprobs(batch).logprobs * update.advantages).sum())

    before = objective()
    policy.train_step(batch, update)
    assert objective() > before


# Adam's first step is lr * g / (|g| + eps): with the default eps a coordinate whose gradient is
# ~1e-9 moves by ~lr whatever its sign, so last-bit rounding differences between two summation
# orders would show as lr-sized weight differences. eps = 1e-3 makes the step proportional to
# the gradient there, so comparing weights compares gradients.
GRADIENT_EXACT = {"lr": 1e-3, "eps": 1e-3}


def test_step_does_not_depend_on_the_micro_batch_split(tiny_model_dir: Path) -> None:
    batch = _batch(2)
    update = _update(batch, [0.7, -1.2, 0.3, 1.1, -0.4])
    initial = _weights(TorchPolicy(tiny_model_dir))
    results = []
    for budget in (None, 30):
        config = TorchPolicyConfig(micro_batch_tokens=budget, **GRADIENT_EXACT)
        policy = TorchPolicy(tiny_model_dir, config)
        stats = policy.train_step(batch, update)
        results.append((stats, _weights(policy)))
    (whole, weights_whole), (split, weights_split) = results
    assert any(not torch.equal(weights_whole[name], initial[name]) for name in initial)
    assert whole.loss == pytest.approx(split.loss, abs=1e-6)
    assert whole.grad_norm == pytest.approx(split.grad_norm, rel=1e-5)
    for name, tensor in weights_whole.items():
        torch.testing.assert_close(weights_split[name], tensor, atol=1e-6, rtol=0)


def test_sft_step_lowers_cross_entropy(tiny_model_dir: Path) -> None:
    policy = TorchPolicy(tiny_model_dir, TorchPolicyConfig(lr=3e-3, grad_clip=None))
    batch = _batch(3)
    tokens = int(batch.loss_mask.sum())
    losses = [policy.sft_step(batch, tokens).loss for _ in range(8)]
    # The first loss is the cross-entropy of a random model: about log(vocab) = log(2048).
    assert losses[0] == pytest.approx(7.62, abs=0.3)
    assert all(b < a for a, b in itertools.pairwise(losses))
    assert losses[-1] < losses[0] - 1.0


def test_non_finite_gradient_skips_the_update(tiny_model_dir: Path) -> None:
    policy = TorchPolicy(tiny_model_dir, TorchPolicyConfig(lr=1e-3))
    batch = _batch()
    before = _weights(policy)
    update = _update(batch, [1.0] * batch.num_sequences)
    update.advantages[int(batch.cu_seqlens[1]) - 1] = float("nan")
    stats = policy.train_step(batch, update)
    assert stats.extra["step_skipped"] == 1.0
    for name, tensor in _weights(policy).items():
        assert torch.equal(tensor, before[name])


def test_weights_and_optimizer_state_round_trip(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = TorchPolicyConfig(lr=1e-3)
    first = TorchPolicy(tiny_model_dir, config)
    batch, update = _batch(), _update(_batch(), [1.0, -1.0, 1.0, -1.0, 1.0])
    first.train_step(batch, update)
    second = TorchPolicy(tiny_model_dir, config)
    second.load_weights(first.export_weights())
    first.save_optimizer_state(tmp_path / "optimizer")
    second.load_optimizer_state(tmp_path / "optimizer")
    torch.testing.assert_close(
        second.forward_logprobs(batch).logprobs, first.forward_logprobs(batch).logprobs
    )
    # Same weights and Adam moments: the next step is identical too.
    next_update = _update(batch, [-0.5, 0.5, 1.0, 0.0, -1.0])
    first.train_step(batch, next_update)
    second.train_step(batch, next_update)
    for name, tensor in _weights(first).items():
        torch.testing.assert_close(_weights(second)[name], tensor, atol=0, rtol=0)
    torch.save({"state": {}, "param_groups": []}, tmp_path / "optimizer" / "rank_00000.pt")
    with pytest.raises(CheckpointError, match="cannot load optimizer state"):
        second.load_optimizer_state(tmp_path / "optimizer")
    with pytest.raises(CheckpointError, match="no optimizer state at"):
        second.load_optimizer_state(tmp_path / "elsewhere")


def test_load_weights_is_strict(tiny_model_dir: Path) -> None:
    policy = TorchPolicy(tiny_model_dir)
    weights = list(policy.export_weights())
    with pytest.raises(BackendError, match=r"unknown tensor 'model\.nope'"):
        policy.load_weights([("model.nope", torch.zeros(1))])
    name, tensor = weights[0]
    with pytest.raises(BackendError, match=f"{name!r} has shape \\(1,\\)"):
        policy.load_weights([(name, torch.zeros(1))])
    with pytest.raises(BackendError, match="never received"):
        policy.load_weights(weights[1:])
    assert tensor.shape != (1,)


def test_save_pretrained_loads_back_with_the_same_logits(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    policy = TorchPolicy(tiny_model_dir, TorchPolicyConfig(lr=1e-3))
    batch = _batch()
    policy.train_step(batch, _update(batch, [1.0] * batch.num_sequences))
    out = policy.save_pretrained(tmp_path / "exported")
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    assert AutoTokenizer.from_pretrained(out).chat_template
    ids = batch.input_ids[: int(batch.cu_seqlens[1])]
    with torch.no_grad():
        logp = torch.log_softmax(model(ids[None]).logits[0] / 0.7, dim=-1)
    want = logp[:-1].gather(1, ids[1:, None])[:, 0]
    got = policy.forward_logprobs(batch.select([0])).logprobs[1:]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_bad_inputs_fail_with_one_line_naming_the_problem(tiny_model_dir: Path) -> None:
    policy = TorchPolicy(tiny_model_dir)
    batch = _batch()
    update = _update(batch, [1.0] * batch.num_sequences)
    prompt_token = PolicyUpdate(
        update.advantages, torch.ones_like(batch.loss_mask), None, None, batch.num_tokens
    )
    with pytest.raises(BackendError, match="outside loss_mask"):
        policy.train_step(batch, prompt_token)
    too_few = PolicyUpdate(update.advantages, update.token_mask, None, None, 3)
    with pytest.raises(BackendError, match="global_tokens is 3"):
        policy.train_step(batch, too_few)
    short = PolicyUpdate(update.advantages[:-1], update.token_mask, None, None, 99)
    with pytest.raises(BackendError, match=r"update\.advantages has shape"):
        policy.train_step(batch, short)
    big = PackedBatch.from_sequences([[1, 2]], [[5000]])
    with pytest.raises(BackendError, match=r"token ids must lie in \[0, 2048\)"):
        policy.forward_logprobs(big)
    no_prompt = PackedBatch.from_sequences([[]], [[7, 8]])
    with pytest.raises(BackendError, match="first token of sequence 0"):
        policy.sft_step(no_prompt, 2)
    with pytest.raises(BackendError, match="no model directory"):
        TorchPolicy(tiny_model_dir / "missing")
