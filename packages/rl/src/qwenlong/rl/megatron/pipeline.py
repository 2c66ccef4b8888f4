"""Pipeline parallel for the policy: a step's micro-batches through this rank's stage.

The schedule is 1F1B (one forward, one backward), as in Megatron-Core: stage s of P first runs
P - s - 1 forwards (the warm-up), then alternates one forward with the backward of its oldest
micro-batch, then runs the remaining backwards. The last stage scores each micro-batch and runs
its backward at once; the others take each gradient from the next stage and pass theirs on to
the previous one. A stage so holds the activations of at most P - s micro-batches (GPipe would
hold all of them), which is what `qwenlong plan` assumes. Megatron's own schedule functions are
not used because they scale the loss and the routers' losses their own way, which qwenlong's
per-token loss (already divided by the global token count) replaces.

Sends are non-blocking and all are waited for at the end of the step, so no stage ever waits on
a send while its receiver waits on it. Every stage builds each micro-batch's row itself (the
stages of one pipeline hold the same data), so the shape of each received activation is known
without exchanging it. Without pipeline parallel the same loop is the plain one: forward,
score, backward, per micro-batch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from qwenlong.rl.megatron.row import PackedRow

Visit = Callable[[list[int], PackedRow, Tensor], Tensor]
"""(micro-batch, its row, the logits) -> the loss to back-propagate (last stage only)."""


class Pipeline:
    """This rank's place in its pipeline: neighbours and the activations' geometry."""

    def __init__(self, hidden: int, dtype: torch.dtype, device: str, split_by: int) -> None:
        from megatron.core import parallel_state as ps

        self.first = ps.is_pipeline_first_stage()
        self.last = ps.is_pipeline_last_stage()
        self.previous = None if self.first else ps.get_pipeline_model_parallel_prev_rank()
        self.next = None if self.last else ps.get_pipeline_model_parallel_next_rank()
        self.stages_after = (
            ps.get_pipeline_model_parallel_world_size() - ps.get_pipeline_model_parallel_rank() - 1
        )
        self.hidden, self.dtype, self.device = hidden, dtype, device
        self.split_by = split_by
        """Tensor-parallel size under sequence parallel (activations between stages are then
        split along the sequence), else 1."""
        self.sends: list[tuple[Any, Tensor]] = []
        """Sends in flight, each with its tensor (kept alive until the send completes)."""

    def run(
        self,
        model: Any,
        forward: Callable[[PackedRow], Tensor],
        rows: Sequence[tuple[list[int], PackedRow]],
        visit: Visit,
        train: bool,
    ) -> None:
        """Every (micro-batch, row) of `rows` through this stage: `forward(row)` runs the
        stage's layers (its input set on `model` first, when not the first stage); the last
        stage hands the logits to `visit`. With `train`, gradients flow back through all stages."""
        in_flight: deque[tuple[Tensor | None, Tensor]] = deque()

        def forward_one(micro: list[int], row: PackedRow) -> None:
            received = None if self.first else self._receive(self._shape(row), train)
            if received is not None:
                model.set_input_tensor(received)
            output = forward(row)
            if self.last:
                output = visit(micro, row, output)  # the loss
            else:
                self._send(output, self.next)
            if train:
                in_flight.append((received, output))

        def backward_one() -> None:
            received, output = in_flight.popleft()
            if self.last:
                output.backward()
            else:
                gradient = self._receive(output.shape, grad=False, source=self.next)
                torch.autograd.backward(output, gradient)
            self._send_back(received)

        warm_up = self.stages_after if train else len(rows)
        for index, (micro, row) in enumerate(rows):
            forward_one(micro, row)
            if train and index >= warm_up:
                backward_one()
        while in_flight:
            backward_one()
        for request, _tensor in self.sends:
            request.wait()
        self.sends.clear()

    def _shape(self, row: PackedRow) -> tuple[int, int, int]:
        """[sequence, batch 1, hidden] of the activation entering this stage for `row`."""
        return (row.ids.shape[1] // self.split_by, 1, self.hidden)

    def _receive(self, shape: Sequence[int], grad: bool, source: int | None = None) -> Tensor:
        tensor = torch.empty(tuple(shape), dtype=self.dtype, device=self.device)
        dist.recv(tensor, src=self.previous if source is None else source)
        return tensor.requires_grad_(grad)

    def _send(self, tensor: Tensor, destination: int | None) -> None:
        self.sends = [(request, kept) for request, kept in self.sends if not request.is_completed()]
        payload = tensor.detach().contiguous()
        self.sends.append((dist.isend(payload, dst=destination), payload))

    def _send_back(self, received: Tensor | None) -> None:
        """The gradient of this stage's input to the previous stage."""
        if received is not None:
            gradient = received.grad if received.grad is not None else torch.zeros_like(received)
            self._send(gradient, self.previous)
