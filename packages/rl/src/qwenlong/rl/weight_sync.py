"""Weights from the policy to the rollout engines: the one seam every step's sync goes through.

The default transport, "stream", is the protocols themselves: the engines load
`policy.export_weights()`, one HF-named tensor at a time, passed on in chunks of at most
`bucket_mb` (so no process holds the model twice). At 30B parameters a full copy through the
driver would be ~61 GB a step, so a backend pair with a faster path registers it here under a
name both sides list in their `weight_transports` (vLLM's CUDA IPC when colocated, NCCL when
not), and `sync_weights` picks the policy's most preferred transport the engine also takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pydantic import Field
from torch import Tensor

from qwenlong.core.config import ConfigModel
from qwenlong.core.errors import ConfigError
from qwenlong.core.registry import Registry
from qwenlong.rl.interfaces import Policy, RolloutEngine, WeightStream

Transport = Callable[[Policy, RolloutEngine], None]
"""Moves the policy's current weights into the engine."""

WEIGHT_TRANSPORTS: Registry[Transport] = Registry("weight transport")


class WeightSyncConfig(ConfigModel):
    """How weights move from the policy to the rollout engines after each update."""

    transport: str | None = None
    """A transport both sides list (qwenlong.rl.weight_sync); None takes the policy's most
    preferred one the engine also takes. Our choice."""
    bucket_mb: float = Field(default=256.0, gt=0)
    """Largest chunk of a weight stream sent to remote workers in one message, in MiB: bounds
    the memory a sync holds in flight. Our choice (verl and slime use 256-512 MiB buckets)."""


@WEIGHT_TRANSPORTS.register("stream")
def stream_weights(policy: Policy, rollout: RolloutEngine) -> None:
    """The engines read the policy's export stream (through the driver, chunk-bounded)."""
    rollout.load_weights(policy.export_weights())


@WEIGHT_TRANSPORTS.register("vllm_nccl")
@WEIGHT_TRANSPORTS.register("vllm_ipc")
def vllm_transfer(policy: Any, rollout: Any) -> None:
    """vLLM's own transfer from the policy ranks to the engine workers, NCCL broadcast or CUDA
    IPC, whichever the engines were started with (qwenlong.rl.rollout.vllm_transfer): a policy
    offering it has `sender_address()` and `send_weights_to_vllm(plan)`, an engine
    `transfer_plan(address)`."""
    policy.send_weights_to_vllm(rollout.transfer_plan(policy.sender_address()))


def choose_transport(policy: Policy, rollout: RolloutEngine, wanted: str | None = None) -> str:
    """`wanted` if both sides take it, else the policy's first choice the engine takes."""
    common = [name for name in policy.weight_transports if name in rollout.weight_transports]
    if wanted is not None:
        if wanted not in common:
            raise ConfigError(
                f"weight_sync.transport {wanted!r} is not served by both the policy "
                f"{list(policy.weight_transports)} and the rollout engine "
                f"{list(rollout.weight_transports)}"
            )
        return wanted
    if not common:
        raise ConfigError(
            f"the policy {list(policy.weight_transports)} and the rollout engine "
            f"{list(rollout.weight_transports)} share no weight transport"
        )
    return common[0]


def sync_weights(policy: Policy, rollout: RolloutEngine, transport: str | None = None) -> None:
    """Make the engines generate with the policy's current weights."""
    WEIGHT_TRANSPORTS.get(choose_transport(policy, rollout, transport))(policy, rollout)


def weight_chunks(
    weights: WeightStream, max_bytes: int
) -> Iterator[tuple[list[tuple[str, Tensor]], bool]]:
    """(chunk, is_last) of at most `max_bytes` each (a larger tensor alone), in stream order.

    The last chunk is flagged so a receiver can check the stream was complete; an empty stream
    gives one empty last chunk, so the receiver still gets to say what it never received.
    """
    chunk: list[tuple[str, Tensor]] = []
    size = 0
    for name, tensor in weights:
        nbytes = tensor.numel() * tensor.element_size()
        if chunk and size + nbytes > max_bytes:
            yield chunk, False
            chunk, size = [], 0
        chunk.append((name, tensor))
        size += nbytes
    yield chunk, True
