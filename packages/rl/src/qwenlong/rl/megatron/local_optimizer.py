"""Float32 AdamW over a Megatron rank's parameters, gradients reduced by hand (`optimizer:
local`): runs on any device, CPU included, where Megatron's DDP wrapper and distributed
optimizer do not (both allocate CUDA buffers).

It applies Megatron's own reduction rules (`finalize_model_grads`) to plain `param.grad`:
dense gradients summed over data x context parallel, routed experts' over expert-data
parallel, and tensor-parallel duplicates (norms, the router) combined where each TP rank saw
only part of their inputs; the routers' per-step statistics are reset. The global gradient
norm counts each shard once."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from qwenlong.rl.megatron.config import MegatronPolicyConfig
from qwenlong.rl.megatron.optimizer import adam_settings
from qwenlong.rl.optimizer_state import load_optimizer, save_optimizer


@dataclass(frozen=True)
class ParameterRole:
    """Where one trainable parameter of this rank sits in the parallel layout."""

    name: str
    param: Tensor
    expert: bool
    """A routed expert's: its gradient is summed over the expert-data-parallel copies, the
    others' over data x context parallel."""
    counted: bool
    """Whether this rank's copy enters the global gradient norm: one copy of each shard
    (replica 0 of its data-parallel copies, and for a tensor-parallel duplicate such as a norm
    or the router, tensor-parallel rank 0 only): the same rule as the weight export."""


def parameter_roles(model: Any) -> list[ParameterRole]:
    """Each trainable parameter's role, from the converter's layout of its global name."""
    from qwenlong.rl.megatron.convert import ParallelInfo, dims_of, global_parameters
    from qwenlong.rl.megatron.weight_layout import layout

    dims, where = dims_of(model), ParallelInfo.current()
    roles = []
    for name, param in global_parameters(model).items():
        if param.requires_grad:
            placed = layout(name, dims)
            roles.append(ParameterRole(name, param, placed.group == "etp", where.sends(placed)))
    return roles


class LocalAdamW:
    """`RankOptimizer` with torch's AdamW in float32."""

    def __init__(self, model: Any, config: MegatronPolicyConfig) -> None:
        self.module = model
        self.config = config
        self.roles = parameter_roles(model)
        self.params = [role.param for role in self.roles]
        self.optimizer = torch.optim.AdamW(self.params, **adam_settings(config))

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self) -> tuple[float, bool]:
        from megatron.core import parallel_state as ps

        for param in self.params:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
        self._reduce_tensor_parallel_duplicates()
        dense_group = ps.get_data_parallel_group(with_context_parallel=True)
        expert_group = ps.get_expert_data_parallel_group()
        squares = torch.zeros(1, dtype=torch.float64, device=self.params[0].device)
        for role in self.roles:
            group = expert_group if role.expert else dense_group
            if dist.get_world_size(group) > 1:
                dist.all_reduce(role.param.grad, op=dist.ReduceOp.SUM, group=group)
            if role.counted:
                squares += role.param.grad.double().pow(2).sum()
        if dist.get_world_size() > 1:
            dist.all_reduce(squares, op=dist.ReduceOp.SUM)
        norm = float(squares.sqrt())
        applied = math.isfinite(norm)
        if applied:
            max_norm = self.config.grad_clip if self.config.grad_clip is not None else math.inf
            if norm > max_norm:
                scale = max_norm / (norm + 1e-6)
                for param in self.params:
                    param.grad.mul_(scale)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._end_of_step()
        return norm, applied

    def _end_of_step(self) -> None:
        """What Megatron's `finalize_model_grads` does at the end of a step besides reducing:
        reset the routers' per-step statistics (the global auxiliary loss's token counts),
        which otherwise accumulate over the whole run."""
        from megatron.core.distributed.finalize_model_grads import reset_model_temporary_tensors

        reset_model_temporary_tensors(self.module.config, [self.module])

    def weights_changed(self) -> None:
        """Nothing to refresh: AdamW updates the model's own float32 weights."""

    def save(self, folder: str, rank: int) -> None:
        save_optimizer(self.optimizer, folder, rank)

    def load(self, folder: str, rank: int, where: str) -> None:
        load_optimizer(self.optimizer, folder, rank, adam_settings(self.config), where)

    def _reduce_tensor_parallel_duplicates(self) -> None:
        """Megatron's `finalize_model_grads` rule for parameters replicated over tensor
        parallel."""
        from megatron.core import parallel_state as ps

        group = ps.get_tensor_model_parallel_group()
        if dist.get_world_size(group) == 1:
            return
        sequence_parallel = self.config.parallel.sequence_parallel
        for role in self.roles:
            op = tp_reduction(role.name, role.param, sequence_parallel)
            if op is not None and not role.expert:
                dist.all_reduce(role.param.grad, op=op, group=group)


def tp_reduction(name: str, param: Tensor, sequence_parallel: bool) -> Any:
    """How a parameter held whole on every tensor-parallel rank combines its gradients there:
    summed when each rank saw part of its inputs (norms and the router under sequence
    parallel; q/k norms, shared by heads that TP splits), averaged where Megatron marks it,
    else None (each rank already holds the full gradient, or its own shard's)."""
    if getattr(param, "average_gradients_across_tp_domain", False):
        return dist.ReduceOp.AVG
    if sequence_parallel and getattr(param, "sequence_parallel", False):
        return dist.ReduceOp.SUM
    if "q_layernorm" in name or "k_layernorm" in name:
        return dist.ReduceOp.SUM
    return None
