"""Training throughput and memory of the policy backends on one GPU, side by side.

    uv run python benchmarks/megatron_gpu.py [--size 1b] [--sequence 4096] [--sequences 8]
        [--steps 3] [--out runs/bench-megatron-gpu]

The same random Qwen3-MoE (`--size`: "tiny", the test model, or "1b", about 1B parameters with
32 experts, 4 active) and the same packed batch of `--sequences` sequences of `--sequence`
tokens (half prompt, half response, random advantages) go through one RL training step per
timed step on each backend: the torch policy (transformers, bf16 weights), the Megatron policy
on Megatron's local layers (bf16, distributed optimizer), and on Transformer Engine's layers
(THD packing, grouped experts) when TE is installed. The first step is warm-up.

Figures per backend: tokens/s (every token of the batch per step / mean step time), model FLOPs
utilisation (`ModelShape.flops_per_token` x tokens/s over the GPU's dense bf16 peak), peak
memory (`torch.cuda.max_memory_allocated`) beside `qwenlong plan`'s estimate for the same
layout and micro-batch. Prints a table, then ONE JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12}
"""Dense bf16 tensor-core peak (NVIDIA's data sheets, SXM parts, without sparsity)."""

SIZES: dict[str, dict[str, Any]] = {
    "tiny": {},
    "1b": {
        "vocab_size": 16384,
        "hidden_size": 1536,
        "num_layers": 14,
        "num_heads": 12,
        "num_kv_heads": 4,
        "head_dim": 128,
        "moe_intermediate_size": 768,
        "num_experts": 32,
        "experts_per_token": 4,
        "corpus_paragraphs": 6000,
    },
}
"""TinyModelConfig fields of each size (ours)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="1b")
    parser.add_argument("--sequence", type=int, default=4096)
    parser.add_argument("--sequences", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", default="runs/bench-megatron-gpu")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/megatron_gpu.py needs a CUDA GPU")
    model = _model(Path(args.out) / f"model-{args.size}", args.size)
    batch, update = _batch(args.sequence, args.sequences)
    results = {}
    for name, start in _backends(model, args.sequence).items():
        results[name] = _measure(start, batch, update, args.steps, model, args.sequence)
        gc.collect()
        torch.cuda.empty_cache()
    _print(results, args)


def _model(folder: Path, size: str) -> Path:
    from qwenlong.core.tiny_model import TinyModelConfig, build_tiny_model

    if (folder / "config.json").is_file():
        return folder
    return build_tiny_model(folder, TinyModelConfig(**SIZES[size]))


def _batch(sequence: int, sequences: int) -> tuple[Any, Any]:
    from qwenlong.rl.interfaces import PackedBatch, PolicyUpdate

    generator = torch.Generator().manual_seed(0)
    half = sequence // 2
    prompts = [torch.randint(5, 2000, (half,), generator=generator).tolist()] * sequences
    responses = [
        torch.randint(5, 2000, (sequence - half,), generator=generator).tolist()
        for _ in range(sequences)
    ]
    batch = PackedBatch.from_sequences(prompts, responses)
    advantages = torch.randn(sequences, generator=generator)[batch.sequence_index()]
    mask = batch.loss_mask.clone()
    return batch, PolicyUpdate(advantages * mask, mask, None, None, int(mask.sum()))


def _backends(model: Path, sequence: int) -> dict[str, Callable[[], Any]]:
    """{name: () -> (train one step(batch, update), megatron config or None, close)}."""
    from qwenlong.rl.losses import LossConfig
    from qwenlong.rl.megatron.config import MegatronPolicyConfig
    from qwenlong.rl.megatron.policy import MegatronPolicyRank
    from qwenlong.rl.micro_batches import MicroBatchPlanner
    from qwenlong.rl.torch_policy import TorchPolicy, TorchPolicyConfig

    def torch_policy() -> Any:
        config = TorchPolicyConfig(device="cuda", dtype="bfloat16", micro_batch_tokens=sequence)
        policy = TorchPolicy(model, config)
        return policy.train_step, None, lambda: None

    def megatron(layers: str) -> Callable[[], Any]:
        def start() -> Any:
            config = MegatronPolicyConfig(
                device="cuda",
                dtype="bfloat16",
                distributed_optimizer=True,
                layers=layers,
                micro_batch_tokens=sequence,
            )
            rank = MegatronPolicyRank(str(model), config, LossConfig(), 0, 1)
            rank.setup(None)
            planner = MicroBatchPlanner(sequence, None, packed=True)

            def step(batch: Any, update: Any) -> Any:
                plan = planner.plan(batch, update.token_mask)
                return rank.train_step(batch, update, batch.num_sequences, plan)

            return step, config, rank.close

        return start

    backends = {"torch": torch_policy, "megatron-local": megatron("local")}
    try:
        import transformer_engine.pytorch  # noqa: F401

        backends["megatron-te"] = megatron("transformer_engine")
    except ImportError:
        print("Transformer Engine not installed: megatron-te skipped")
    return backends


def _measure(
    start: Callable[[], Any], batch: Any, update: Any, steps: int, model: Path, sequence: int
) -> dict[str, Any]:
    torch.cuda.reset_peak_memory_stats()
    step, config, close = start()
    try:
        step(batch, update)  # warm-up
        torch.cuda.synchronize()
        times = []
        for _ in range(steps):
            began = time.perf_counter()
            stats = step(batch, update)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - began)
        peak = torch.cuda.max_memory_allocated() / 2**30
    finally:
        close()
    tokens_per_s = batch.num_tokens / (sum(times) / len(times))
    shape = _shape(model)
    gpu = "H200" if "H200" in torch.cuda.get_device_name() else "H100"
    figures = {
        "tokens_per_s": round(tokens_per_s),
        "mfu": round(shape.flops_per_token(sequence) * tokens_per_s / PEAK_BF16_FLOPS[gpu], 4),
        "peak_gib": round(peak, 2),
        "loss": round(float(stats.loss), 5),
        "grad_norm": round(float(stats.grad_norm), 4),
    }
    if config is not None:
        figures["plan_gib"] = round(_plan_gib(shape, config, sequence, batch.num_tokens, gpu), 2)
    return figures


def _shape(model: Path) -> Any:
    from qwenlong.rl.megatron.memory_plan import ModelShape

    config = json.loads((model / "config.json").read_text())
    return ModelShape.from_hf(config, str(model / "config.json"))


def _plan_gib(shape: Any, config: Any, sequence: int, tokens: int, gpu: str) -> float:
    """`qwenlong plan`'s total without its fixed overhead (the allocator's count excludes the
    CUDA context and NCCL buffers)."""
    from qwenlong.rl.megatron.memory_plan import plan_memory

    gpu_name = "H200-141GB" if gpu == "H200" else "H100-80GB"
    plan = plan_memory(
        shape, config, 1, sequence=sequence, tokens_per_step=tokens, gpu=gpu_name, overhead_gib=0
    )
    return plan.total_gib


def _print(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    device = torch.cuda.get_device_name()
    print(f"{device}: --size {args.size}, {args.sequences} x {args.sequence} tokens a step")
    print(f"{'backend':<16}{'tokens/s':>10}{'MFU':>8}{'peak GiB':>10}{'plan GiB':>10}")
    for name, r in results.items():
        plan = f"{r['plan_gib']:>10.2f}" if "plan_gib" in r else f"{'-':>10}"
        print(f"{name:<16}{r['tokens_per_s']:>10,}{r['mfu']:>8.1%}{r['peak_gib']:>10.2f}{plan}")
    print(json.dumps({"device": device, "size": args.size, "sequence": args.sequence, **results}))


if __name__ == "__main__":
    main()
