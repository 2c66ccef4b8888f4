"""Where every Megatron parameter of Qwen3(-MoE) comes from in HF's on-disk tensors.

Pure bookkeeping, no I/O and no communication, so both directions of the converter share it:
a rank's shard of a Megatron parameter is the concatenation, along one dimension, of slices of
HF tensors (`Part`s). Loading reads exactly those slices; exporting splits each received shard
back along the same boundaries. The layouts:

- `qkv`: Megatron fuses q, k, v per query group (its q heads, then its k head, then its v head),
  and tensor parallelism gives each rank whole query groups.
- `gate_up`: fc1 is [gate; up]; tensor parallelism splits gate and up each, so a rank holds
  [gate_r; up_r] (not a contiguous block of [gate; up]).
- `rows` / `cols`: column-parallel (embedding, output layer) and row-parallel (o_proj, fc2)
  weights, split evenly along rows or columns.
- `whole`: norms and the router, replicated over the tensor-parallel group.

Parameters are named here by their *global* name: Megatron's own name under its local layer
spec, with the global layer index and global expert index in place of the stage-local and
rank-local ones. Transformer Engine's spec spells three of them differently
(`local_spec_name`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["whole", "rows", "cols", "qkv", "gate_up"]


@dataclass(frozen=True)
class Dims:
    """The model's sizes, as Megatron's `TransformerConfig` and `GPTModel` hold them."""

    layers: int
    hidden: int
    heads: int
    groups: int
    """Query groups (key/value heads)."""
    head_dim: int
    ffn: int
    """Dense MLP width (Qwen3 dense)."""
    moe_ffn: int
    """Width of each expert's MLP."""
    experts: int
    """Routed experts per layer; 0 for a dense model."""
    vocab: int
    tied: bool
    """Output layer shares the embedding (tie_word_embeddings)."""


@dataclass(frozen=True)
class Part:
    """Rows (or columns) [start, stop) of HF tensor `name`."""

    name: str
    start: int
    stop: int


@dataclass(frozen=True)
class Layout:
    """How one global Megatron parameter is made of HF tensors and split over its group."""

    kind: Kind
    hf: tuple[tuple[str, tuple[int, ...]], ...]
    """The HF tensors it is made of, with their full shapes."""
    group: Literal["tp", "etp"] | None
    """The group its shards are spread over: tensor-parallel, expert-tensor-parallel, or none
    (replicated)."""
    exported: bool = True
    """False for a tied output layer, which HF does not store."""
    groups: int = 1
    """Query groups, for `qkv` (k's rows alone do not say how many heads they hold)."""

    @property
    def dim(self) -> int:
        """The dimension the parts are concatenated (and the HF slices taken) along."""
        return 1 if self.kind == "cols" else 0

    def parts(self, shard: int, shards: int) -> list[Part]:
        """The HF slices that make shard `shard` of `shards`, in concatenation order."""
        names = [name for name, _ in self.hf]
        extent = self.hf[0][1][self.dim]
        if self.kind == "whole":
            return [Part(names[0], 0, extent)]
        if self.kind == "qkv":
            return _qkv_parts(self, shard, shards)
        size = _divide(extent, shards, names[0])
        return [Part(name, shard * size, (shard + 1) * size) for name in names]


def _divide(extent: int, shards: int, name: str) -> int:
    if extent % shards:
        raise ValueError(f"{name}: {extent} rows/columns do not split into {shards} shards")
    return extent // shards


def _qkv_parts(layout: Layout, shard: int, shards: int) -> list[Part]:
    (q, q_shape), (k, k_shape), (v, _) = layout.hf
    groups = layout.groups
    head_dim = k_shape[0] // groups
    q_rows = q_shape[0] // groups  # the q heads of one group
    per_shard = _divide(groups, shards, f"{q} query groups")
    parts: list[Part] = []
    for group in range(shard * per_shard, (shard + 1) * per_shard):
        parts.append(Part(q, group * q_rows, (group + 1) * q_rows))
        parts.append(Part(k, group * head_dim, (group + 1) * head_dim))
        parts.append(Part(v, group * head_dim, (group + 1) * head_dim))
    return parts


TE_SPELLINGS: tuple[tuple[str, str], ...] = (
    # The input norm fused into the QKV projection (TELayerNormColumnParallelLinear).
    (r"self_attention\.linear_qkv\.layer_norm_weight", "input_layernorm.weight"),
    # A dense MLP's norm fused into fc1 (MoE layers keep a separate pre_mlp_layernorm).
    (r"mlp\.linear_fc1\.layer_norm_weight", "pre_mlp_layernorm.weight"),
    # Grouped experts (TEGroupedMLP): one weight per local expert, numbered in the name.
    (
        r"mlp\.experts\.linear_fc([12])\.weight(\d+)",
        r"mlp.experts.local_experts.\2.linear_fc\1.weight",
    ),
)
"""(Transformer Engine's name inside a layer, the local spec's) for the parameters they name
differently; every other parameter has the same name under both specs."""


