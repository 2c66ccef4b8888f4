"""Ray workers: two data-parallel torch ranks over gloo take exactly the step one rank takes
(the data-parallel half of the loss-normalisation proof), also when one rank gets no sequence;
a group of HF rollout engines samples what a single engine samples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from qwenlong.core.backends.config import HFBackendConfig
from qwenlong.core.errors import BackendError, CheckpointError, ConfigError
from qwenlong.core.hf_weights import export_hf_weights
from qwenlong.core.interfaces import SamplingParams
from qwenlong.rl.config import RayConfig
from qwenlong.rl.data_parallel import split_for_ranks
from qwenlong.rl.interfaces import PackedBatch, PolicyUpdate
from qwenlong.rl.micro_batches import MicroBatchPlanner
from qwenlong.rl.policy_group import PolicyGroup
from qwenlong.rl.ray_session import ray_session as local_ray
from qwenlong.rl.rollout.hf_engine import HFRolloutEngine
from qwenlong.rl.rollout.hf_group import HFRolloutGroup
from qwenlong.rl.torch_policy import TorchPolicyConfig
from qwenlong.rl.torch_rank import TorchPolicyRank

torch.set_num_threads(1)

# One torch thread per rank; lr and eps as in test_torch_policy (Adam's step then follows the
# gradient, so equal weights mean equal gradients).
CONFIG = TorchPolicyConfig(lr=1e-3, eps=1e-3, torch_threads=1, micro_batch_tokens=24)


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    """A local Ray of 2 CPUs whose workers start from this environment (the run's own)."""
    with local_ray(RayConfig(num_cpus=2)):
        yield


def _batch() -> tuple[PackedBatch, PolicyUpdate]:
    generator = torch.Generator().manual_seed(5)
    lengths = [(6, 5), (3, 9), (10, 2), (4, 4), (7, 6), (2, 3)]
    prompts = [torch.randint(5, 2000, (p,), generator=generator).tolist() for p, _ in lengths]
    responses = [torch.randint(5, 2000, (r,), generator=generator).tolist() for _, r in lengths]
    batch = PackedBatch.from_sequences(prompts, responses)
    per_sequence = torch.tensor([1.0, -0.5, 0.25, -1.0, 2.0, -0.75])
    advantages = per_sequence[batch.sequence_index()] * batch.loss_mask
    mask = batch.loss_mask.clone()
    mask[int(batch.cu_seqlens[4]) + 8] = False  # a token dropped by a negative-gradient mask
    update = PolicyUpdate(advantages, mask, None, None, int(mask.sum()))
    return batch, update


def torch_group(model: Path, workers: int, *, in_process: bool = False) -> PolicyGroup:
    """`workers` torch ranks of `CONFIG` (one CPU each on Ray)."""
    specs = [(TorchPolicyRank, (str(model), CONFIG, rank, workers)) for rank in range(workers)]
    planner = MicroBatchPlanner(CONFIG.micro_batch_tokens, CONFIG.micro_batch_size)
    return PolicyGroup(specs, planner, in_process=in_process, name="policy group")


def _weights(group: PolicyGroup) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in group.export_weights()}


def test_two_gloo_workers_take_the_step_of_one(
    ray_session: None, tiny_model_dir: Path, tmp_path: Path
) -> None:
    batch, update = _batch()
    assert all(split_for_ranks(batch, 2))  # both ranks get sequences
    single = torch_group(tiny_model_dir, 1, in_process=True)
    pair = torch_group(tiny_model_dir, 2)
    try:
        initial = _weights(single)
        torch.testing.assert_close(
            pair.forward_logprobs(batch).logprobs,
            single.forward_logprobs(batch).logprobs,
            atol=1e-5,
            rtol=0,
        )
        torch.testing.assert_close(
            pair.forward_logprobs(batch, update.token_mask).entropy[update.token_mask],
            single.forward_logprobs(batch).entropy[update.token_mask],
            atol=1e-5,
            rtol=0,
        )
        one, two = single.train_step(batch, update), pair.train_step(batch, update)
        assert two.loss == pytest.approx(one.loss, abs=1e-6)
        assert two.grad_norm == pytest.approx(one.grad_norm, rel=1e-5)
        assert (two.tokens, two.loss_tokens) == (one.tokens, one.loss_tokens)
        assert two.extra["ratio_mean"] == pytest.approx(1.0, abs=1e-6)
        # The training forward's log-probs come back from both shares, in packed order.
        pi_one, pi_two = one.logprobs, two.logprobs
        assert pi_one is not None and pi_two is not None
        torch.testing.assert_close(pi_two, pi_one, atol=1e-5, rtol=0, equal_nan=True)
        assert not pi_one[update.token_mask].isnan().any()
        after_one, after_two = _weights(single), _weights(pair)
        assert any(not torch.equal(after_one[name], initial[name]) for name in initial)
        for name, tensor in after_one.items():
            torch.testing.assert_close(after_two[name], tensor, atol=1e-6, rtol=0)

        sft_tokens = int(batch.loss_mask.sum())
        one, two = single.sft_step(batch, sft_tokens), pair.sft_step(batch, sft_tokens)
        assert two.loss == pytest.approx(one.loss, abs=1e-5)
        for name, tensor in _weights(single).items():
            torch.testing.assert_close(_weights(pair)[name], tensor, atol=1e-6, rtol=0)

        # One sequence: rank 1 gets none and still takes part in the step (and its reduction).
        lone = batch.select([0])
        lone_update = update.select(batch.token_positions([0]), global_tokens=None)
        lone_update.global_tokens = int(lone_update.token_mask.sum())
        assert split_for_ranks(lone, 2)[1] == []
        one, two = single.train_step(lone, lone_update), pair.train_step(lone, lone_update)
        assert two.loss == pytest.approx(one.loss, abs=1e-6)
        for name, tensor in _weights(single).items():
            torch.testing.assert_close(_weights(pair)[name], tensor, atol=1e-6, rtol=0)

        pair.save_optimizer_state(tmp_path / "optimizer")
        assert sorted(p.name for p in (tmp_path / "optimizer").iterdir()) == [
            "layout.json",
            "rank_00000.pt",
            "rank_00001.pt",
        ]
        states = [torch.load(p, weights_only=True) for p in (tmp_path / "optimizer").glob("*.pt")]
        assert all(int(state["state"][0]["step"]) == 3 for state in states)
        pair.load_optimizer_state(tmp_path / "optimizer")
        single.save_optimizer_state(tmp_path / "one")
        with pytest.raises(CheckpointError, match="optimizer state of 1 ranks"):
            pair.load_optimizer_state(tmp_path / "one")
        # Weights loaded into the pair reach every rank: scoring matches the single policy.
        pair.load_weights(initial.items())
        single.load_weights(initial.items())
        torch.testing.assert_close(
            pair.forward_logprobs(batch).entropy, single.forward_logprobs(batch).entropy
        )
        with pytest.raises(BackendError, match="unknown tensor 'bogus'"):
            pair.load_weights([("bogus", torch.zeros(1))])
    finally:
        pair.close()
        single.close()
    with pytest.raises(BackendError, match="after close"):
        pair.sft_step(batch, 1)


