"""How a Megatron policy rank turns its gradients into a step: the seam between the CPU's
plain float32 AdamW and Megatron-Core's distributed optimizer on GPU.

Both see the same loss: each micro-batch's loss is already divided by the global token count
(qwenlong.rl.losses), so gradients are SUMMED over data-parallel copies (Megatron's
`calculate_per_token_loss`), never averaged, and the step is the same at every layout.

- "local" (`local_optimizer.LocalAdamW`): gradients in `param.grad`, reduced by hand over the
  data-, expert-data- and tensor-parallel groups, clipped by the global norm, torch AdamW in
  float32. Runs anywhere; what the CPU tests check against the torch policy.
- "distributed" (`distributed_optimizer.DistributedAdam`): Megatron's DDP wrapper (contiguous
  float32 gradient buffers, bucketed reduce-scatter) and `DistributedOptimizer` (Adam states
  and float32 main weights sharded over data-parallel ranks, ZeRO-1): with bf16 weights, the
  float32 main copy is what keeps a 2e-6 update from rounding away. Needs CUDA (Megatron
  allocates its buffers with device="cuda").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from qwenlong.core.registry import Registry

if TYPE_CHECKING:
    from qwenlong.rl.megatron.config import MegatronPolicyConfig


class RankOptimizer(Protocol):
    """One rank's optimizer over its part of the model."""

    module: Any
    """What the forward pass runs through: the model, or its DDP wrapper."""

    def step(self) -> tuple[float, bool]:
        """Reduce the accumulated gradients over their groups, clip by the global norm, apply
        and clear them: (global gradient norm, whether the step was applied). A non-finite
        norm skips the step and still clears the gradients."""
        ...

    def weights_changed(self) -> None:
        """The model's weights were replaced from outside (a checkpoint, a weight stream):
        refresh any copy of them the optimizer keeps (float32 main weights)."""
        ...

    def save(self, folder: str, rank: int) -> None:
        """Write this rank's optimizer state (one file per rank) under `folder`."""
        ...

    def load(self, folder: str, rank: int, where: str) -> None:
        """Read this rank's state back (same layout); CheckpointError naming `where`."""
        ...

    def set_lr(self, lr: float) -> None:
        """Step with learning rate `lr` from now on."""
        ...


OPTIMIZERS: Registry[Any] = Registry("policy.megatron optimizer")
"""{name: class(model, config) -> RankOptimizer}; chosen by `optimizer_name`."""
OPTIMIZERS.add_lazy("local", "qwenlong.rl.megatron.local_optimizer:LocalAdamW")
OPTIMIZERS.add_lazy("distributed", "qwenlong.rl.megatron.distributed_optimizer:DistributedAdam")


def optimizer_name(config: MegatronPolicyConfig) -> str:
    """Which optimizer a config asks for."""
    return "distributed" if config.distributed_optimizer else "local"


def make_optimizer(model: Any, config: MegatronPolicyConfig) -> RankOptimizer:
    """The optimizer `config` asks for, over this rank's `model`."""
    return OPTIMIZERS.get(optimizer_name(config))(model, config)


def adam_settings(config: MegatronPolicyConfig) -> dict[str, Any]:
    """torch AdamW's keyword arguments from the config (the config wins over saved state)."""
    return {
        "lr": config.lr,
        "betas": config.betas,
        "eps": config.eps,
        "weight_decay": config.weight_decay,
    }
