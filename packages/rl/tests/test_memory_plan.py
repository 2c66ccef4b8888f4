"""The memory planner against bytes counted by hand, real parameter counts, and the CLI.

The tiny model (TinyModelConfig defaults): vocab V = 2048, hidden h = 64, L = 2 layers, 4 query
and 2 KV heads of d = 16, 8 experts of width f = 256, top-k 2, untied embeddings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from qwenlong.app.cli import main
from qwenlong.core.errors import ConfigError
from qwenlong.rl.megatron.config import MegatronPolicyConfig, ParallelConfig
from qwenlong.rl.megatron.memory_plan import (
    GIB,
    GPU_MEMORY_GIB,
    MemoryPlan,
    ModelShape,
    plan_memory,
)

QWEN3_30B = (
    Path(__file__).resolve().parents[3] / "experiments/l15-30b-a3b/qwen3-30b-a3b.config.json"
)

TINY = ModelShape(2048, 64, 2, 4, 2, 16, 256, 8, 2, tied=False)

# Parameters of one tiny layer, by hand.
ATTENTION = 64 * 64 + 64 * 32 + 64 * 32 + 64 * 64  # q, k, v, o = 12,288
REPLICATED = 2 * 64 + 2 * 16 + 64 * 8  # two RMSNorms, q/k norms, router = 672
EXPERTS = 8 * 3 * 64 * 256  # gate, up, down of 8 experts = 393,216
EMBEDDING = 2048 * 64  # embedding; the output layer is the same size = 131,072

# Activation bytes of one token in one tiny layer (bf16 = 2 bytes an element).
HEADS_PART = 2 * ((4 + 2) * 16 + 2 * 16 + (4 + 2) * 16 + 4 * 16) + 4 * 4  # q,k; v; q,k normed; out
SHARED_PART = 2 * (64 + 64) + 2 * 64 + 2 * 64 + 4 * 8  # norm inputs, QKV in, router in, scores
EXPERT_COPY = 2 * 64 + 2 * 2 * 256 + 2 * 256 + 2 * 64  # permuted in, gate+up, down in, down out


def megatron(**fields: object) -> MegatronPolicyConfig:
    """A policy config with a 512-token packing budget, shorter than the 1024-token sequence."""
    parallel = fields.pop("parallel", {})
    return MegatronPolicyConfig(
        micro_batch_tokens=512, parallel=ParallelConfig(**parallel), device="cuda", **fields
    )


def plan(config: MegatronPolicyConfig, world: int, **kwargs: object) -> MemoryPlan:
    return plan_memory(TINY, config, world, sequence=1024, tokens_per_step=4096, **kwargs)


def test_the_tiny_model_shape_and_parameter_count_match_the_hf_model(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    config = json.loads((tiny_model_dir / "config.json").read_text())
    shape = ModelShape.from_hf(config, "config.json")
    assert shape == TINY
    by_hand = 2 * (ATTENTION + REPLICATED + EXPERTS) + 2 * EMBEDDING + 64  # + final norm
    assert by_hand == shape.total_params == 1_074_560
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert shape.total_params == sum(p.numel() for p in model.parameters())
    assert shape.active_params == by_hand - 2 * (8 - 2) * 3 * 64 * 256


def test_one_rank_float32_holds_everything() -> None:
    result = plan(megatron(), world=1)
    params = 1_074_560
    assert result.params_per_gpu == params
    assert result.params_gib * GIB == params * 4
    assert result.grads_gib * GIB == params * 4
    assert result.optimizer_gib * GIB == params * 8  # two fp32 moments, no separate main weights
    assert (HEADS_PART, SHARED_PART, EXPERT_COPY) == (592, 544, 1792)
    assert result.micro_batch_tokens == 1024  # the sequence, longer than the 512 budget
    per_layer = 1024 * (HEADS_PART + SHARED_PART + 2 * EXPERT_COPY)
    assert result.activations_gib * GIB == 2 * per_layer == 9_666_560
    assert result.logits_gib * GIB == 1024 * 2048 * 4
    static = params * (4 + 4 + 8)  # Megatron's table: 16 bytes a parameter in fp32
    assert result.total_gib == pytest.approx((static + 2 * per_layer + 1024 * 2048 * 4) / GIB + 4)


def test_tp2_ep2_on_four_ranks_shards_dense_and_expert_parts_separately() -> None:
    layout = {"tensor": 2, "expert": 2, "expert_tensor": 1, "sequence_parallel": True}
    config = megatron(dtype="bfloat16", distributed_optimizer=True, parallel=layout)
    result = plan(config, world=4)
    dense = 2 * (ATTENTION // 2 + REPLICATED) + 2 * EMBEDDING // 2 + 64  # = 144,768
    experts = 2 * EXPERTS // 2  # EP 2 x ETP 1 = 393,216
    assert result.params_per_gpu == dense + experts == 537_984
    assert result.params_gib * GIB == 537_984 * 2
    assert result.grads_gib * GIB == 537_984 * 4
    # dense over DP x CP = 4 / TP 2 = 2 ranks, experts over 4 / (ETP 1 x EP 2) = 2 ranks
    assert result.optimizer_gib * GIB == 12 * dense / 2 + 12 * experts / 2
    # SP: 1024 / 2 tokens of every part; experts: 1024 x ETP 1 / TP 2 tokens, 2 copies each
    layer = 1024 * (HEADS_PART + SHARED_PART) / 2 + 1024 / 2 * 2 * EXPERT_COPY
    assert layer == 2_416_640
    assert result.activations_gib * GIB == 2 * layer
    assert result.logits_gib * GIB == 1024 * 2048 / 2 * 4

    full = plan(config.model_copy(update={"recompute": "full"}), world=4)
    assert full.activations_gib * GIB == 2 * (1024 / 2 * 2 * 64) + layer  # inputs + one layer


def test_expert_tensor_parallel_and_context_and_pipeline_parallel() -> None:
    etp2 = megatron(parallel={"tensor": 2, "expert": 2, "sequence_parallel": True})
    result = plan(etp2.model_copy(update={"distributed_optimizer": True}), world=4)
    experts = 2 * EXPERTS // (2 * 2)  # EP 2 x ETP 2
    assert result.params_per_gpu == 2 * (ATTENTION // 2 + REPLICATED) + EMBEDDING + 64 + experts
    assert result.optimizer_gib * GIB == 8 * (result.params_per_gpu - experts) / 2 + 8 * experts
    # ETP 2 gathers the TP group's tokens (1024 copies x 2) and halves the expert width
    expert_copy = 2 * 64 + (2 * 2 * 256 + 2 * 256) / 2 + 2 * 64
    layer = 1024 * (HEADS_PART + SHARED_PART) / 2 + 1024 * 2 * expert_copy
    assert result.activations_gib * GIB == 2 * layer

    cp2 = plan(megatron(parallel={"context": 2, "expert": 2}), world=2)
    assert cp2.params_per_gpu == 2 * (ATTENTION + REPLICATED) + 2 * EMBEDDING + 64 + EXPERTS
    layer = 512 * (HEADS_PART + SHARED_PART) + 512 * 2 * EXPERT_COPY
    assert cp2.activations_gib * GIB == 2 * layer
    assert cp2.logits_gib * GIB == 512 * 2048 * 4

    pp2 = plan(megatron(parallel={"pipeline": 2}), world=2)
    assert pp2.params_per_gpu == ATTENTION + REPLICATED + EXPERTS + EMBEDDING + 64
    assert pp2.activations_gib == plan(megatron(), world=1).activations_gib  # 1F1B: L layers


def test_fit_against_the_gpu_and_the_vllm_share() -> None:
    result = plan(megatron(), world=1, gpu="H200-141GB", vllm_share=0.35)
    assert result.budget_gib == pytest.approx(0.65 * 143771 / 1024)
    assert result.fits
    assert not plan(megatron(), world=1, overhead_gib=GPU_MEMORY_GIB["H100-80GB"]).fits
    lines = result.as_table()
    labels = [line.split()[0] for line in lines]
    width = max(map(len, labels))  # "activations", "FLOPs/token": 11
    assert all(line.startswith(f"{label:<11}  ") for label, line in zip(labels, lines, strict=True))
    assert width == 11 and lines[3] == f"params       {result.params_gib:8.2f} GiB"
    assert any(line.startswith("fits") and line.endswith("yes") for line in lines)


def test_layouts_that_do_not_divide_raise_one_line_config_errors() -> None:
    default_etp = megatron(parallel={"tensor": 2, "expert": 2, "sequence_parallel": True})
    with pytest.raises(ConfigError, match=r"expert_tensor x expert x pipeline = 2 x 2 x 1"):
        plan(default_etp, world=2)
    with pytest.raises(ConfigError, match=r"parallel.tensor 4 does not divide 2 key/value heads"):
        plan(megatron(parallel={"tensor": 4, "expert_tensor": 1}), world=4)
    with pytest.raises(ConfigError, match=r"unknown GPU 'A100'"):
        plan(megatron(), world=1, gpu="A100")


def test_qwen3_30b_a3b_counts_match_the_recipe_and_the_hf_model() -> None:
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    config = json.loads(QWEN3_30B.read_text())
    shape = ModelShape.from_hf(config, str(QWEN3_30B))
    assert shape.total_params == pytest.approx(30.5e9, rel=0.02)
    assert shape.active_params == pytest.approx(3.3e9, rel=0.02)
    with torch.device("meta"):
        model = Qwen3MoeForCausalLM(
            Qwen3MoeConfig(**{k: v for k, v in config.items() if not k.startswith("_")})
        )
    assert shape.total_params == sum(p.numel() for p in model.parameters())
    # per layer: attention 2 x 2048 x (32 + 4) x 128, router 2048 x 128, 8 experts 3 x 2048 x 768
    matmul = 48 * (2 * 2048 * 36 * 128 + 2048 * 128 + 8 * 3 * 2048 * 768) + 151936 * 2048
    assert shape.flops_per_token(170_000) == 6 * matmul + 12 * 48 * 32 * 128 * 170_000


LAYOUT = {"tensor": 2, "expert": 2, "expert_tensor": 1, "sequence_parallel": True}


def write_train_yaml(path: Path, model: Path) -> Path:
    layout = json.dumps(LAYOUT)  # a JSON object is a YAML flow mapping
    path.write_text(
        f"model: {model}\ndata: {{train: [unused]}}\n"
        "stages:\n"
        "  - {name: short, steps: 1, max_input_tokens: 512, max_output_tokens: 512}\n"
        "  - {name: long, steps: 1, max_input_tokens: 4096, max_output_tokens: 1024}\n"
        "sampler: {batch_size: 16}\nrollout: {group_size: 4}\n"
        f"policy:\n  num_workers: 4\n  megatron: {{dtype: bfloat16, device: cuda, parallel: {layout}}}\n",
        encoding="utf-8",
    )
    return path


def error_line(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The CLI's exit status must be 2 and its stderr one line, which is returned."""
    with pytest.raises(SystemExit) as exit:
        main(args)
    assert exit.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    return line