@pytest.mark.slow  # two engine actors each load a model: 11 s of the default suite's budget
def test_rollout_group_samples_what_one_engine_samples(
    ray_session: None, tiny_model_dir: Path
) -> None:
    conversations = [[{"role": "user", "content": f"Recall item number {i}."}] for i in range(5)]
    sampling = SamplingParams(max_new_tokens=6, n=2, seed=3, logprobs=True)
    # One conversation per forward batch on both sides: batch composition then cannot change
    # the logits in the last bit, so a near-tie can never be drawn differently.
    config = HFBackendConfig(batch_size=1)
    local = HFRolloutEngine(tiny_model_dir, config)
    group = HFRolloutGroup(
        tiny_model_dir, config, num_workers=2, num_cpus_per_worker=1, bucket_bytes=50_000
    )
    try:
        want = local.generate(conversations, sampling)
        got = group.generate(conversations, sampling)
        assert [[c.token_ids for c in g] for g in got] == [[c.token_ids for c in g] for g in want]
        assert group.prompt_ids(conversations) == local.prompt_ids(conversations)
        # Zeroed weights reach both workers: every logit is 0, so each token has log-prob
        # -log(vocab) under the uniform distribution, whoever sampled it.
        zeros = [(name, torch.zeros_like(t)) for name, t in export_hf_weights(local.chat.model)]
        group.load_weights(zeros)  # in chunks of 50 KB: several messages, one stream
        for completions in group.generate(conversations, sampling):
            for completion in completions:
                assert completion.logprobs == pytest.approx(
                    [-torch.log(torch.tensor(2048.0)).item()] * len(completion.logprobs),
                    abs=1e-5,
                )
    finally:
        group.close()
        local.close()


def test_in_process_group_is_the_policy_without_ray(tiny_model_dir: Path, tmp_path: Path) -> None:
    batch, update = _batch()
    group = torch_group(tiny_model_dir, 1, in_process=True)
    try:
        stats = group.train_step(batch, update)
        # Hand value: on-policy the loss is -sum(A over kept tokens) / kept tokens.
        kept = update.token_mask
        assert stats.loss == pytest.approx(-float(update.advantages[kept].sum()) / int(kept.sum()))
        group.save_optimizer_state(tmp_path / "optimizer")
        assert (tmp_path / "optimizer" / "rank_00000.pt").is_file()
        out = group.save_pretrained(tmp_path / "exported")
        assert (out / "config.json").is_file()
        with pytest.raises(BackendError, match=r"policy group: mask has shape \(2,\)"):
            group.forward_logprobs(batch, torch.ones(2, dtype=torch.bool))
        short = PolicyUpdate(update.advantages[:-1], update.token_mask, None, None, 9)
        with pytest.raises(BackendError, match=r"update\.advantages has shape"):
            group.train_step(batch, short)
    finally:
        group.close()
    with pytest.raises(ConfigError, match="in-process needs 1 rank, got 2"):
        torch_group(tiny_model_dir, 2, in_process=True)
    with pytest.raises(ConfigError, match="needs at least one rank"):
        PolicyGroup([], MicroBatchPlanner(None, None))
