"""vLLM's own weight transfer from the policy ranks to the engines, never through the driver
or host memory: `vllm_nccl` (separate GPUs: policy rank 0 broadcasts to every engine worker in
one NCCL group) and `vllm_ipc` (colocated: each policy rank shares its GPU's copy of every
tensor with the engine beside it through CUDA IPC handles).

vLLM (0.33) splits the transfer in two: a trainer side (`WeightTransferTrainerFactory`, run on
every policy rank: rank 0 sends, the others take part in the export's gathers) reading a
`WeightSource`, and a worker side inside each engine, driven over a control-plane client
(`start_weight_update`, `update_weights`, `finish_weight_update`). Here:

- `TransferPlan` is what the driver hands every policy rank: the rendezvous (rank 0's node and
  a free port), the group size (1 sender + every engine worker) and the engines' client;
- `export_order` is the policy's export as vLLM's metadata wants it (HF on-disk names, full
  shapes, the wire dtype, in the order the export yields them), known without exporting;
- `RankSender` is the trainer side a policy rank keeps for the run.

IPC needs every policy rank to yield every full tensor: the torch policy's ranks each hold the
whole model; the Megatron export runs with `everywhere` (rank 0 broadcasts each assembled
tensor). NCCL cannot put two ranks of one group on the same GPU, so `vllm_nccl` needs
`rollout.vllm.placement: separate` and `vllm_ipc` `colocated`.
vLLM imports happen inside the functions: on CPU only the plan and the export order are used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import Tensor

ExportOrder = list[tuple[str, tuple[int, ...], torch.dtype]]
"""[(HF on-disk name, full shape, dtype)] in the order a policy's export yields them."""


@dataclass(frozen=True)
class TransferPlan:
    """Everything a policy rank needs to join the engines' weight-transfer group."""

    backend: str
    """vLLM's transfer backend ("nccl" or "ipc")."""
    client: Any
    """The engines' control plane (vLLM's `VLLMWeightSyncClient` protocol): picklable."""
    master_address: str = ""
    """NCCL: policy rank 0's node, where the sender opens the group."""
    master_port: int = 0
    world_size: int = 0
    """NCCL: 1 sender + the engines' workers (engines x tensor parallel)."""

    @property
    def everywhere(self) -> bool:
        """Whether every policy rank must yield every tensor (IPC)."""
        return self.backend == "ipc"


class RankSender:
    """One policy rank's side of the transfer, opened once and used after every update."""

    def __init__(
        self, plan: TransferPlan, rank: int, order: ExportOrder, export: Callable[[], Iterator]
    ) -> None:
        from vllm.distributed.weight_transfer.factory import WeightTransferTrainerFactory

        init = trainer_init_info(plan, rank)
        self.engine = WeightTransferTrainerFactory.trainer_init(
            init, client=plan.client, source=policy_source(order, export)
        )

    def send(self) -> None:
        """Every rank calls it; rank 0 broadcasts, the others run their side of the export."""
        self.engine.send_weights()


def trainer_init_info(plan: TransferPlan, rank: int) -> Any:
    """vLLM's trainer-side init info of `plan`'s backend for policy rank `rank`."""
    if plan.backend == "nccl":
        from vllm.distributed.weight_transfer.nccl_engine import NCCLTrainerInitInfo

        return NCCLTrainerInitInfo(
            master_address=plan.master_address,
            master_port=plan.master_port,
            world_size=plan.world_size,
            rank=rank,
        )
    if plan.backend == "ipc":
        from vllm.distributed.weight_transfer.ipc_engine import IPCTrainerInitInfo

        return IPCTrainerInitInfo(rank=rank)
    raise ValueError(f"vLLM weight transfer backend {plan.backend!r} is not offered")


def policy_source(order: ExportOrder, export: Callable[[], Iterator]) -> Any:
    """A vLLM `WeightSource` over a policy's export: metadata from `order`, full tensors from
    `export()` (NCCL: on the sender, a non-sending rank's export yields nothing but runs its
    sends; IPC: on every rank)."""
    from vllm.distributed.weight_transfer.base import ParamMeta, WeightSource

    class PolicyExport(WeightSource):
        @cached_property
        def metadata(self) -> list[Any]:
            return [ParamMeta(name, dtype, shape) for name, shape, dtype in order]

        def iter_full(self) -> Iterator[tuple[str, Tensor]]:
            wire = {name: dtype for name, _, dtype in order}
            for name, tensor in export():
                yield name, tensor.to(wire[name])

    return PolicyExport()


class EnginesClient:
    """vLLM's control-plane client protocol (`VLLMWeightSyncClient`) over qwenlong's engines:
    each call reaches every engine (a Ray actor's `transfer_call`, or an in-process engine's)
    and returns when all are done. Picklable, so the policy ranks hold it."""

    def __init__(self, targets: list[Any]) -> None:
        self.targets = targets

    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        self._call("init_weight_transfer_engine", {"init_info": init_info})

    def start_weight_update(self) -> None:
        self._call("start_weight_update", {})

    def update_weights(self, update_info: Any) -> None:
        self._call("update_weights", {"update_info": update_info})

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        self._call("finish_weight_update", {})

    def _call(self, method: str, kwargs: dict[str, Any]) -> None:
        remote = [t for t in self.targets if hasattr(t.transfer_call, "remote")]
        if remote:
            from qwenlong.rl.ray_calls import ray_get

            ray_get([t.transfer_call.remote(method, kwargs) for t in remote])
        for target in self.targets:
            if target not in remote:
                target.transfer_call(method, kwargs)
