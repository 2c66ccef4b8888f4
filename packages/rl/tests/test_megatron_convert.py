"""The HF <-> Megatron converter on the tiny Qwen3-MoE: bit-exact round trips, and Megatron's
logits equal transformers' on the same weights, in one process and over two gloo ranks.

The tiny model's norms are all ones, which would hide a swapped q/k norm or a norm loaded into
the wrong layer; the logit and two-rank checks use a copy with every norm perturbed, stored in
several shards so the sharded reader is exercised too.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor

from qwenlong.core.errors import CheckpointError
from qwenlong.core.safetensors_io import read_sharded, write_sharded
from qwenlong.rl.megatron.config import MegatronPolicyConfig, MoEConfig, ParallelConfig
from qwenlong.rl.megatron.convert import (
    MegatronWeightReceiver,
    dims_of,
    export_megatron_to_hf,
    global_parameters,
    load_hf_into_megatron,
)
from qwenlong.rl.megatron.model import build_model, destroy_parallel, init_parallel
from qwenlong.rl.megatron.weight_layout import global_names, layout

LENGTHS = (10, 7)
"""Two sequences of different lengths, run as one right-padded batch (causal attention keeps
the padding out of the real tokens); 10 splits over 2 sequence-parallel ranks."""

LAYOUTS: dict[str, tuple[ParallelConfig, MoEConfig]] = {
    "tp2": (ParallelConfig(tensor=2), MoEConfig()),  # experts split by expert-TP = 2 too
    "ep2": (ParallelConfig(expert=2), MoEConfig(token_dispatcher="alltoall")),
    "ep2_allgather": (ParallelConfig(expert=2), MoEConfig(token_dispatcher="allgather")),
    "tp2_ep2_sp": (
        ParallelConfig(tensor=2, expert=2, expert_tensor=1, sequence_parallel=True),
        MoEConfig(),
    ),
    "pp2": (ParallelConfig(pipeline=2), MoEConfig()),
}
"""Two-rank layouts; each loads the perturbed folder, runs the batch and exports."""

TENSORS_READ = {"tp2": (69, 69), "pp2": (34, 35)} | dict.fromkeys(
    ("ep2", "ep2_allgather", "tp2_ep2_sp"), (45, 45)
)
"""HF tensors each rank reads slices of, of the tiny model's 69: 33 per layer (24 of them its
8 experts'), embedding, final norm, output layer. Half the experts with EP 2; one layer plus
the embedding (stage 0) or the final norm and output layer (stage 1) with PP 2."""


def _sequences(vocab: int) -> list[Tensor]:
    gen = torch.Generator().manual_seed(3)
    return [torch.randint(0, vocab, (length,), generator=gen) for length in LENGTHS]


def _empty(folder: Path, parallel: ParallelConfig, moe: MoEConfig | None = None) -> Any:
    from transformers import AutoConfig

    config = MegatronPolicyConfig(parallel=parallel, moe=moe or MoEConfig())
    return build_model(AutoConfig.from_pretrained(folder), config).eval()


def _build(folder: Path, parallel: ParallelConfig) -> Any:
    model = _empty(folder, parallel)
    load_hf_into_megatron(model, folder)
    return model


def _forward(model: Any, sequences: list[Tensor]) -> list[Tensor] | None:
    """Per-sequence logits [length, vocab] (full vocabulary), on the last pipeline stage only.

    Pipeline stages hand the hidden states on by hand (rank r to r + 1): one micro-batch needs
    no schedule.
    """
    from megatron.core import parallel_state as ps
    from megatron.core.tensor_parallel import gather_from_tensor_model_parallel_region

    width = max(LENGTHS)
    ids = torch.zeros(len(sequences), width, dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
    positions = torch.arange(width).expand_as(ids)
    stage, stages = (
        ps.get_pipeline_model_parallel_rank(),
        ps.get_pipeline_model_parallel_world_size(),
    )
    with torch.no_grad():
        if stage > 0:
            hidden = torch.empty(width, len(sequences), model.config.hidden_size)
            dist.recv(hidden, src=ps.get_pipeline_model_parallel_prev_rank())
            model.set_input_tensor(hidden)
        out = model(ids, positions, None)
        if stage < stages - 1:
            dist.send(out.contiguous(), dst=ps.get_pipeline_model_parallel_next_rank())
            return None
        logits = gather_from_tensor_model_parallel_region(out)
    return [logits[row, : len(seq)] for row, seq in enumerate(sequences)]


def _export_mismatches(model: Any, folder: Path, everywhere: bool = False) -> list[str] | None:
    """Names whose exported tensor differs from the folder's (missing or extra ones too), on
    rank 0 (on every rank with `everywhere`); None elsewhere. Every rank drains the export."""
    exported = dict(export_megatron_to_hf(model, everywhere=everywhere))
    if dist.get_rank() != 0 and not everywhere:
        assert not exported
        return None
    expected = dict(read_sharded(folder))
    names = sorted(set(expected) | set(exported))
    return [
        name
        for name in names
        if name not in expected
        or name not in exported
        or exported[name].dtype != expected[name].dtype
        or not torch.equal(exported[name], expected[name])
    ]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def perturbed_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with every RMSNorm weight drawn around 1, written in several shards."""
    out = tmp_path_factory.mktemp("perturbed")
    gen = torch.Generator().manual_seed(5)

    def weights() -> Any:
        for name, tensor in read_sharded(tiny_model_dir):
            if name.endswith("norm.weight"):
                tensor = 1 + 0.3 * torch.randn(tensor.shape, generator=gen)
            yield name, tensor

    assert len(write_sharded(out, weights(), max_shard_bytes=1 << 20)) > 1
    (out / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    return out


@pytest.fixture(scope="module")
def world1(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Megatron's groups for one rank (gloo, a file rendezvous), torn down after the module."""
    store = tmp_path_factory.mktemp("world1") / "store"
    init_parallel(ParallelConfig(), 1, 0, f"file://{store}")
    yield
    destroy_parallel()


@pytest.fixture(scope="module")
def world1_logits(world1: None, perturbed_dir: Path) -> list[Tensor]:
    model = _build(perturbed_dir, ParallelConfig())
    logits = _forward(model, _sequences(model.vocab_size))
    assert logits is not None
    return logits


# --------------------------------------------------------------------------- one rank


def test_layout_covers_megatron_and_hf_names(world1: None, tiny_model_dir: Path) -> None:
    model = _build(tiny_model_dir, ParallelConfig())
    dims = dims_of(model)
    assert sorted(global_parameters(model)) == sorted(global_names(dims))
    hf_names = {hf for name in global_names(dims) for hf, _ in layout(name, dims).hf}
    assert hf_names == {name for name, _ in read_sharded(tiny_model_dir)}
    assert "decoder.layers.1.mlp.experts.local_experts.7.linear_fc1.weight" in global_names(dims)


def test_round_trip_is_bit_exact(world1: None, tiny_model_dir: Path) -> None:
    model = _build(tiny_model_dir, ParallelConfig())
    assert _export_mismatches(model, tiny_model_dir) == []


def test_fused_layouts_hold_hf_rows_in_megatron_order(world1: None, tiny_model_dir: Path) -> None:
    hf = dict(read_sharded(tiny_model_dir))
    params = global_parameters(_build(tiny_model_dir, ParallelConfig()))
    attn, d = "model.layers.1.self_attn", 16  # 4 q heads in 2 groups of 2, head_dim 16
    qkv = params["decoder.layers.1.self_attention.linear_qkv.weight"]
    q, k, v = (hf[f"{attn}.{x}_proj.weight"] for x in "qkv")
    group1 = torch.cat([q[2 * d : 4 * d], k[d : 2 * d], v[d : 2 * d]])
    assert torch.equal(qkv[4 * d :], group1)
    fc1 = params["decoder.layers.1.mlp.experts.local_experts.5.linear_fc1.weight"]
    expert = "model.layers.1.mlp.experts.5"
    gate_up = torch.cat([hf[f"{expert}.gate_proj.weight"], hf[f"{expert}.up_proj.weight"]])
    assert torch.equal(fc1, gate_up)


def test_logits_match_transformers(world1_logits: list[Tensor], perturbed_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(perturbed_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        for seq, logits in zip(_sequences(hf.config.vocab_size), world1_logits, strict=True):
            expected = hf(seq.unsqueeze(0)).logits[0]
            assert logits.shape == expected.shape
            torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


def test_stream_in_chunks_loads_like_folder(world1: None, perturbed_dir: Path) -> None:
    from_folder = _build(perturbed_dir, ParallelConfig())
    from_stream = _build(perturbed_dir, ParallelConfig())
    for param in from_stream.parameters():
        param.data.zero_()
    receiver = MegatronWeightReceiver(from_stream)
    for name, tensor in read_sharded(perturbed_dir):
        receiver.receive(name, tensor)
    assert receiver.finish() == 69
    for (name, a), (_, b) in zip(
        from_folder.state_dict().items(), from_stream.state_dict().items(), strict=True
    ):
        assert a is None or torch.equal(a, b), name


def test_load_is_strict(world1: None, tiny_model_dir: Path) -> None:
    model = _build(tiny_model_dir, ParallelConfig())
    weights = dict(read_sharded(tiny_model_dir))
    missing = {k: v for k, v in weights.items() if k != "model.layers.0.mlp.gate.weight"}
    with pytest.raises(CheckpointError, match=r"lack model\.layers\.0\.mlp\.gate\.weight"):
        load_hf_into_megatron(model, missing.items())
    receiver = MegatronWeightReceiver(model)
    receiver.receive("model.norm.weight", weights["model.norm.weight"])
    with pytest.raises(CheckpointError, match=r"'model\.norm\.weight' arrived twice"):
        receiver.receive("model.norm.weight", weights["model.norm.weight"])
    with pytest.raises(CheckpointError, match="'extra' is not part of this model"):
        load_hf_into_megatron(model, [*weights.items(), ("extra", torch.zeros(1))])
    weights["model.norm.weight"] = torch.ones(3)
    with pytest.raises(CheckpointError, match=r"model\.norm\.weight.*shape \(3,\)"):
        load_hf_into_megatron(model, weights.items())


# --------------------------------------------------------------------------- two ranks


def _worker(rank: int, folder: str, out: str) -> None:
    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    for name, (parallel, moe) in LAYOUTS.items():
        # A fresh process group per layout, as a new job would have. File rendezvous: TCP
        # ports picked up front can be taken by the ephemeral ports of the layouts before.
        init_parallel(parallel, 2, rank, f"file://{out}/store_{name}")
        try:
            model = _empty(Path(folder), parallel, moe)
            results[name] = {
                "read": load_hf_into_megatron(model, folder),
                "logits": _forward(model, _sequences(model.vocab_size)),
                "export": _export_mismatches(model, Path(folder)),
                "export_everywhere": _export_mismatches(model, Path(folder), everywhere=True),
            }
        finally:
            destroy_parallel()
    torch.save(results, Path(out) / f"rank{rank}.pt")


@pytest.fixture(scope="module")
def two_ranks(perturbed_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Each rank's results for every layout of `LAYOUTS`, from one pair of spawned processes."""
    out = tmp_path_factory.mktemp("two_ranks")
    # Spawned children import this module by pytest's name for it (rootdir-relative), so the
    # directory that name starts from must be on their path.
    root = str(Path(__file__).parents[len(__name__.split(".")) - 1])
    sys.path.insert(0, root)
    try:
        mp.spawn(_worker, args=(str(perturbed_dir), str(out)), nprocs=2)
    finally:
        sys.path.remove(root)
    return [torch.load(out / f"rank{rank}.pt") for rank in range(2)]


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_two_ranks_match_one(two_ranks: list[dict], world1_logits: list[Tensor], name: str) -> None:
    rank0, rank1 = (results[name] for results in two_ranks)
    assert (rank0["read"], rank1["read"]) == TENSORS_READ[name]
    assert rank0["export"] == [], "export is not the checkpoint, bit for bit"
    assert rank1["export"] is None
    assert rank0["export_everywhere"] == rank1["export_everywhere"] == []  # IPC's whole model
    with_logits = [r["logits"] for r in (rank0, rank1) if r["logits"] is not None]
    assert len(with_logits) == (1 if name == "pp2" else 2)
    for logits in with_logits:
        for got, expected in zip(logits, world1_logits, strict=True):
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_qwen3_dense_with_tied_embeddings(world1: None, tmp_path: Path) -> None:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    hf_config = Qwen3Config(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    hf = Qwen3ForCausalLM(hf_config).eval()
    with torch.no_grad():
        for name, param in hf.named_parameters():
            if name.endswith("norm.weight"):
                param.normal_(1, 0.3)
    hf.save_pretrained(tmp_path)
    model = _build(tmp_path, ParallelConfig())
    assert "lm_head.weight" not in dict(read_sharded(tmp_path))
    assert _export_mismatches(model, tmp_path) == []
    sequence = torch.arange(11) * 37 % 512
    with torch.no_grad():
        expected = hf(sequence.unsqueeze(0)).logits[0]
        got = model(sequence.unsqueeze(0), torch.arange(11).unsqueeze(0), None)[0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
