"""What every policy sends a rollout engine: HF's on-disk tensors, exactly.

An engine that reads a checkpoint (vLLM, a fresh transformers model) knows the on-disk names,
shapes and dtypes and nothing else, so each policy backend's export must equal the tiny
model's safetensors in all three; a weight stream is cut into buckets no larger than the bound;
and a model rebuilt from the export computes the original's logits. The parallel layouts'
exports are checked the same way in test_megatron_parallel_policy.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qwenlong.core.safetensors_io import DTYPES, read_specs
from qwenlong.rl.losses import LossConfig
from qwenlong.rl.megatron.config import MegatronPolicyConfig
from qwenlong.rl.megatron.policy import MegatronPolicyRank
from qwenlong.rl.torch_policy import TorchPolicy, TorchPolicyConfig
from qwenlong.rl.weight_sync import weight_chunks


def assert_on_disk_layout(exported: list[tuple[str, torch.Tensor]], model_dir: Path) -> None:
    """Names (each once), shapes and dtypes equal the safetensors headers."""
    specs = read_specs(model_dir)
    names = [name for name, _ in exported]
    assert len(names) == len(set(names)) and set(names) == set(specs)
    for name, tensor in exported:
        assert tuple(tensor.shape) == specs[name].shape, name
        assert tensor.dtype == DTYPES[specs[name].dtype], name


def test_the_torch_policy_exports_the_checkpoints_tensors(tiny_model_dir: Path) -> None:
    policy = TorchPolicy(tiny_model_dir, TorchPolicyConfig())
    assert_on_disk_layout(list(policy.export_weights()), tiny_model_dir)


def test_the_megatron_policy_exports_the_checkpoints_tensors(tiny_model_dir: Path) -> None:
    torch.set_num_threads(1)
    rank = MegatronPolicyRank(str(tiny_model_dir), MegatronPolicyConfig(), LossConfig(), 0, 1)
    rank.setup(None)
    try:
        assert_on_disk_layout(list(rank.export_weights()), tiny_model_dir)
    finally:
        rank.close()


@pytest.mark.parametrize("bound", [1, 4096, 70_000, 10**9])
def test_buckets_stay_under_the_bound(tiny_model_dir: Path, bound: int) -> None:
    policy = TorchPolicy(tiny_model_dir, TorchPolicyConfig())
    weights = list(policy.export_weights())
    chunks = list(weight_chunks(iter(weights), bound))
    assert [name for chunk, _ in chunks for name, _ in chunk] == [name for name, _ in weights]
    assert [last for _, last in chunks] == [False] * (len(chunks) - 1) + [True]
    for chunk, _ in chunks:
        size = sum(t.numel() * t.element_size() for _, t in chunk)
        assert size <= bound or len(chunk) == 1  # a tensor larger than the bound goes alone


def test_a_model_rebuilt_from_the_export_computes_the_same_logits(tiny_model_dir: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    from qwenlong.core.hf_weights import load_hf_weights

    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    policy = TorchPolicy(tiny_model_dir, TorchPolicyConfig())
    torch.manual_seed(1)  # random weights, replaced by the export; buffers (RoPE) built as usual
    rebuilt = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(tiny_model_dir))
    assert not torch.equal(rebuilt.lm_head.weight, original.lm_head.weight)
    load_hf_weights(rebuilt, policy.export_weights(), "rebuilt model")
    ids = torch.randint(5, 2000, (1, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = original(input_ids=ids).logits
        got = rebuilt.eval()(input_ids=ids).logits
    assert torch.equal(got, want)