def local_spec_name(name: str) -> str:
    """The local spec's name of a parameter inside a layer (`name` after "decoder.layers.N."),
    given either spec's spelling."""
    for pattern, local in TE_SPELLINGS:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, local, name)
    return name


def layout(name: str, dims: Dims) -> Layout:
    """The layout of global Megatron parameter `name`; KeyError for a name Qwen3 lacks."""
    match = re.fullmatch(r"decoder\.layers\.(\d+)\.(.+)", name)
    if match is None:
        return _top_level(name, dims)
    hf = f"model.layers.{match.group(1)}"
    rest = match.group(2)
    hidden, head_dim = dims.hidden, dims.head_dim
    expert = re.fullmatch(r"mlp\.experts\.local_experts\.(\d+)\.(linear_fc[12])\.weight", rest)
    if expert is not None:
        prefix = f"{hf}.mlp.experts.{expert.group(1)}"
        return _mlp(prefix, dims.moe_ffn, hidden, expert.group(2), "etp")
    if rest in ("mlp.linear_fc1.weight", "mlp.linear_fc2.weight") and not dims.experts:
        return _mlp(f"{hf}.mlp", dims.ffn, hidden, rest.split(".")[1], "tp")
    if rest == "self_attention.linear_qkv.weight":
        q_rows, kv_rows = dims.heads * head_dim, dims.groups * head_dim
        return Layout(
            "qkv",
            (
                (f"{hf}.self_attn.q_proj.weight", (q_rows, hidden)),
                (f"{hf}.self_attn.k_proj.weight", (kv_rows, hidden)),
                (f"{hf}.self_attn.v_proj.weight", (kv_rows, hidden)),
            ),
            "tp",
            groups=dims.groups,
        )
    simple: dict[str, tuple[Kind, str, tuple[int, ...]]] = {
        "input_layernorm.weight": ("whole", "input_layernorm.weight", (hidden,)),
        "self_attention.q_layernorm.weight": ("whole", "self_attn.q_norm.weight", (head_dim,)),
        "self_attention.k_layernorm.weight": ("whole", "self_attn.k_norm.weight", (head_dim,)),
        "self_attention.linear_proj.weight": (
            "cols",
            "self_attn.o_proj.weight",
            (hidden, dims.heads * head_dim),
        ),
        "pre_mlp_layernorm.weight": ("whole", "post_attention_layernorm.weight", (hidden,)),
    }
    if dims.experts:
        simple["mlp.router.weight"] = ("whole", "mlp.gate.weight", (dims.experts, hidden))
    kind, hf_name, shape = simple[rest]
    # o_proj is split over tensor-parallel ranks; norms and the router are replicated.
    return Layout(kind, ((f"{hf}.{hf_name}", shape),), "tp" if kind == "cols" else None)


def _mlp(prefix: str, width: int, hidden: int, which: str, group: Literal["tp", "etp"]) -> Layout:
    if which == "linear_fc1":
        shape = (width, hidden)
        hf = ((f"{prefix}.gate_proj.weight", shape), (f"{prefix}.up_proj.weight", shape))
        return Layout("gate_up", hf, group)
    return Layout("cols", ((f"{prefix}.down_proj.weight", (hidden, width)),), group)


def _top_level(name: str, dims: Dims) -> Layout:
    vocab_shape = (dims.vocab, dims.hidden)
    if name == "embedding.word_embeddings.weight":
        return Layout("rows", (("model.embed_tokens.weight", vocab_shape),), "tp")
    if name == "output_layer.weight":
        source = "model.embed_tokens.weight" if dims.tied else "lm_head.weight"
        return Layout("rows", ((source, vocab_shape),), "tp", exported=not dims.tied)
    if name == "decoder.final_layernorm.weight":
        return Layout("whole", (("model.norm.weight", (dims.hidden,)),), None)
    raise KeyError(name)


def global_names(dims: Dims) -> list[str]:
    """Every global Megatron parameter of the whole model that HF stores, in export order
    (HF's own: embedding, layer by layer, final norm, output layer)."""
    names = ["embedding.word_embeddings.weight"]
    for layer in range(dims.layers):
        prefix = f"decoder.layers.{layer}"
        attention = ["linear_qkv", "q_layernorm", "k_layernorm", "linear_proj"]
        names.append(f"{prefix}.input_layernorm.weight")
        names += [f"{prefix}.self_attention.{part}.weight" for part in attention]
        names.append(f"{prefix}.pre_mlp_layernorm.weight")
        if dims.experts:
            names.append(f"{prefix}.mlp.router.weight")
            for expert in range(dims.experts):
                names += [
                    f"{prefix}.mlp.experts.local_experts.{expert}.linear_fc{i}.weight"
                    for i in (1, 2)
                ]
        else:
            names += [f"{prefix}.mlp.linear_fc{i}.weight" for i in (1, 2)]
    names.append("decoder.final_layernorm.weight")
    if not dims.tied:
        names.append("output_layer.weight")
    return names
