"""Which HF rows make each tensor-parallel shard of the fused Megatron weights."""

from __future__ import annotations

import pytest

from qwenlong.rl.megatron.weight_layout import Dims, Part, global_names, layout, local_spec_name

DIMS = Dims(
    layers=2,
    hidden=8,
    heads=4,
    groups=2,
    head_dim=3,
    ffn=10,
    moe_ffn=6,
    experts=4,
    vocab=20,
    tied=False,
)
ATTN = "model.layers.1.self_attn"


def test_qkv_shard_holds_whole_query_groups() -> None:
    qkv = layout("decoder.layers.1.self_attention.linear_qkv.weight", DIMS)
    # 2 q heads per group of 3 rows each; shard 1 of 2 is group 1: q rows 6-11, k/v rows 3-5.
    assert qkv.parts(1, 2) == [
        Part(f"{ATTN}.q_proj.weight", 6, 12),
        Part(f"{ATTN}.k_proj.weight", 3, 6),
        Part(f"{ATTN}.v_proj.weight", 3, 6),
    ]
    assert [p.stop - p.start for p in qkv.parts(0, 1)] == [6, 3, 3, 6, 3, 3]


def test_fc1_shard_is_gate_slice_then_up_slice() -> None:
    fc1 = layout("decoder.layers.0.mlp.experts.local_experts.3.linear_fc1.weight", DIMS)
    expert = "model.layers.0.mlp.experts.3"
    assert fc1.group == "etp" and fc1.dim == 0
    assert fc1.parts(1, 2) == [
        Part(f"{expert}.gate_proj.weight", 3, 6),
        Part(f"{expert}.up_proj.weight", 3, 6),
    ]


def test_row_parallel_weights_split_columns() -> None:
    proj = layout("decoder.layers.0.self_attention.linear_proj.weight", DIMS)
    fc2 = layout("decoder.layers.0.mlp.experts.local_experts.0.linear_fc2.weight", DIMS)
    assert (proj.dim, proj.group, proj.hf[0][1]) == (1, "tp", (8, 12))
    assert proj.parts(1, 2) == [Part("model.layers.0.self_attn.o_proj.weight", 6, 12)]
    assert (fc2.dim, fc2.group, fc2.parts(0, 2)[0].stop) == (1, "etp", 3)


def test_replicated_and_tied_weights() -> None:
    router = layout("decoder.layers.1.mlp.router.weight", DIMS)
    assert (router.group, router.parts(0, 1)) == (
        None,
        [Part("model.layers.1.mlp.gate.weight", 0, 4)],
    )
    tied = layout("output_layer.weight", Dims(**{**DIMS.__dict__, "tied": True}))
    assert (tied.hf[0][0], tied.exported) == ("model.embed_tokens.weight", False)


def test_uneven_split_is_refused() -> None:
    qkv = layout("decoder.layers.0.self_attention.linear_qkv.weight", DIMS)
    with pytest.raises(ValueError, match="2 rows/columns do not split into 4 shards"):
        qkv.parts(0, 4)


def test_global_names_cover_each_layer_once() -> None:
    names = global_names(DIMS)
    assert len(names) == len(set(names)) == 1 + 2 * (7 + 4 * 2) + 2
    dense = global_names(Dims(**{**DIMS.__dict__, "experts": 0, "tied": True}))
    assert "decoder.layers.1.mlp.linear_fc2.weight" in dense and "output_layer.weight" not in dense


def test_transformer_engine_names_map_to_the_local_specs() -> None:
    """TE's fused norms and grouped experts land on the same HF tensors as the local spec's."""
    spelled = {
        "self_attention.linear_qkv.layer_norm_weight": "input_layernorm.weight",
        "mlp.linear_fc1.layer_norm_weight": "pre_mlp_layernorm.weight",
        "mlp.experts.linear_fc1.weight3": "mlp.experts.local_experts.3.linear_fc1.weight",
        "mlp.experts.linear_fc2.weight12": "mlp.experts.local_experts.12.linear_fc2.weight",
        # the same under both specs
        "self_attention.linear_qkv.weight": "self_attention.linear_qkv.weight",
        "pre_mlp_layernorm.weight": "pre_mlp_layernorm.weight",
        "mlp.router.weight": "mlp.router.weight",
    }
    for te_name, local in spelled.items():
        assert local_spec_name(te_name) == local
    dims = Dims(
        layers=1, hidden=8, heads=2, groups=1, head_dim=4, ffn=16, moe_ffn=6, experts=16,
        vocab=32, tied=False,
    )  # fmt: skip
    fc1 = layout(f"decoder.layers.0.{local_spec_name('mlp.experts.linear_fc1.weight12')}", dims)
    assert [name for name, _ in fc1.hf] == [
        "model.layers.0.mlp.experts.12.gate_proj.weight",
        "model.layers.0.mlp.experts.12.up_proj.weight",
    ]
