"""The Megatron-Core policy's settings: parallel layout, MoE routing, packing, numerics, optimizer.

`policy.megatron` in a train config. The parallel sizes multiply to the number of policy ranks
(`policy.num_workers`): world = TP x CP x PP x DP, and independently for the expert layers
world = ETP x EP x PP x expert-DP (Megatron-Core's MoE parallel folding). Defaults are for one
rank on a CPU; the paper-scale layouts are in experiments/l15-30b-a3b/ and are sized by
`qwenlong plan`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from qwenlong.core.config import ConfigModel


class ParallelConfig(ConfigModel):
    """How the model is split over ranks. Not published by the paper; ours per layout."""

    tensor: int = Field(default=1, ge=1)
    """Tensor-parallel size (attention heads, MLP columns, vocabulary split over ranks)."""
    expert: int = Field(default=1, ge=1)
    """Expert-parallel size: the routed experts are divided among these ranks and tokens reach
    them through the token dispatcher's all-to-all (or all-gather)."""
    expert_tensor: int | None = Field(default=None, ge=1)
    """Tensor-parallel size inside each expert; None: the same as `tensor` (Megatron-Core's
    default). 1 keeps each expert whole on its rank, usual with many small experts."""
    context: int = Field(default=1, ge=1)
    """Context-parallel size: each sequence is cut into 2 x CP chunks, rank r holding chunks r
    and 2CP-1-r so causal attention work is balanced; keys and values are exchanged."""
    pipeline: int = Field(default=1, ge=1)
    """Pipeline-parallel size (layers split into stages)."""
    sequence_parallel: bool = False
    """Split the layer norms' and dropout's activations over the tensor-parallel group (needed
    for long inputs with TP > 1: activations per rank shrink by TP)."""

    @property
    def model_parallel(self) -> int:
        """Ranks one model replica of the dense layers spans: TP x CP x PP."""
        return self.tensor * self.context * self.pipeline

    def data_parallel(self, world: int) -> int:
        """The data-parallel size for `world` ranks (checked by `check_world`)."""
        return world // self.model_parallel

    def check_world(self, world: int) -> None:
        """Raise ValueError unless `world` ranks fit this layout for both dense and expert
        layers."""
        if world % self.model_parallel:
            raise ValueError(
                f"{world} policy ranks are not a multiple of tensor x context x pipeline = "
                f"{self.tensor} x {self.context} x {self.pipeline}"
            )
        expert_tensor = self.expert_tensor or self.tensor
        expert_span = expert_tensor * self.expert * self.pipeline
        if world % expert_span:
            raise ValueError(
                f"{world} policy ranks are not a multiple of expert_tensor x expert x pipeline "
                f"= {expert_tensor} x {self.expert} x {self.pipeline}"
            )

    @model_validator(mode="after")
    def _check(self) -> ParallelConfig:
        if self.sequence_parallel and self.tensor == 1:
            raise ValueError("sequence_parallel needs tensor > 1")
        return self


class MoEConfig(ConfigModel):
    """Routing and load balancing of the MoE layers."""

    token_dispatcher: Literal["alltoall", "allgather"] = "alltoall"
    """How tokens reach the experts' ranks: all-to-all (the usual choice with EP > 1) or
    all-gather. Megatron-Core's; "flex" (DeepEP) needs a GPU build and is left out."""
    aux_loss_coeff: float = Field(default=0.0, ge=0)
    """Coefficient of the auxiliary load-balancing loss (Switch-style, over the global batch).
    The paper is silent; 0 keeps the RL loss the paper's. Qwen3-MoE pre-training used 1e-3."""
    z_loss_coeff: float | None = Field(default=None, ge=0)
    """Router z-loss coefficient (penalises large router logits); None: off. Our default."""
    log_expert_load: bool = True
    """Log the share of routed tokens each expert received, per layer, every step."""


class MegatronPolicyConfig(ConfigModel):
    """The Megatron-Core policy backend (`policy.backend: megatron`)."""

    parallel: ParallelConfig = ParallelConfig()
    """The parallel layout."""
    moe: MoEConfig = MoEConfig()
    """MoE routing and load balancing."""
    lr: float = Field(default=2e-6, gt=0)
    """Adam learning rate, constant: the paper's 2e-6."""
    weight_decay: float = Field(default=0.01, ge=0)
    """Decoupled weight decay. The paper is silent; verl's actor default."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam moment decay rates. The paper is silent; the torch default."""
    eps: float = Field(default=1e-8, gt=0)
    """Adam epsilon. The torch default."""
    grad_clip: float | None = Field(default=1.0, gt=0)
    """Clip the global gradient norm (over every rank's shard) to this; None only measures it.
    verl's default."""
    micro_batch_tokens: int = Field(default=8192, ge=1)
    """Packed tokens per micro-batch (THD, no padding); a longer sequence runs alone. Ours."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Compute dtype. bfloat16 on GPU keeps float32 main weights and optimizer states in the
    distributed optimizer (at lr 2e-6 a bf16-only update rounds away); float32 on CPU."""
    distributed_optimizer: bool = False
    """Shard optimizer states (and float32 main weights) over data-parallel ranks (ZeRO-1);
    needs CUDA. On CPU the optimizer is plain float32 AdamW."""
    recompute: Literal["none", "selective", "full"] = "none"
    """Activation recomputation: none; selective (attention's core only); full (every layer's
    activations recomputed in the backward pass: least memory, ~30% more time)."""
    temperature: float = Field(default=0.7, gt=0)
    """Logits are divided by this before the log-softmax (filled from rollout.temperature)."""
    device: Literal["cpu", "cuda"] = "cpu"
    """"cpu" (gloo, the CPU compatibility layer) or "cuda" (NCCL)."""
    layers: Literal["local", "transformer_engine"] = "local"
    """Megatron's layer implementation. "local": plain torch, runs anywhere; packed sequences
    run as one row under a block-diagonal causal mask, context parallel through a key-gathering
    attention. "transformer_engine": TE's fused layers with flash attention over THD-packed
    sequences (no mask, per-sequence CP chunks, TE's ring exchange) and grouped expert GEMMs;
    needs CUDA and the gpu extra. Ours."""
    torch_threads: int | None = None
    """torch intra-op threads per rank; 1 when several ranks share few cores."""

    @model_validator(mode="after")
    def _check_device(self) -> MegatronPolicyConfig:
        if self.device == "cpu":
            gpu_only = {
                "dtype: bfloat16": self.dtype == "bfloat16",
                "distributed_optimizer: true": self.distributed_optimizer,
                "layers: transformer_engine": self.layers == "transformer_engine",
            }
            for setting, asked in gpu_only.items():
                if asked:
                    raise ValueError(f"{setting} needs device: cuda")
        return self
