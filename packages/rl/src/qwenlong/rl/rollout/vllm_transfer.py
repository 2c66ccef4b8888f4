"""vLLM's own weight transfer from the policy ranks to the engines (`weight_sync.transport:
vllm_nccl`): the weights go from policy rank 0's GPU to every engine worker in one NCCL
broadcast group, never through the driver or host memory.

vLLM (0.33) splits the transfer in two: a trainer side (`WeightTransferTrainerFactory`, run on
every policy rank: rank 0 sends, the others take part in the export's gathers) reading a
`WeightSource`, and a worker side inside each engine, driven over a control-plane client
(`start_weight_update`, `update_weights`, `finish_weight_update`). Here:

- `TransferPlan` is what the driver hands every policy rank: the rendezvous (rank 0's node and
  a free port), the group size (1 sender + every engine worker) and the engines' client;
- `export_order` is the policy's export as vLLM's metadata wants it (HF on-disk names, full
  shapes, the wire dtype, in the order the export yields them), known without exporting;
- `RankSender` is the trainer side a policy rank keeps for the run.

CUDA IPC (vLLM's transfer for colocated engines) is not offered: it needs every policy rank to
yield every full tensor, while the Megatron export gathers each one to rank 0 only; colocated
runs stream through the driver in bounded buckets (`transport: stream`). NCCL cannot put two
ranks of one group on the same GPU, so `vllm_nccl` needs `rollout.vllm.placement: separate`.
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
    """vLLM's transfer backend ("nccl")."""
    master_address: str
    """Policy rank 0's node: the sender opens the group there."""
    master_port: int
    world_size: int
    """1 sender + the engines' workers (engines x tensor parallel)."""
    client: Any
    """The engines' control plane (vLLM's `VLLMWeightSyncClient` protocol): picklable."""


class RankSender:
    """One policy rank's side of the transfer, opened once and used after every update."""

    def __init__(
        self, plan: TransferPlan, rank: int, order: ExportOrder, export: Callable[[], Iterator]
    ) -> None:
        from vllm.distributed.weight_transfer.factory import WeightTransferTrainerFactory
        from vllm.distributed.weight_transfer.nccl_engine import NCCLTrainerInitInfo

        if plan.backend != "nccl":
            raise ValueError(f"vLLM weight transfer backend {plan.backend!r} is not offered")
        init = NCCLTrainerInitInfo(
            master_address=plan.master_address,
            master_port=plan.master_port,
            world_size=plan.world_size,
            rank=rank,
        )
        self.engine = WeightTransferTrainerFactory.trainer_init(
            init, client=plan.client, source=policy_source(order, export)
        )

    def send(self) -> None:
        """Every rank calls it; rank 0 broadcasts, the others run their side of the export."""
        self.engine.send_weights()


def policy_source(order: ExportOrder, export: Callable[[], Iterator]) -> Any:
    """A vLLM `WeightSource` over a policy's export: metadata from `order`, full tensors from
    `export()` (on the sender; a non-sending rank's export yields nothing but runs its sends)."""
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
