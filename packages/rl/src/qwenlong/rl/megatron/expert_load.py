"""Per-layer expert load of a training step: how evenly the routers spread the tokens.

A forward hook on every MoE layer's router adds up its routing map (tokens x experts, True where
a token is sent) while a step runs, in a row per layer of the whole model (a pipeline stage
fills its own layers' rows). At the end the counts are summed over all ranks and divided
by the number of ranks that routed the same tokens (tensor-parallel peers without sequence
parallel each route every token), and each layer is summarised by its busiest and idlest
expert's load relative to a perfectly even one (1.0): with the auxiliary loss off (the paper's
RL loss) this is the only sign of routing collapse, which silently turns a MoE into a few
experts.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


class ExpertLoad:
    """Counts routed tokens per layer and expert while `active`."""

    def __init__(self, model: Any) -> None:
        config = model.config
        self.counts = torch.zeros(
            config.num_layers, config.num_moe_experts or 0, dtype=torch.float64
        )
        self.active = False
        for layer in model.decoder.layers:
            if hasattr(layer.mlp, "router"):
                layer.mlp.router.register_forward_hook(self._hook(layer.layer_number - 1))

    def _hook(self, index: int) -> Any:
        def count(_module: Any, _inputs: Any, output: tuple[Tensor, Tensor]) -> None:
            if self.active:
                self.counts[index] += output[1].detach().sum(dim=0).double().cpu()

        return count

    def start(self) -> None:
        self.counts.zero_()
        self.active = True

    def finish(self, duplicated_by: int, report: bool) -> dict[str, float]:
        """{"moe_load_max/layer_L": ..., "moe_load_min/layer_L": ...} from this step's counts
        over every rank (a collective: every rank calls it); `report` False gives zeros (the
        caller sums one record per data-parallel share)."""
        self.active = False
        counts = self.counts.clone()
        if dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(counts, op=dist.ReduceOp.SUM)
        counts /= duplicated_by
        figures: dict[str, float] = {}
        for name, row in enumerate(counts):
            if not row.any():  # a dense layer (or no tokens this step)
                continue
            mean = float(row.mean())
            high = float(row.max()) / mean if mean > 0 else 0.0
            low = float(row.min()) / mean if mean > 0 else 0.0
            figures[f"moe_load_max/layer_{name}"] = high if report else 0.0
            figures[f"moe_load_min/layer_{name}"] = low if report else 0.0
        return figures


def router_losses(micro_batches: int, report: bool) -> dict[str, float]:
    """{"moe_<loss>": value} of the step's router losses, from Megatron's tracker: the
    load-balancing loss (without its coefficient) and the z-loss, each a mean over the MoE
    layers and the micro-batches, averaged over data-parallel ranks by Megatron's reduction (a
    collective: every rank calls it). Empty when both losses are off; zeros unless `report`,
    like `ExpertLoad.finish`. The tracker is cleared for the next step."""
    from megatron.core.transformer.moe.moe_utils import (
        clear_aux_losses_tracker,
        get_moe_layer_wise_logging_tracker,
        reduce_aux_losses_tracker_across_ranks,
    )

    tracker = get_moe_layer_wise_logging_tracker()
    if not tracker:
        return {}
    reduce_aux_losses_tracker_across_ranks()
    figures = {}
    for name, entry in sorted(tracker.items()):
        values = entry["values"].float()
        layers = max(int((values != 0).sum()), 1)
        mean = float(values.sum()) / (layers * max(micro_batches, 1))
        figures[f"moe_{name}"] = mean if report else 0.0
    clear_aux_losses_tracker()
    return figures
