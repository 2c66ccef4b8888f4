"""Megatron-Core's process groups and the Qwen3-MoE `GPTModel` of one policy rank.

Megatron-Core keeps its tensor / pipeline / context / expert groups in module globals
(`parallel_state`), so `init_parallel` must run in every rank before `build_model`, and
`destroy_parallel` before a process builds a model under another layout. `build_model` takes
the layer spec `policy.megatron.layers` names: Megatron's local (plain torch) spec, which runs
anywhere, CPU included, or Transformer Engine's (GPU), which fuses the input norms into the
following linear layers and groups the experts' GEMMs; the converter maps both spellings of
the parameter names (qwenlong.rl.megatron.weight_layout.local_spec_name).
"""

from __future__ import annotations

import datetime
from typing import Any

import torch
import torch.distributed as dist
from megatron.core import parallel_state
from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
from megatron.core.models.gpt.gpt_model import GPTModel
from megatron.core.tensor_parallel.random import model_parallel_cuda_manual_seed
from megatron.core.transformer.spec_utils import ModuleSpec

from qwenlong.core.registry import Registry
from qwenlong.rl.megatron.config import MegatronPolicyConfig, ParallelConfig
from qwenlong.rl.megatron.cpu_compat import enable_cpu_megatron
from qwenlong.rl.megatron.model_config import rope_theta, transformer_config

_OWN_PROCESS_GROUP = False
"""Whether `init_parallel` created the default process group (so `destroy_parallel` ends it)."""


def init_parallel(
    parallel: ParallelConfig,
    world_size: int,
    rank: int,
    init_method: str,
    *,
    device: str = "cpu",
    seed: int = 0,
    timeout_minutes: int = 30,
) -> None:
    """Join the process group (gloo on CPU, NCCL on GPU) unless already in one, create
    Megatron's model-parallel groups for `parallel`, and seed its model-parallel RNG states.

    On CPU this first applies `cpu_compat` (the seeding itself reads CUDA RNG states upstream).
    `seed` is the same on every rank; Megatron derives the tensor- and expert-parallel states
    from it and each rank's coordinates.
    """
    global _OWN_PROCESS_GROUP
    parallel.check_world(world_size)
    if device == "cpu":
        enable_cpu_megatron()
    if not dist.is_initialized():
        dist.init_process_group(
            backend="gloo" if device == "cpu" else "nccl",
            init_method=init_method,
            world_size=world_size,
            rank=rank,
            timeout=datetime.timedelta(minutes=timeout_minutes),
        )
        _OWN_PROCESS_GROUP = True
    elif (dist.get_world_size(), dist.get_rank()) != (world_size, rank):
        raise ValueError(
            f"process group already joined as rank {dist.get_rank()} of "
            f"{dist.get_world_size()}, not {rank} of {world_size}"
        )
    parallel_state.initialize_model_parallel(
        tensor_model_parallel_size=parallel.tensor,
        pipeline_model_parallel_size=parallel.pipeline,
        context_parallel_size=parallel.context,
        expert_model_parallel_size=parallel.expert,
        expert_tensor_parallel_size=parallel.expert_tensor or parallel.tensor,
        distributed_timeout_minutes=timeout_minutes,
        # Megatron's extra gloo groups serve its distributed optimizer's CPU paths, unused here.
        create_gloo_process_groups=False,
    )
    # The data-parallel ("default") stream; on CPU that is the CPU generator, which the
    # upstream seeding (torch.cuda.manual_seed) leaves alone.
    torch.manual_seed(seed)
    model_parallel_cuda_manual_seed(seed)


def destroy_parallel() -> None:
    """Drop Megatron's groups, and the process group when `init_parallel` created it."""
    global _OWN_PROCESS_GROUP
    parallel_state.destroy_model_parallel()
    if _OWN_PROCESS_GROUP and dist.is_initialized():
        dist.destroy_process_group()
    _OWN_PROCESS_GROUP = False


def build_model(hf_config: Any, config: MegatronPolicyConfig) -> GPTModel:
    """This rank's `GPTModel` of the HF model `hf_config` (its pipeline stage's layers, its
    tensor-parallel shards, its experts), weights uninitialised: load them with
    `convert.load_hf_into_megatron`. `init_parallel` must have run with `config.parallel`.
    """
    if not parallel_state.model_parallel_is_initialized():
        raise RuntimeError("build_model needs init_parallel first (Megatron's groups)")
    if config.device == "cpu":
        enable_cpu_megatron()
    tensor = config.parallel.tensor
    if hf_config.vocab_size % tensor:
        # Megatron-Core splits the vocabulary evenly; padding it would add logits the
        # rollout engine does not have, which the log-probs would then have to mask.
        raise ValueError(
            f"vocab_size {hf_config.vocab_size} is not a multiple of tensor-parallel size {tensor}"
        )
    grouped = config.layers == "transformer_engine"
    tc = transformer_config(
        hf_config, config.parallel, config.moe, config.dtype, config.recompute, grouped
    )
    spec = LAYER_SPECS.get(config.layers)(tc.num_moe_experts, config.parallel.context)
    model = GPTModel(
        config=tc,
        transformer_layer_spec=spec,
        vocab_size=hf_config.vocab_size,  # vocab_size
        max_sequence_length=hf_config.max_position_embeddings,  # max_position_embeddings
        pre_process=parallel_state.is_pipeline_first_stage(),
        post_process=parallel_state.is_pipeline_last_stage(),
        parallel_output=True,  # logits stay split over the vocabulary (vocab-parallel log-probs)
        share_embeddings_and_output_weights=hf_config.tie_word_embeddings,  # tie_word_embeddings
        position_embedding_type="rope",
        rotary_base=rope_theta(hf_config),  # rope_parameters.rope_theta
    )
    return model.to(config.device)


LAYER_SPECS: Registry[Any] = Registry("policy.megatron.layers")
"""{name: (experts or None, CP size) -> the transformer layer's ModuleSpec}."""


@LAYER_SPECS.register("local")
def local_layer_spec(experts: int | None, context: int) -> ModuleSpec:
    """Megatron's plain-torch layers: experts one by one (SequentialMLP), attention with an
    explicit mask. Megatron's local attention refuses context parallel (only Transformer
    Engine's exchanges keys and values), so under CP a stand-in gathers them over the CP group
    (qwenlong.rl.megatron.cp_attention)."""
    spec = get_gpt_layer_local_spec(
        num_experts=experts, moe_grouped_gemm=False, qk_layernorm=True, normalization="RMSNorm"
    )
    if context > 1:
        from qwenlong.rl.megatron.cp_attention import context_parallel_core_attention

        spec.submodules.self_attention.submodules.core_attention = context_parallel_core_attention()
    return spec


@LAYER_SPECS.register("transformer_engine")
def transformer_engine_layer_spec(experts: int | None, context: int) -> ModuleSpec:
    """Transformer Engine's layers: fused norm + linear, flash attention over THD-packed
    sequences with its own context-parallel exchange, one grouped GEMM over the local experts."""
    from megatron.core.models.gpt.gpt_layer_specs import (
        get_gpt_layer_with_transformer_engine_spec,
    )

    del context  # TE's attention takes context parallel itself
    return get_gpt_layer_with_transformer_engine_spec(
        num_experts=experts, moe_grouped_gemm=experts is not None, qk_layernorm=True
    )