def test_cli_prints_each_stage(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_train_yaml(tmp_path / "train.yaml", tiny_model_dir)
    main(["plan", str(config)])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "stage short: 512 input + 512 output tokens"
    assert "stage long: 4,096 input + 1,024 output tokens" in out
    longest = 4096 + 1024
    expected = plan_memory(
        TINY,
        MegatronPolicyConfig(dtype="bfloat16", device="cuda", parallel=ParallelConfig(**LAYOUT)),
        4,
        sequence=longest,
        tokens_per_step=16 * 4 * longest,  # prompts x G x (input + output)
    ).as_table()
    assert [line.removeprefix("  ") for line in out[-len(expected) :]] == expected

    main(["plan", str(config), "--stage", "long", "--gpu", "H200-141GB", "--vllm-share", "0.35"])
    out = capsys.readouterr().out
    assert "stage short" not in out and "(1 - 0.35) x 140.4 GiB H200-141GB" in out


def test_cli_exits_2_with_one_line(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_train_yaml(tmp_path / "train.yaml", tiny_model_dir))
    etp2 = ["--set", "policy.megatron.parallel.expert_tensor=null"]  # ETP 2 x EP 2 = 4 ranks
    main(["plan", config, *etp2])
    capsys.readouterr()
    line = error_line(["plan", config, *etp2, "--set", "policy.num_workers=2"], capsys)
    assert line == (
        "config error: policy.megatron.parallel: 2 policy ranks are not a multiple of "
        "expert_tensor x expert x pipeline = 2 x 2 x 1"
    )
    line = error_line(["plan", config, "--set", "policy.num_workers=3"], capsys)
    assert "3 policy ranks are not a multiple of tensor x context x pipeline" in line
    line = error_line(["plan", config, "--stage", "stage3"], capsys)
    assert line == f"config error: {config}: no stage 'stage3'; stages: short, long"

    moved = str(write_train_yaml(tmp_path / "moved.yaml", tmp_path / "elsewhere"))
    line = error_line(["plan", moved], capsys)
    missing = tmp_path / "elsewhere" / "config.json"
    assert line.startswith(f"config error: {missing}: no such file")
    main(["plan", moved, "--model-config", str(tiny_model_dir / "config.json")])
    assert "stage long" in capsys.readouterr().out
