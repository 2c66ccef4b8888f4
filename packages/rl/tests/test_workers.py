"""Ray workers: two data-parallel policy ranks over gloo take exactly the step one rank takes
(the data-parallel half of the loss-normalisation proof), and a group of rollout workers
samples what a single engine samples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
import torch
from ray._private import ray_constants

from qwenlong.core.backends.config import HFBackendConfig
from qwenlong.core.errors import BackendError, ConfigError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.rl.dp import split_for_ranks
from qwenlong.rl.interfaces import PackedBatch, PolicyUpdate
from qwenlong.rl.rollout import HFRolloutEngine
from qwenlong.rl.torch_policy import TorchPolicyConfig
from qwenlong.rl.workers import PolicyGroup, RolloutGroup

torch.set_num_threads(1)

# One torch thread per rank; lr and eps as in test_torch_policy (Adam's step then follows the
# gradient, so equal weights mean equal gradients).
CONFIG = TorchPolicyConfig(lr=1e-3, eps=1e-3, torch_threads=1, micro_batch_tokens=24)


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    # Under `uv run`, Ray would zip the repository and start every worker through `uv run`
    # (its RAY_ENABLE_UV_RUN_RUNTIME_ENV hook, read once when ray is imported); the venv the
    # driver runs in already holds every package, so workers start from it directly.
    previous = ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV
    ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = False
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = previous


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


def _weights(group: PolicyGroup) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in group.export_weights()}


def test_two_gloo_workers_take_the_step_of_one(ray_session: None, tiny_model_dir: Path) -> None:
    batch, update = _batch()
    assert all(split_for_ranks(batch, 2))  # both ranks get sequences
    single = PolicyGroup(tiny_model_dir, CONFIG, 1, in_process=True)
    pair = PolicyGroup(tiny_model_dir, CONFIG, 2, num_cpus_per_worker=1)
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
        after_one, after_two = _weights(single), _weights(pair)
        assert any(not torch.equal(after_one[name], initial[name]) for name in initial)
        for name, tensor in after_one.items():
            torch.testing.assert_close(after_two[name], tensor, atol=1e-6, rtol=0)

        sft_tokens = int(batch.loss_mask.sum())
        one, two = single.sft_step(batch, sft_tokens), pair.sft_step(batch, sft_tokens)
        assert two.loss == pytest.approx(one.loss, abs=1e-5)
        for name, tensor in _weights(single).items():
            torch.testing.assert_close(_weights(pair)[name], tensor, atol=1e-6, rtol=0)

        states = pair.optimizer_state()
        assert len(states) == 2
        assert all(int(state["state"][0]["step"]) == 2 for state in states)
        with pytest.raises(ConfigError, match="1 optimizer states for 2 ranks"):
            pair.load_optimizer_state(states[:1])
        # Weights loaded into the pair reach every rank: scoring matches the single policy.
        pair.load_weights(initial.items())
        single.load_weights(initial.items())
        torch.testing.assert_close(
            pair.forward_logprobs(batch).entropy, single.forward_logprobs(batch).entropy
        )
        with pytest.raises(BackendError, match="unknown tensor 'bogus'"):
            pair.load_weights([("bogus", torch.zeros(1))])
    finally:
        pair.shutdown()
        single.shutdown()
    with pytest.raises(BackendError, match="after shutdown"):
        pair.sft_step(batch, 1)


def test_rollout_group_samples_what_one_engine_samples(
    ray_session: None, tiny_model_dir: Path
) -> None:
    conversations = [[{"role": "user", "content": f"Recall item number {i}."}] for i in range(5)]
    sampling = SamplingParams(max_new_tokens=6, n=2, seed=3, logprobs=True)
    # One conversation per forward batch on both sides: batch composition then cannot change
    # the logits in the last bit, so a near-tie can never be drawn differently.
    config = HFBackendConfig(batch_size=1)
    local = HFRolloutEngine(tiny_model_dir, config)
    group = RolloutGroup(tiny_model_dir, config, num_workers=2, num_cpus_per_worker=1)
    try:
        want = local.generate(conversations, sampling)
        got = group.generate(conversations, sampling)
        assert [[c.token_ids for c in g] for g in got] == [[c.token_ids for c in g] for g in want]
        assert group.prompt_ids(conversations) == local.prompt_ids(conversations)
        # Zeroed weights reach both workers: every logit is 0, so each token has log-prob
        # -log(vocab) under the uniform distribution, whoever sampled it.
        zeros = [(name, torch.zeros_like(t)) for name, t in local.chat.model.state_dict().items()]
        group.load_weights(zeros)
        for completions in group.generate(conversations, sampling):
            for completion in completions:
                assert completion.logprobs == pytest.approx(
                    [-torch.log(torch.tensor(2048.0)).item()] * len(completion.logprobs),
                    abs=1e-5,
                )
    finally:
        group.shutdown()
        local.close()


def test_in_process_group_is_the_policy_without_ray(tiny_model_dir: Path, tmp_path: Path) -> None:
    batch, update = _batch()
    group = PolicyGroup(tiny_model_dir, CONFIG, 1, in_process=True)
    try:
        stats = group.train_step(batch, update)
        # Hand value: on-policy the loss is -sum(A over kept tokens) / kept tokens.
        kept = update.token_mask
        assert stats.loss == pytest.approx(-float(update.advantages[kept].sum()) / int(kept.sum()))
        assert len(group.optimizer_state()) == 1
        out = group.save_pretrained(tmp_path / "exported")
        assert (out / "config.json").is_file()
        with pytest.raises(BackendError, match=r"policy group: mask has shape \(2,\)"):
            group.forward_logprobs(batch, torch.ones(2, dtype=torch.bool))
        short = PolicyUpdate(update.advantages[:-1], update.token_mask, None, None, 9)
        with pytest.raises(BackendError, match=r"update\.advantages has shape"):
            group.train_step(batch, short)
    finally:
        group.shutdown()
    with pytest.raises(ConfigError, match="in_process needs 1 worker, got 2"):
        PolicyGroup(tiny_model_dir, CONFIG, 2, in_process=True)
    with pytest.raises(ConfigError, match="num_workers must be >= 1"):
        PolicyGroup(tiny_model_dir, CONFIG, 0)
