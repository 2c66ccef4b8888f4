"""Megatron-Core's DDP wrapper and distributed optimizer for a policy rank on GPU
(`policy.megatron.distributed_optimizer: true`).

- Gradients accumulate in contiguous float32 buffers (`grad_reduce_in_fp32`) whatever the
  weights' dtype, and are SUMMED over data-parallel ranks: the DDP wrapper gets the model's
  config with `calculate_per_token_loss` set, because qwenlong's loss is already divided by
  the global token count (Megatron would otherwise scale by 1 / DP). The model keeps the flag
  off, so the routers' auxiliary losses are not rescaled by token counts (the policy scales
  them as Megatron's schedules do).
- `finalize_model_grads` reduces them (reduce-scatter to each rank's shard) and applies the
  tensor-parallel rules for norms, the router and the q/k norms.
- `DistributedOptimizer` keeps float32 main weights and Adam states for this rank's shard only
  (ZeRO-1), clips by the global norm, steps, and copies the result back into the bf16 weights.
  At the paper's lr 2e-6 a bf16 weight cannot hold the update (bf16 keeps 8 bits of mantissa:
  a step below about 1/256 of the weight rounds away); the float32 main copy accumulates it.

Optimizer state is saved per rank without gathering (each rank's own shard, Megatron's
"dp_reshardable" form) and resumes in the same layout. Megatron allocates these buffers on
CUDA, so this runs on GPU only (`benchmarks/gpu_check.sh`); the CPU tests cover `LocalAdamW`.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch

from qwenlong.core.errors import CheckpointError, first_line
from qwenlong.rl.megatron.config import MegatronPolicyConfig
from qwenlong.rl.optimizer_state import optimizer_file

NO_CLIP = 1e30
"""Megatron measures the gradient norm only while clipping; with `grad_clip: null` it clips at
a bound no gradient reaches, so the norm is still logged."""


class DistributedAdam:
    """`RankOptimizer` with Megatron-Core's DDP and `DistributedOptimizer` (CUDA only)."""

    def __init__(self, model: Any, config: MegatronPolicyConfig) -> None:
        from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
        from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer

        if not torch.cuda.is_available():
            raise RuntimeError("policy.megatron.distributed_optimizer needs CUDA")
        bf16 = config.dtype == "bfloat16"
        ddp_config = DistributedDataParallelConfig(
            grad_reduce_in_fp32=True,
            use_distributed_optimizer=True,
            overlap_grad_reduce=False,  # the step reduces once, after the last micro-batch
            average_in_collective=False,  # summed: per-token loss (see the module docstring)
        )
        summed = copy.copy(model.config)
        summed.calculate_per_token_loss = True
        self.module = DistributedDataParallel(summed, ddp_config, model)
        self.optimizer = get_megatron_optimizer(
            OptimizerConfig(
                optimizer="adam",
                lr=config.lr,
                weight_decay=config.weight_decay,
                adam_beta1=config.betas[0],
                adam_beta2=config.betas[1],
                adam_eps=config.eps,
                bf16=bf16,
                params_dtype=torch.bfloat16 if bf16 else torch.float32,
                main_params_dtype=torch.float32,
                use_distributed_optimizer=True,
                clip_grad=config.grad_clip if config.grad_clip is not None else NO_CLIP,
            ),
            [self.module],
        )
        self.model = model

    def step(self) -> tuple[float, bool]:
        from megatron.core.distributed import finalize_model_grads

        finalize_model_grads([self.module])
        applied, norm, _ = self.optimizer.step()
        self.module.zero_grad_buffer()
        self.optimizer.zero_grad()
        norm = float(norm) if norm is not None else math.inf
        return norm, bool(applied) and math.isfinite(norm)

    def set_lr(self, lr: float) -> None:
        _set_lr(self.optimizer, lr)

    def weights_changed(self) -> None:
        """Copy the model's new weights into the float32 main weights."""
        self.optimizer.reload_model_params()

    def save(self, folder: str, rank: int) -> None:
        path = optimizer_file(folder, rank)
        path.parent.mkdir(parents=True, exist_ok=True)
        shards = [
            _mark_unpadded(part.get_parameter_state_dp_reshardable())
            for part in _parts(self.optimizer)
        ]
        torch.save({"optimizer": self.optimizer.state_dict(), "shards": shards}, path)

    def load(self, folder: str, rank: int, where: str) -> None:
        path = optimizer_file(folder, rank)
        if not Path(path).is_file():
            raise CheckpointError(f"{where}: no optimizer state at {path}")
        try:
            saved = torch.load(path, map_location="cpu", weights_only=False)
            self.optimizer.load_state_dict(saved["optimizer"])
            for part, shard in zip(_parts(self.optimizer), saved["shards"], strict=True):
                part.load_parameter_state_from_dp_reshardable(shard)
        except (ValueError, KeyError, TypeError, RuntimeError, AssertionError) as err:
            raise CheckpointError(
                f"{where}: cannot load optimizer state {path} (saved in another layout?): "
                f"{first_line(err)}"
            ) from None


def _set_lr(optimizer: Any, lr: float) -> None:
    """Megatron's param groups carry `lr` (and, for its scheduler, `max_lr`/`min_lr`, unused
    here: no scheduler runs, the paper's lr is constant)."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def _parts(optimizer: Any) -> list[Any]:
    """The distributed optimizers inside Megatron's chain (dense and expert parameters are
    optimised separately)."""
    parts = getattr(optimizer, "chained_optimizers", [optimizer])
    return [part for part in parts if hasattr(part, "get_parameter_state_dp_reshardable")]


def _mark_unpadded(state: dict) -> dict:
    """Megatron's reshardable loader skips entries flagged as bucket padding, a flag only its
    sharded-checkpoint writer sets; entries taken straight from this rank's buckets are real."""
    for key, per_dtype in state.items():
        if not isinstance(key, int):
            continue
        for buckets in per_dtype.values():
            for bucket in buckets:
                for entry in bucket:
                    entry.setdefault("padding", False)
    return state
