"""The Megatron-Core policy at world size 1 against the torch policy on the same tiny model:
the same log-probs and entropy, the same training and SFT steps, weights and optimizer state
that round-trip, and the whole trainer run through `policy.backend: megatron`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from qwenlong.rl.interfaces import PackedBatch, PolicyUpdate
from qwenlong.rl.losses import LossConfig
from qwenlong.rl.megatron.config import MegatronPolicyConfig
from qwenlong.rl.megatron.policy import MegatronPolicyRank
from qwenlong.rl.micro_batches import MicroBatchPlanner
from qwenlong.rl.torch_policy import TorchPolicy, TorchPolicyConfig

LR, EPS, T = 1e-3, 1e-3, 0.7


def _sequences() -> tuple[list[list[int]], list[list[int]]]:
    generator = torch.Generator().manual_seed(5)
    lengths = [(6, 5), (3, 9), (10, 2), (4, 4)]
    prompts = [torch.randint(5, 2000, (p,), generator=generator).tolist() for p, _ in lengths]
    responses = [torch.randint(5, 2000, (r,), generator=generator).tolist() for _, r in lengths]
    return prompts, responses


def _batch() -> tuple[PackedBatch, PolicyUpdate]:
    batch = PackedBatch.from_sequences(*_sequences())
    advantages = torch.tensor([1.0, -0.5, 0.25, -1.0])[batch.sequence_index()] * batch.loss_mask
    mask = batch.loss_mask.clone()
    return batch, PolicyUpdate(advantages, mask, None, None, int(mask.sum()))


@pytest.fixture
def ranks(tiny_model_dir: Path) -> Iterator[tuple[MegatronPolicyRank, TorchPolicy]]:
    torch.set_num_threads(1)
    config = MegatronPolicyConfig(lr=LR, eps=EPS, temperature=T, micro_batch_tokens=24)
    megatron = MegatronPolicyRank(str(tiny_model_dir), config, LossConfig(), 0, 1)
    megatron.setup(None)
    torch_policy = TorchPolicy(tiny_model_dir, TorchPolicyConfig(lr=LR, eps=EPS, temperature=T))
    try:
        yield megatron, torch_policy
    finally:
        megatron.close()


def _plan(batch: PackedBatch, mask: torch.Tensor | None) -> list[list[int]]:
    return MicroBatchPlanner(24, None, packed=True).plan(batch, mask)


def test_logprobs_and_a_training_step_match_the_torch_policy(
    ranks: tuple[MegatronPolicyRank, TorchPolicy],
) -> None:
    megatron, reference = ranks
    batch, update = _batch()
    assert len(_plan(batch, None)) > 1  # several packed micro-batches
    got = megatron.forward_logprobs(batch, None, _plan(batch, None))
    want = reference.forward_logprobs(batch)
    torch.testing.assert_close(got.logprobs, want.logprobs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.entropy, want.entropy, atol=1e-5, rtol=1e-5)

    sequences = int(batch.num_sequences)
    one = megatron.train_step(batch, update, sequences, _plan(batch, update.token_mask))
    two = reference.train_step(batch, update)
    assert one.loss == pytest.approx(two.loss, abs=1e-6)
    assert one.grad_norm == pytest.approx(two.grad_norm, rel=1e-4)
    for layer in (0, 1):  # the routers' load relative to an even spread
        assert one.extra[f"moe_load_max/layer_{layer}"] >= 1.0
        assert 0.0 <= one.extra[f"moe_load_min/layer_{layer}"] <= 1.0
    after = dict(megatron.export_weights())
    for name, tensor in reference.export_weights():
        torch.testing.assert_close(after[name], tensor, atol=1e-5, rtol=0, msg=name)

    tokens = int(batch.loss_mask.sum())
    one = megatron.sft_step(batch, tokens, _plan(batch, batch.loss_mask))
    two = reference.sft_step(batch, tokens)
    assert one.loss == pytest.approx(two.loss, abs=1e-5)


def test_weights_and_optimizer_state_round_trip(
    ranks: tuple[MegatronPolicyRank, TorchPolicy], tmp_path: Path
) -> None:
    megatron, _ = ranks
    batch, update = _batch()
    start = dict(megatron.export_weights())
    megatron.train_step(batch, update, batch.num_sequences, _plan(batch, update.token_mask))
    megatron.save_optimizer_state(str(tmp_path / "optimizer"))
    megatron.save_pretrained(str(tmp_path / "model"))
    trained = dict(megatron.export_weights())
    assert any(not torch.equal(trained[n], start[n]) for n in start)

    items = list(start.items())
    megatron.receive_weights(items[:7], last=False)  # a stream in two chunks
    megatron.receive_weights(items[7:], last=True)
    assert all(torch.equal(t, start[n]) for n, t in megatron.export_weights())
    reloaded = TorchPolicy(tmp_path / "model", TorchPolicyConfig(temperature=T))
    for name, tensor in reloaded.export_weights():
        assert torch.equal(tensor, trained[name]), name
    megatron.load_optimizer_state(str(tmp_path / "optimizer"))
    assert int(megatron.optimizer.optimizer.state_dict()["state"][0]["step"]) == 1


def test_router_aux_loss_is_a_mean_over_micro_batches(tiny_model_dir: Path) -> None:
    """With the RL loss flat (zero advantages) only the load-balancing loss moves the weights:
    the same four sequences once in one micro-batch, or twice over two, give the same gradient,
    as under Megatron's schedules (a sum over micro-batches would double it); the logged loss
    (without its coefficient) is the same mean."""
    torch.set_num_threads(1)
    config = MegatronPolicyConfig(
        lr=1e-12, micro_batch_tokens=4096, moe={"aux_loss_coeff": 0.5, "log_expert_load": False}
    )
    rank = MegatronPolicyRank(str(tiny_model_dir), config, LossConfig(), 0, 1)
    rank.setup(None)
    try:
        norms, losses = [], []
        for copies in (1, 2):
            prompts, responses = _sequences()
            batch = PackedBatch.from_sequences(prompts * copies, responses * copies)
            mask = batch.loss_mask.clone()
            flat = PolicyUpdate(torch.zeros(batch.num_tokens), mask, None, None, int(mask.sum()))
            plan = [list(range(4 * c, 4 * c + 4)) for c in range(copies)]
            stats = rank.train_step(batch, flat, batch.num_sequences, plan)
            norms.append(stats.grad_norm)
            losses.append(stats.extra["moe_global_load_balancing_loss"])
        assert norms[0] > 0
        assert losses[0] > 0 and losses[1] == pytest.approx(losses[0], rel=1e-4)
        assert norms[1] == pytest.approx(norms[0], rel=1e-4)
    finally:
        rank.close()


def test_the_trainer_runs_and_resumes_on_the_megatron_backend(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from qwenlong.core.config_loader import load_config_dict
    from qwenlong.core.dataset_io import write_samples
    from qwenlong.core.records import TaskSample
    from qwenlong.core.rundir import read_metrics
    from qwenlong.rl.config import TrainConfig
    from qwenlong.rl.trainer import train

    samples = [
        TaskSample(
            id=f"dlg-{i}",
            task_type="dialogue_memory",
            question=f"Repeat the line about item {i}.",
            answers=[f"item {i} is here"],
            answer_kind="sequence",
            context=f"line: item {i} is here",
            meta={"prefix": ""},  # a dense reward even for a random model: a gradient
        )
        for i in range(12)
    ]
    data = write_samples(samples, tmp_path / "data.parquet")
    config = load_config_dict(
        {
            "model": str(tiny_model_dir),
            "data": {"train": [str(data)]},
            "steps": 3,
            "seed": 3,
            "sampler": {"batch_size": 2, "tasks": ["dialogue_memory"]},
            "rollout": {"group_size": 2, "max_new_tokens": 6, "max_input_tokens": 400},
            "policy": {"backend": "megatron", "megatron": {"lr": 1e-3}},
            "aepo": {"enabled": False},
            "checkpoint_every": 2,
            "ray": {"enabled": False},
        },
        TrainConfig,
        "test",
    )
    out = tmp_path / "run"
    train(config, out)
    straight = read_metrics(out)
    assert [r["step"] for r in straight] == [1, 2, 3]
    assert any(r["grad_norm"] > 0 for r in straight)
    assert (out / "checkpoints" / "step_000002" / "optimizer" / "rank_00000.pt").is_file()
    assert (out / "model" / "config.json").is_file()

    import shutil

    shutil.rmtree(out / "checkpoints" / "step_000003")  # killed after step 3 was logged
    (out / "summary.json").unlink()
    train(config, out)
    timing = ("time_", "tokens_per_s", "train_tokens_per_s")

    def drop(records: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if not k.startswith(timing)} for r in records]

    assert drop(read_metrics(out)) == drop(straight)
