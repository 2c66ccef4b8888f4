"""The HF -> Megatron TransformerConfig mapping: field by field, routing equal to HF's, and a
clear refusal of what the Megatron model would get wrong."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, Qwen3Config, Qwen3MoeConfig

from qwenlong.rl.megatron.config import MegatronPolicyConfig, MoEConfig, ParallelConfig
from qwenlong.rl.megatron.model_config import transformer_config


def _moe_config(**overrides: object) -> Qwen3MoeConfig:
    fields: dict[str, object] = {
        "vocab_size": 512,
        "hidden_size": 64,
        "intermediate_size": 96,
        "moe_intermediate_size": 32,
        "num_hidden_layers": 3,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "head_dim": 24,
        "num_experts": 16,
        "num_experts_per_tok": 4,
        "norm_topk_prob": True,  # Qwen3-30B-A3B's (transformers defaults to False)
        "rms_norm_eps": 1e-5,
        "rope_parameters": {"rope_type": "default", "rope_theta": 123456.0},
    }
    return Qwen3MoeConfig(**{**fields, **overrides})


def test_maps_every_field_of_qwen3_moe() -> None:
    parallel = ParallelConfig(tensor=2, expert=4, expert_tensor=1, sequence_parallel=True)
    moe = MoEConfig(token_dispatcher="allgather", aux_loss_coeff=1e-3, z_loss_coeff=1e-4)
    tc = transformer_config(_moe_config(), parallel, moe, "bfloat16", "full")
    expected = {
        "num_layers": 3,
        "hidden_size": 64,
        "num_attention_heads": 8,
        "num_query_groups": 2,
        "kv_channels": 24,
        "ffn_hidden_size": 96,
        "moe_ffn_hidden_size": 32,
        "num_moe_experts": 16,
        "moe_router_topk": 4,
        "moe_router_pre_softmax": False,
        "moe_router_score_function": "softmax",
        "qk_layernorm": True,
        "normalization": "RMSNorm",
        "layernorm_epsilon": 1e-5,
        "add_bias_linear": False,
        "gated_linear_unit": True,
        "activation_func": F.silu,
        "tensor_model_parallel_size": 2,
        "expert_model_parallel_size": 4,
        "expert_tensor_parallel_size": 1,
        "sequence_parallel": True,
        "moe_token_dispatcher_type": "allgather",
        "moe_aux_loss_coeff": 1e-3,
        "moe_router_load_balancing_type": "global_aux_loss",
        "moe_z_loss_coeff": 1e-4,
        "moe_grouped_gemm": False,
        "recompute_granularity": "full",
        "recompute_method": "uniform",
        "params_dtype": torch.bfloat16,
        "bf16": True,
    }
    assert {name: getattr(tc, name) for name in expected} == expected


def test_defaults_are_one_rank_float32_without_aux_loss() -> None:
    tc = transformer_config(_moe_config(), ParallelConfig(), MoEConfig(), "float32", "selective")
    assert (tc.tensor_model_parallel_size, tc.expert_tensor_parallel_size) == (1, 1)
    assert tc.moe_router_load_balancing_type == "none"
    assert (tc.params_dtype, tc.bf16) == (torch.float32, False)
    assert (tc.recompute_granularity, tc.recompute_modules) == ("selective", ["core_attn"])


def test_qwen3_dense_has_no_experts() -> None:
    tc = transformer_config(
        Qwen3Config(hidden_size=64, intermediate_size=96, num_attention_heads=4, head_dim=16),
        ParallelConfig(),
        MoEConfig(),
        "float32",
        "none",
    )
    assert (tc.num_moe_experts, tc.ffn_hidden_size, tc.kv_channels) == (None, 96, 16)


@pytest.mark.parametrize("norm_topk_prob", [True, False])
def test_routing_matches_hf(norm_topk_prob: bool) -> None:
    from megatron.core.transformer.moe.moe_utils import topk_routing_with_score_function
    from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeTopKRouter

    hf_config = _moe_config(norm_topk_prob=norm_topk_prob)
    tc = transformer_config(hf_config, ParallelConfig(), MoEConfig(), "float32", "none")
    gen = torch.Generator().manual_seed(0)
    router = Qwen3MoeTopKRouter(hf_config)
    router.weight.data = torch.randn(16, 64, generator=gen)
    hidden = torch.randn(50, 64, generator=gen)
    logits, hf_weights, hf_experts = router(hidden)
    probs, routing_map = topk_routing_with_score_function(
        logits,
        tc.moe_router_topk,
        use_pre_softmax=tc.moe_router_pre_softmax,
        score_function=tc.moe_router_score_function,
    )
    expected = torch.zeros(50, 16).scatter(1, hf_experts, hf_weights)
    assert torch.equal(routing_map, expected > 0)
    torch.testing.assert_close(probs, expected, atol=1e-7, rtol=0)


@pytest.mark.parametrize(
    ("hf_config", "message"),
    [
        (LlamaConfig(), "not 'llama'"),
        (_moe_config(mlp_only_layers=[1]), "mlp_only_layers"),
        (_moe_config(decoder_sparse_step=2), "decoder_sparse_step"),
        (_moe_config(attention_bias=True), "attention_bias"),
        (
            _moe_config(rope_parameters={"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0}),
            "rope_type 'yarn'",
        ),
    ],
)
def test_refuses_what_megatron_would_get_wrong(hf_config: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        transformer_config(hf_config, ParallelConfig(), MoEConfig(), "float32", "none")


@pytest.mark.parametrize(
    "setting",
    [
        {"dtype": "bfloat16"},
        {"distributed_optimizer": True},
        {"layers": "transformer_engine"},
    ],
)
def test_gpu_only_settings_are_refused_on_cpu(setting: dict) -> None:
    """bf16, the distributed optimizer and TE layers need CUDA: one line naming the setting."""
    with pytest.raises(ValueError, match="needs device: cuda"):
        MegatronPolicyConfig(**setting)
    MegatronPolicyConfig(device="cuda", **setting)


def test_the_optimizer_and_row_format_follow_the_config() -> None:
    from qwenlong.rl.megatron.model import LAYER_SPECS
    from qwenlong.rl.megatron.optimizer import OPTIMIZERS, optimizer_name
    from qwenlong.rl.megatron.row_formats import ROW_FORMATS

    assert optimizer_name(MegatronPolicyConfig()) == "local"
    gpu = MegatronPolicyConfig(device="cuda", dtype="bfloat16", distributed_optimizer=True)
    assert optimizer_name(gpu) == "distributed"
    assert OPTIMIZERS.get("distributed").__name__ == "DistributedAdam"
    assert set(ROW_FORMATS) == set(LAYER_SPECS.names()) == {"local", "transformer_engine"}
