"""The torch policy backend behind the `Policy` protocol: N `TorchPolicy` ranks in data parallel.

`TorchPolicyRank` is what runs inside each Ray actor (or in the driver without Ray): it joins
the data-parallel group (gloo on CPU, NCCL on GPU), loads the model, and runs the micro-batches
the group planned. Every rank holds the whole model and the same weights after every step, so
rank 0 alone exports and saves them; each rank saves its own optimizer state.

`start_torch_policy` is the `torch` entry of the policy-backend registry (qwenlong.rl.config).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import Tensor

from qwenlong.core.errors import BackendError
from qwenlong.core.hf_weights import ChunkedStream, export_hf_weights, hf_weight_names
from qwenlong.rl.interfaces import PackedBatch, PolicyUpdate, RankLayout, StepStats, TokenStats
from qwenlong.rl.micro_batches import Plan
from qwenlong.rl.policy_group import PolicyGroup, rendezvous_address
from qwenlong.rl.rollout.vllm_transfer import ExportOrder, RankSender, TransferPlan
from qwenlong.rl.torch_policy import TorchPolicy, TorchPolicyConfig, resolve_device

if TYPE_CHECKING:
    from qwenlong.rl.config import TrainConfig
    from qwenlong.rl.rollout.colocation import Colocation


class TorchPolicyRank:
    """One data-parallel rank of the torch policy, implementing `PolicyRank`.

    Built cheaply (the model loads in `setup`) so that a Ray actor's constructor cannot fail:
    a failing method surfaces as its own one-line error, a failing constructor as "actor died".
    """

    def __init__(
        self, model_path: str, config: TorchPolicyConfig, rank: int, world_size: int
    ) -> None:
        self.model_path, self.config = model_path, config
        self.rank, self.world_size = rank, world_size
        self.policy: TorchPolicy | None = None
        self.incoming = ChunkedStream(lambda: self._policy().weight_receiver())
        self.vllm_sender: RankSender | None = None

    def rendezvous_address(self) -> str:
        """Where the ranks meet (asked of rank 0)."""
        return rendezvous_address()

    def setup(self, init_method: str | None) -> RankLayout:
        """Join the data-parallel group (when there are several ranks) and load the model."""
        if self.world_size > 1:
            device = resolve_device(self.config.device)
            if device.type == "cuda":
                torch.cuda.set_device(device.index or 0)
            dist.init_process_group(
                backend="nccl" if device.type == "cuda" else "gloo",
                init_method=init_method,
                rank=self.rank,
                world_size=self.world_size,
            )
        self.policy = TorchPolicy(self.model_path, self.config, self.rank, self.world_size)
        return RankLayout(self.rank, self.world_size, reports=True)

    def forward_logprobs(
        self, batch: PackedBatch, mask: Tensor | None, micro_batches: Plan
    ) -> TokenStats:
        return self._policy().forward_logprobs(batch, mask, micro_batches)

    def train_step(
        self, batch: PackedBatch, update: PolicyUpdate, global_sequences: int, micro_batches: Plan
    ) -> StepStats:
        return self._policy().train_step(
            batch, update, global_sequences=global_sequences, micro_batches=micro_batches
        )

    def sft_step(self, batch: PackedBatch, global_tokens: int, micro_batches: Plan) -> StepStats:
        return self._policy().sft_step(batch, global_tokens, micro_batches)

    def export_weights(self) -> Iterator[tuple[str, Tensor]]:
        """Rank 0's tensors copied to the CPU one at a time (a streaming generator under Ray);
        the other ranks hold the same weights and yield nothing."""
        if self.rank != 0:
            return
        for name, tensor in self._policy().export_weights():
            yield name, tensor.to("cpu", copy=True)

    def receive_weights(self, chunk: list[tuple[str, Tensor]], last: bool) -> None:
        """One chunk of a weight stream; the last one checks that every tensor arrived."""
        self.incoming.receive(chunk, last)

    def export_order(self) -> ExportOrder:
        """(HF name, shape, dtype) of each tensor `export_weights` yields, in its order."""
        model = self._policy().model
        dtype = next(model.parameters()).dtype  # one dtype for the whole model
        return [(name, shape, dtype) for name, shape in hf_weight_names(model).items()]

    def send_weights_to_vllm(self, plan: TransferPlan) -> None:
        """vLLM's own transfer (qwenlong.rl.rollout.vllm_transfer): NCCL from rank 0 (the others
        hold the same weights and send nothing), or IPC from every rank to its GPU's engine."""
        if self.vllm_sender is None:
            export = functools.partial(self._device_export, plan.everywhere)
            self.vllm_sender = RankSender(plan, self.rank, self.export_order(), export)
        self.vllm_sender.send()

    def _device_export(self, everywhere: bool) -> Iterator[tuple[str, Tensor]]:
        """The tensors where they live (the GPU): rank 0's for a broadcast, every rank's own
        copy for IPC (each rank holds the whole model)."""
        if self.rank == 0 or everywhere:
            yield from export_hf_weights(self._policy().model)

    def save_pretrained(self, out_dir: str) -> None:
        """Rank 0 writes the model and tokenizer in HF format."""
        if self.rank == 0:
            self._policy().save_pretrained(out_dir)

    def save_optimizer_state(self, folder: str) -> None:
        self._policy().save_optimizer_state(folder)

    def load_optimizer_state(self, folder: str) -> None:
        self._policy().load_optimizer_state(folder)

    def set_learning_rate_scale(self, scale: float) -> None:
        self._policy().set_learning_rate_scale(scale)

    def close(self) -> None:
        """Leave the process group and drop the model."""
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()
        self.policy = None

    def _policy(self) -> TorchPolicy:
        if self.policy is None:
            raise BackendError(f"policy rank {self.rank}: used before setup or after close")
        return self.policy


def start_torch_policy(
    config: TrainConfig, model_path: str, lr: float | None, placement: Colocation | None
) -> PolicyGroup:
    """`policy.num_workers` torch ranks from `model_path` (in this process without Ray; in
    the bundles of `placement` when engines share their GPUs)."""
    torch_config = config.policy_config(lr=lr)
    workers = config.policy.num_workers
    return PolicyGroup(
        [(TorchPolicyRank, (model_path, torch_config, rank, workers)) for rank in range(workers)],
        torch_config.planner(),
        num_cpus_per_rank=config.policy.num_cpus_per_worker,
        num_gpus_per_rank=config.policy.num_gpus_per_worker,
        in_process=not config.ray.enabled,
        bucket_bytes=int(config.weight_sync.bucket_mb * 2**20),
        name=f"torch policy ({Path(model_path).name})",
        actor_options=placement and [placement.rank_options(rank) for rank in range(workers)],
    )
