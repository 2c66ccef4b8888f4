"""The Megatron policy on one GPU (marked `gpu`; `benchmarks/gpu_check.sh` runs these).

On CUDA the policy leaves the CPU path behind: NCCL, Megatron's DDP wrapper and distributed
optimizer, bf16 with float32 main weights, and Transformer Engine's layers with THD packing.
Each is checked against the torch policy on the same tiny model and batch, as the CPU tests
check the CPU path."""

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

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

LR, EPS, T = 1e-3, 1e-3, 0.7


def _has_transformer_engine() -> bool:
    try:
        import transformer_engine.pytorch  # noqa: F401
    except ImportError:
        return False
    return True


def _batch() -> tuple[PackedBatch, PolicyUpdate]:
    generator = torch.Generator().manual_seed(5)
    lengths = [(60, 50), (30, 90), (100, 20), (40, 40)]
    prompts = [torch.randint(5, 2000, (p,), generator=generator).tolist() for p, _ in lengths]
    responses = [torch.randint(5, 2000, (r,), generator=generator).tolist() for _, r in lengths]
    batch = PackedBatch.from_sequences(prompts, responses)
    advantages = torch.tensor([1.0, -0.5, 0.25, -1.0])[batch.sequence_index()] * batch.loss_mask
    mask = batch.loss_mask.clone()
    return batch, PolicyUpdate(advantages, mask, None, None, int(mask.sum()))


@pytest.fixture
def float32_matmuls() -> Iterator[None]:
    """Full float32 products (no TF32), so float32 runs compare at float32 tolerances."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def _megatron(model: Path, **fields: object) -> MegatronPolicyRank:
    config = MegatronPolicyConfig(
        lr=LR, eps=EPS, temperature=T, micro_batch_tokens=256, device="cuda", **fields
    )
    rank = MegatronPolicyRank(str(model), config, LossConfig(), 0, 1)
    rank.setup(None)
    return rank


def _reference(model: Path, dtype: str = "float32") -> TorchPolicy:
    config = TorchPolicyConfig(lr=LR, eps=EPS, temperature=T, device="cuda", dtype=dtype)
    return TorchPolicy(model, config)


def _plan(batch: PackedBatch, mask: torch.Tensor | None) -> list[list[int]]:
    return MicroBatchPlanner(256, None, packed=True).plan(batch, mask)


def test_distributed_optimizer_in_float32_takes_the_torch_policys_step(
    tiny_model_dir: Path, float32_matmuls: None, tmp_path: Path
) -> None:
    rank = _megatron(tiny_model_dir, distributed_optimizer=True)
    reference = _reference(tiny_model_dir)
    try:
        batch, update = _batch()
        got = rank.forward_logprobs(batch, None, _plan(batch, None))
        want = reference.forward_logprobs(batch)
        torch.testing.assert_close(got.logprobs, want.logprobs, atol=1e-4, rtol=1e-4)
        one = rank.train_step(batch, update, batch.num_sequences, _plan(batch, update.token_mask))
        two = reference.train_step(batch, update)
        assert one.loss == pytest.approx(two.loss, abs=1e-5)
        assert one.grad_norm == pytest.approx(two.grad_norm, rel=1e-3)
        trained = dict(rank.export_weights())
        for name, tensor in reference.export_weights():
            torch.testing.assert_close(trained[name], tensor, atol=1e-4, rtol=0, msg=name)
        rank.save_optimizer_state(str(tmp_path / "optimizer"))  # per-rank shards, same layout
        rank.load_optimizer_state(str(tmp_path / "optimizer"))
        after = rank.train_step(batch, update, batch.num_sequences, _plan(batch, None))
        assert after.extra["step_skipped"] == 0.0
    finally:
        rank.close()


def test_bf16_keeps_float32_main_weights(tiny_model_dir: Path) -> None:
    """At lr 2e-6 a bf16 weight cannot take the update; the float32 main copy does, and the
    bf16 weights move once enough updates accumulate."""
    rank = _megatron(tiny_model_dir, dtype="bfloat16", distributed_optimizer=True, lr=2e-6)
    try:
        batch, update = _batch()
        start = {name: t.float() for name, t in rank.export_weights()}
        first = rank.train_step(batch, update, batch.num_sequences, _plan(batch, None))
        assert first.extra["step_skipped"] == 0.0 and torch.isfinite(torch.tensor(first.grad_norm))
        for _ in range(19):
            rank.train_step(batch, update, batch.num_sequences, _plan(batch, None))
        moved = {name: t.float() for name, t in rank.export_weights()}
        changed = sum(int((moved[n] != start[n]).sum()) for n in start)
        assert changed > 0  # 20 x 2e-6 accumulated in float32 reaches bf16's resolution
    finally:
        rank.close()


@pytest.mark.skipif(not _has_transformer_engine(), reason="needs Transformer Engine")
def test_transformer_engine_layers_with_thd_packing_match_the_torch_policy(
    tiny_model_dir: Path,
) -> None:
    """TE's fused layers, THD attention and grouped experts in bf16 against the torch policy in
    bf16: bf16 tolerances (the kernels differ), the same loss to 1e-2."""
    rank = _megatron(
        tiny_model_dir, layers="transformer_engine", dtype="bfloat16", distributed_optimizer=True
    )
    reference = _reference(tiny_model_dir, dtype="bfloat16")
    try:
        batch, update = _batch()
        got = rank.forward_logprobs(batch, None, _plan(batch, None))
        want = reference.forward_logprobs(batch)
        assert float((got.logprobs - want.logprobs).abs().mean()) < 2e-2
        one = rank.train_step(batch, update, batch.num_sequences, _plan(batch, update.token_mask))
        two = reference.train_step(batch, update)
        assert one.loss == pytest.approx(two.loss, abs=1e-2)
        assert one.grad_norm == pytest.approx(two.grad_norm, rel=5e-2)
        exported = dict(rank.export_weights())
        assert set(exported) == {name for name, _ in reference.export_weights()}
    finally:
        rank.close()
