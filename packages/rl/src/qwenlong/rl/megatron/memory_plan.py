"""Memory per policy rank and compute per RL step of a Megatron layout: arithmetic only.

`qwenlong plan` prints this before a run starts, so a layout that cannot fit is found on a
laptop, not after a queue and a CUDA out-of-memory error. Estimates per GPU on the worst pipeline
stage (with PP > 1 each component's worst stage is summed: an upper bound), each figure's rule
and source on its `MemoryPlan` field; check them against `torch.cuda.max_memory_allocated`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qwenlong.core.errors import ConfigError
from qwenlong.rl.megatron.config import MegatronPolicyConfig, ParallelConfig

GIB = 2**30

GPU_MEMORY_GIB: dict[str, float] = {"H100-80GB": 81559 / 1024, "H200-141GB": 143771 / 1024}
"""Total memory per GPU as the driver reports it (nvidia-smi: 81559 and 143771 MiB), a little
under the marketed 80 and 141 GB."""

OVERHEAD_GIB = 4.0
"""CUDA context (~0.5 GiB), NCCL buffers of the TP/CP/EP/DP/PP communicators (1-2 GiB) and
allocator slack. Ours: a round figure, not measured."""


@dataclass(frozen=True)
class ModelShape:
    """The numbers of an HF Qwen3-MoE config.json that memory and FLOPs depend on.

    Fields and their config keys: vocab (vocab_size), hidden (hidden_size), layers
    (num_hidden_layers), heads (num_attention_heads), kv_heads (num_key_value_heads), head_dim
    (head_dim, else hidden / heads), ffn (moe_intermediate_size: an expert's SwiGLU width), experts
    (num_experts, or num_local_experts), experts_per_token (num_experts_per_tok), tied
    (tie_word_embeddings). Every layer must be MoE, as in Qwen3-30B-A3B; dense models are refused.
    """

    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    experts: int
    experts_per_token: int
    tied: bool

    @classmethod
    def from_hf(cls, config: Mapping[str, Any], source: str) -> ModelShape:
        """Read an HF config.json dict; `source` names the file in errors."""
        experts = config.get("num_experts") or config.get("num_local_experts")
        if not experts or config.get("mlp_only_layers") or config.get("decoder_sparse_step", 1) > 1:
            raise ConfigError(f"{source}: not a MoE model with every layer MoE; cannot plan it")
        keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads")
        keys += ("num_key_value_heads", "moe_intermediate_size", "num_experts_per_tok")
        for key in keys:
            if not isinstance(config.get(key), int):
                raise ConfigError(f"{source}: {key} is missing or not an integer")
        vocab, hidden, layers, heads, kv_heads, ffn, top_k = (config[key] for key in keys)
        head_dim = config.get("head_dim") or hidden // heads
        tied = bool(config.get("tie_word_embeddings", False))
        return cls(vocab, hidden, layers, heads, kv_heads, head_dim, ffn, experts, top_k, tied)

    @property
    def attention_matrices(self) -> int:
        """q, k, v, o projections of one layer (no biases in Qwen3): split over TP."""
        return 2 * self.hidden * (self.heads + self.kv_heads) * self.head_dim

    @property
    def layer_replicated(self) -> int:
        """Two RMSNorms, the q/k norms and the router of one layer: whole on every TP rank."""
        return 2 * self.hidden + 2 * self.head_dim + self.hidden * self.experts

    @property
    def expert(self) -> int:
        """One expert's gate, up and down matrices."""
        return 3 * self.hidden * self.ffn

    @property
    def total_params(self) -> int:
        """All parameters, as the HF model's numel sum counts them."""
        layer = self.attention_matrices + self.layer_replicated + self.experts * self.expert
        outputs = 1 if self.tied else 2
        return self.layers * layer + outputs * self.vocab * self.hidden + self.hidden

    @property
    def active_params(self) -> int:
        """Parameters one token touches: the routed experts only (RECIPE.md's "3.3B active")."""
        idle = self.layers * (self.experts - self.experts_per_token) * self.expert
        return self.total_params - idle

    @property
    def matmul_params(self) -> int:
        """Active parameters in matrix products: not the embedding lookup nor the norms, but
        the output layer (tied or not) and the router."""
        routed = self.hidden * self.experts + self.experts_per_token * self.expert
        return self.layers * (self.attention_matrices + routed) + self.vocab * self.hidden

    def flops_per_token(self, sequence: int) -> float:
        """Training FLOPs (forward and backward) per token, PaLM's appendix B (Chowdhery et al.
        2022): 6 x matmul_params + 12 x layers x heads x head_dim x sequence. The attention
        term counts the full s x s matrix; causal masking halves the work flash attention does.
        Its width is heads x head_dim (4096 for Qwen3-30B-A3B), not hidden_size (2048)."""
        attention = 12 * self.layers * self.heads * self.head_dim * sequence
        return 6 * self.matmul_params + attention


def layer_activation_bytes(shape: ModelShape, megatron: MegatronPolicyConfig, tokens: int) -> float:
    """Bytes one rank keeps for the backward pass of one layer, for a micro-batch of `tokens`.

    After Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer
    Models", Sec. 4.1: s·b·h·(34 + 5·a·s/h) bytes for GPT), re-derived for Qwen3-MoE: 2-byte
    bf16 activations; no dropout (attention_dropout 0), so no masks; flash attention keeps fp32
    softmax statistics instead of the 5·a·s² scores, so selective recompute saves nothing more
    and is counted as none. Per token, with q, kv heads of width d, hidden h, expert width f,
    E experts, top-k:

    - attention, split over TP by heads: pre-norm q, k (q+kv)·d, v kv·d, normed and rotated
      q, k (q+kv)·d, output q·d, all x 2 bytes, plus 4·q for the softmax statistics:
      6·d·(q+kv) + 4q;
    - split over TP only with sequence parallel: two RMSNorm inputs 4h, the QKV input 2h, the
      router input 2h, and 4E for fp32 router scores: 8h + 4E;
    - experts, per routed copy: permuted input 2h, gate and up outputs 4f, down input 2f, down
      output 2h: 4h + 6f, the f terms split over ETP. With sequence parallel the ETP group
      gathers its ranks' tokens, so a rank holds k x n/CP x ETP/TP copies (k x n/CP without).

    A rank holds n/CP tokens (context parallel cuts every sequence). Routing is assumed
    balanced; under load imbalance the busiest expert rank holds more.
    """
    p = megatron.parallel
    tp, etp = p.tensor, p.expert_tensor or p.tensor
    tokens_cp = tokens / p.context
    heads_part = 6 * shape.head_dim * (shape.heads + shape.kv_heads) + 4 * shape.heads
    shared_part = 8 * shape.hidden + 4 * shape.experts
    per_token = heads_part / tp + shared_part / (tp if p.sequence_parallel else 1)
    copies = tokens_cp * (etp / tp if p.sequence_parallel else 1) * shape.experts_per_token
    return tokens_cp * per_token + copies * (4 * shape.hidden + 6 * shape.ffn / etp)


@dataclass(frozen=True)
class MemoryPlan:
    """Per-GPU memory (GiB) and per-step compute of one layout, model and stage."""

    gpu: str
    """A key of GPU_MEMORY_GIB."""
    vllm_share: float
    """Share of each GPU left to colocated rollout engines (vLLM's gpu_memory_utilization);
    fits if total <= (1 - share) x capacity. Ours to choose per run."""
    layout: str
    """Parallel sizes, numerics, and the data-parallel sizes the optimizer is sharded over."""
    model: ModelShape
    params_per_gpu: int
    """Attention matrices / TP; norms and router whole on every TP rank; embedding and output
    layer / TP (on one rank when PP = 1, first and last stage otherwise); experts / (EP x ETP);
    L / PP layers. Megatron's vocabulary padding (to 128 x TP) is ignored: < 0.1%."""
    micro_batch_tokens: int
    """Tokens whose activations are held: the longest sequence, or the packing budget (packed
    tokens per micro-batch, before the CP split) if larger."""
    params_gib: float
    """params_per_gpu x 2 bytes (bf16) or 4 (fp32)."""
    grads_gib: float
    """params_per_gpu x 4: Megatron accumulates and reduces a bf16 model's gradients in fp32
    main-grad buffers, which the distributed optimizer (ZeRO-1) does not shard."""
    optimizer_gib: float
    """Adam's two fp32 moments (+ fp32 main weights under bf16): 12 or 8 bytes a parameter, the
    dense part sharded over DP x CP = world / (TP x PP) and experts over world / (ETP x EP x PP).
    With params and grads: Megatron-Core's Distributed Optimizer table, 18 (6 + 12/d) bytes."""
    activations_gib: float
    """One micro-batch (`layer_activation_bytes`) in every layer (1F1B keeps PP micro-batches of
    L/PP layers on the first stage, so PP does not shrink it); with full recompute only each
    layer's input (2h bytes a token, / TP with SP, / CP) plus one layer rebuilt in its backward."""
    logits_gib: float
    """fp32 logits of the micro-batch for the loss: n / CP x vocab / TP x 4 bytes."""
    overhead_gib: float
    """OVERHEAD_GIB unless given."""
    sequence: int
    """Sequence length of the FLOPs' attention term: the stage's input + output limits."""
    flops_per_token: float
    """`ModelShape.flops_per_token` at `sequence`."""
    tokens_per_step: int
    """Prompts x G x (max input + max output): an upper bound, every response at its limit."""

    @property
    def components(self) -> dict[str, float]:
        """The per-GPU GiB figures, in table order; their sum is `total_gib`."""
        names = ("params", "gradients", "optimizer", "activations", "logits", "overhead")
        figures = (self.params_gib, self.grads_gib, self.optimizer_gib, self.activations_gib)
        return dict(zip(names, (*figures, self.logits_gib, self.overhead_gib), strict=True))

    @property
    def total_gib(self) -> float:
        return sum(self.components.values())

    @property
    def budget_gib(self) -> float:
        """What training may use: (1 - vllm_share) x the GPU's memory."""
        return (1 - self.vllm_share) * GPU_MEMORY_GIB[self.gpu]

    @property
    def fits(self) -> bool:
        return self.total_gib <= self.budget_gib

    def as_table(self) -> list[str]:
        """Aligned text lines, one figure each."""
        m, over = self.model, self.total_gib - self.budget_gib
        counts = f"{m.total_params / 1e9:.2f}B total, {m.active_params / 1e9:.2f}B active"
        budget = f"(1 - {self.vllm_share:g}) x {GPU_MEMORY_GIB[self.gpu]:.1f} GiB {self.gpu}"
        attention = f"12 x {m.layers} x {m.heads * m.head_dim} x {self.sequence:,}"
        rows = [
            ("layout", self.layout),
            ("parameters", f"{counts}, {self.params_per_gpu / 1e9:.3f}B on each GPU"),
            ("micro-batch", f"{self.micro_batch_tokens:,} tokens"),
            *((name, f"{gib:8.2f} GiB") for name, gib in self.components.items()),
            ("total", f"{self.total_gib:8.2f} GiB"),
            ("budget", f"{self.budget_gib:8.2f} GiB = {budget}"),
            ("fits", "yes" if self.fits else f"no, {over:.1f} GiB over"),
            ("FLOPs/token", f"{self.flops_per_token:.3e} = 6 x {m.matmul_params:,} + {attention}"),
            ("tokens/step", f"{self.tokens_per_step:,} (upper bound: every response at its limit)"),
            ("FLOPs/step", f"{self.flops_per_token * self.tokens_per_step:.3e}"),
        ]
        width = max(len(label) for label, _ in rows)
        return [f"{label:<{width}}  {value}" for label, value in rows]


def plan_memory(
    shape: ModelShape,
    megatron: MegatronPolicyConfig,
    world: int,
    *,
    sequence: int,
    tokens_per_step: int,
    gpu: str = "H100-80GB",
    vllm_share: float = 0.0,
    overhead_gib: float = OVERHEAD_GIB,
) -> MemoryPlan:
    """Plan `world` policy ranks training `shape` on sequences up to `sequence` tokens. A
    ConfigError if the layout does not divide `world`, the heads, KV heads, experts, layers or
    expert width, or the GPU is unknown."""
    p = megatron.parallel
    tp, etp, pp = p.tensor, p.expert_tensor or p.tensor, p.pipeline
    _check(shape, p, world, gpu, vllm_share)
    layers = shape.layers // pp
    outputs = 1 if (shape.tied or pp > 1) else 2
    dense = layers * (shape.attention_matrices // tp + shape.layer_replicated)
    dense += outputs * shape.vocab * shape.hidden // tp + shape.hidden
    experts = layers * shape.experts * shape.expert // (p.expert * etp)
    bf16, shard = megatron.dtype == "bfloat16", megatron.distributed_optimizer
    dense_dp, expert_dp = world // (tp * pp), world // (etp * p.expert * pp)
    adam = (12 if bf16 else 8) / GIB
    optimizer = adam * (dense / (dense_dp if shard else 1) + experts / (expert_dp if shard else 1))
    tokens = max(megatron.micro_batch_tokens, sequence)
    layer = layer_activation_bytes(shape, megatron, tokens)
    activations = shape.layers * layer
    if megatron.recompute == "full":
        inputs = tokens / p.context / (tp if p.sequence_parallel else 1) * 2 * shape.hidden
        activations = shape.layers * inputs + layer
    sp, sharded = " SP" if p.sequence_parallel else "", "sharded" if shard else "not sharded"
    return MemoryPlan(
        gpu=gpu,
        vllm_share=vllm_share,
        layout=f"TP{tp} CP{p.context} PP{pp} EP{p.expert} ETP{etp}{sp} on {world} GPUs, "
        f"{megatron.dtype}, recompute {megatron.recompute}; optimizer {sharded} (dense over "
        f"DP x CP = {dense_dp}, experts over expert-DP = {expert_dp})",
        model=shape,
        params_per_gpu=dense + experts,
        micro_batch_tokens=tokens,
        params_gib=(dense + experts) * (2 if bf16 else 4) / GIB,
        grads_gib=(dense + experts) * 4 / GIB,
        optimizer_gib=optimizer,
        activations_gib=activations / GIB,
        logits_gib=tokens / p.context * shape.vocab / tp * 4 / GIB,
        overhead_gib=overhead_gib,
        sequence=sequence,
        flops_per_token=shape.flops_per_token(sequence),
        tokens_per_step=tokens_per_step,
    )


def _check(shape: ModelShape, p: ParallelConfig, world: int, gpu: str, share: float) -> None:
    try:
        p.check_world(world)
    except ValueError as err:
        raise ConfigError(f"policy.megatron.parallel: {err}") from None
    if gpu not in GPU_MEMORY_GIB:
        raise ConfigError(f"unknown GPU {gpu!r}; known: {', '.join(GPU_MEMORY_GIB)}")
    if not 0 <= share < 1:
        raise ConfigError(f"vllm share {share} is not in [0, 1)")
    for name, n, count, of in (
        ("tensor", p.tensor, shape.heads, "attention heads"),
        ("tensor", p.tensor, shape.kv_heads, "key/value heads"),
        ("pipeline", p.pipeline, shape.layers, "layers"),
        ("expert", p.expert, shape.experts, "experts"),
        ("expert_tensor", p.expert_tensor or p.tensor, shape.ffn, "expert width"),
    ):
        if count % n:
            raise ConfigError(f"policy.megatron.parallel.{name} {n} does not divide {count} {of}")
