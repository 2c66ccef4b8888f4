"""The Megatron-Core `TransformerConfig` of a Qwen3(-MoE) HF config: every field in one place.

Each setting names the HF config field it comes from, so a reader checking that the Megatron
model is the HF model reads one function. Anything the Megatron model could express differently
from transformers' Qwen3-MoE (a dense layer among MoE ones, sliding windows, RoPE scaling,
attention biases) is refused with a ValueError rather than approximated: the policy's log-probs
must be the rollout engine's.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from megatron.core.transformer.transformer_config import TransformerConfig

from qwenlong.rl.megatron.config import MoEConfig, ParallelConfig

SUPPORTED = ("qwen3_moe", "qwen3")
"""HF `model_type`s this mapping and the converter cover."""

_RECOMPUTE: dict[str, dict[str, Any]] = {
    "none": {},
    # core attention only: its activations are the big ones, its FLOPs the cheap ones.
    "selective": {"recompute_granularity": "selective", "recompute_modules": ["core_attn"]},
    # every layer's input is kept and the layer rerun in backward, one layer per unit.
    "full": {
        "recompute_granularity": "full",
        "recompute_method": "uniform",
        "recompute_num_layers": 1,
    },
}


def rope_theta(hf_config: Any) -> float:
    """The RoPE base: `rope_parameters["rope_theta"]` (transformers 5) or `rope_theta`."""
    params = getattr(hf_config, "rope_parameters", None) or {}
    theta = params.get("rope_theta", getattr(hf_config, "rope_theta", None))
    if theta is None:
        raise ValueError(f"{hf_config.model_type} config has no rope_theta")
    return float(theta)


def check_supported(hf_config: Any) -> None:
    """Raise ValueError naming the first field of `hf_config` that the Megatron model would get
    wrong (or the architecture, when it is not Qwen3 / Qwen3-MoE)."""
    model_type = getattr(hf_config, "model_type", None)
    if model_type not in SUPPORTED:
        raise ValueError(
            f"Megatron backend supports HF model_type {' or '.join(SUPPORTED)}, not {model_type!r}"
        )
    params = getattr(hf_config, "rope_parameters", None) or {}
    rope_type = params.get("rope_type", "default")
    checks = [
        (rope_type == "default", f"rope_type {rope_type!r} (only unscaled RoPE)"),
        (not getattr(hf_config, "attention_bias", False), "attention_bias true"),
        (not getattr(hf_config, "use_sliding_window", False), "use_sliding_window true"),
        (hf_config.hidden_act == "silu", f"hidden_act {hf_config.hidden_act!r} (only silu)"),
    ]
    if model_type == "qwen3_moe":
        checks += [
            (not hf_config.mlp_only_layers, "mlp_only_layers (dense layers among MoE ones)"),
            (hf_config.decoder_sparse_step == 1, "decoder_sparse_step != 1"),
        ]
    for ok, what in checks:
        if not ok:
            raise ValueError(f"Megatron backend cannot reproduce {model_type} with {what}")


def transformer_config(
    hf_config: Any,
    parallel: ParallelConfig,
    moe: MoEConfig,
    dtype: Literal["float32", "bfloat16"],
    recompute: Literal["none", "selective", "full"],
    grouped_experts: bool = False,
) -> TransformerConfig:
    """The Megatron-Core config of the HF model `hf_config` under the given layout and numerics.

    Routing: HF Qwen3-MoE takes a softmax over all experts, keeps the top k and, with
    `norm_topk_prob`, divides by their sum: that is a softmax over the top-k logits, which is
    Megatron's `moe_router_pre_softmax=False` (top-k of the logits, then softmax). Without
    `norm_topk_prob` HF keeps the unnormalised probabilities: `moe_router_pre_softmax=True`.
    """
    check_supported(hf_config)
    is_moe = hf_config.model_type == "qwen3_moe"
    params_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    moe_fields: dict[str, Any] = {}
    if is_moe:
        moe_fields = {
            "num_moe_experts": hf_config.num_experts,  # num_experts
            "moe_ffn_hidden_size": hf_config.moe_intermediate_size,  # moe_intermediate_size
            "moe_router_topk": hf_config.num_experts_per_tok,  # num_experts_per_tok
            "moe_router_score_function": "softmax",  # Qwen3MoeTopKRouter: softmax
            "moe_router_pre_softmax": not hf_config.norm_topk_prob,  # norm_topk_prob
            # Routing in float32 also in bf16 runs: a bf16 near-tie flips an expert. Ours.
            "moe_router_dtype": "fp32",
            "moe_token_dispatcher_type": moe.token_dispatcher,
            "moe_aux_loss_coeff": moe.aux_loss_coeff,
            "moe_router_load_balancing_type": "global_aux_loss" if moe.aux_loss_coeff else "none",
            "moe_z_loss_coeff": moe.z_loss_coeff,
            # The local spec's SequentialMLP runs the experts one by one; TE's spec takes
            # `grouped_experts` (one grouped GEMM over all local experts).
            "moe_grouped_gemm": grouped_experts,
            "moe_permute_fusion": False,  # a TE kernel
        }
    return TransformerConfig(
        num_layers=hf_config.num_hidden_layers,  # num_hidden_layers
        hidden_size=hf_config.hidden_size,  # hidden_size
        num_attention_heads=hf_config.num_attention_heads,  # num_attention_heads
        num_query_groups=hf_config.num_key_value_heads,  # num_key_value_heads (GQA)
        kv_channels=hf_config.head_dim,  # head_dim (not hidden_size / heads in Qwen3)
        # intermediate_size: the dense MLP's width (unused by MoE layers, which read
        # moe_ffn_hidden_size; Qwen3-MoE's config carries both).
        ffn_hidden_size=hf_config.intermediate_size,
        qk_layernorm=True,  # Qwen3's q_norm / k_norm, RMSNorm over head_dim
        normalization="RMSNorm",  # Qwen3RMSNorm
        layernorm_epsilon=hf_config.rms_norm_eps,  # rms_norm_eps
        add_bias_linear=False,  # no biases anywhere
        add_qkv_bias=False,  # attention_bias (checked false)
        gated_linear_unit=True,  # gate_proj / up_proj
        activation_func=F.silu,  # hidden_act silu
        hidden_dropout=0.0,  # Qwen3 has no residual dropout
        attention_dropout=hf_config.attention_dropout,  # attention_dropout
        rotary_interleaved=False,  # HF rotate_half: halves, not even/odd pairs
        **moe_fields,
        tensor_model_parallel_size=parallel.tensor,
        pipeline_model_parallel_size=parallel.pipeline,
        context_parallel_size=parallel.context,
        expert_model_parallel_size=parallel.expert,
        expert_tensor_parallel_size=parallel.expert_tensor or parallel.tensor,
        sequence_parallel=parallel.sequence_parallel,
        **_RECOMPUTE[recompute],
        params_dtype=params_dtype,
        pipeline_dtype=params_dtype,  # activations sent between pipeline stages
        bf16=dtype == "bfloat16",
        # Weights come from an HF checkpoint right after the build: skip Megatron's random init
        # (minutes for 30B) and build on the CPU; `build_model` moves the model to its device.
        use_cpu_initialization=True,
        perform_initialization=False,
    )
