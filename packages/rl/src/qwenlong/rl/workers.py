"""Ray actors for the policy and the rollout engines, and the driver-side groups that drive them.

The trainer is a single controller: it holds a `PolicyGroup` and a `RolloutGroup`, which look
like one `Policy` and one `RolloutEngine`, and never touches Ray itself. A `PolicyGroup` runs N
`TorchPolicy` ranks in data parallel, one per `PolicyWorker` actor, joined in a torch.distributed
group (gloo on CPU, NCCL on GPU): each step the batch is split across ranks by tokens, every
rank gets the same global token count, and the ranks sum their gradients before stepping, so N
workers take the same step as one. A `RolloutGroup` spreads conversations over M
`RolloutWorker` actors; with a seed, each conversation's samples are the same whichever worker
draws them (the hf backend keys its random streams by prompt).

The caller starts Ray (`ray.init`) before building a group of actors. `in_process=True` runs a
single policy rank in the driver process instead, without Ray: no extra process, no transfer of
batches and weights, the better choice when the policy and the rollouts share a few CPU cores.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import ray
import torch
import torch.distributed as dist
from torch import Tensor

from qwenlong.core.backends.config import HFBackendConfig
from qwenlong.core.errors import BackendError, ConfigError, QwenlongError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation
from qwenlong.rl.batch_checks import check_per_token
from qwenlong.rl.batching import token_positions
from qwenlong.rl.dp import merge_step_stats, split_for_ranks
from qwenlong.rl.interfaces import PackedBatch, PolicyUpdate, StepStats, TokenStats
from qwenlong.rl.ray_calls import ray_get
from qwenlong.rl.rollout import HFRolloutEngine
from qwenlong.rl.torch_policy import TorchPolicy, TorchPolicyConfig, resolve_device


class PolicyRank:
    """One data-parallel rank: joins the process group, then serves its `TorchPolicy`.

    Built in two phases because the group needs an address before any rank can join it: rank 0
    picks a free port on its node (`rendezvous_address`), then every rank calls `setup` with
    that address at the same time (joining blocks until all ranks have arrived).
    """

    def __init__(
        self, model_path: str, config: TorchPolicyConfig, rank: int, world_size: int
    ) -> None:
        self.model_path = model_path
        self.config = config
        self.rank = rank
        self.world_size = world_size
        self.policy: TorchPolicy | None = None

    def rendezvous_address(self) -> str:
        """A tcp:// address on this node with a port that was free a moment ago."""
        with socket.socket() as sock:
            sock.bind(("", 0))
            port = int(sock.getsockname()[1])
        return f"tcp://{ray.util.get_node_ip_address()}:{port}"

    def setup(self, init_method: str | None) -> None:
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

    def forward_logprobs(self, batch: PackedBatch, mask: Tensor | None) -> TokenStats:
        return self._policy().forward_logprobs(batch, mask)

    def train_step(
        self, batch: PackedBatch, update: PolicyUpdate, global_sequences: int
    ) -> StepStats:
        return self._policy().train_step(batch, update, global_sequences=global_sequences)

    def sft_step(self, batch: PackedBatch, global_tokens: int) -> StepStats:
        return self._policy().sft_step(batch, global_tokens)

    def export_weights(self) -> Iterator[tuple[str, Tensor]]:
        """Named tensors copied to the CPU one at a time (a streaming generator under Ray)."""
        for name, tensor in self._policy().export_weights():
            yield name, tensor.to("cpu", copy=True)

    def load_weights(self, weights: list[tuple[str, Tensor]]) -> None:
        self._policy().load_weights(weights)

    def optimizer_state(self) -> dict[str, Any]:
        return self._policy().optimizer_state()

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        self._policy().load_optimizer_state(state)

    def save_pretrained(self, out_dir: str) -> str:
        return str(self._policy().save_pretrained(out_dir))

    def close(self) -> None:
        """Leave the process group."""
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()
        self.policy = None

    def _policy(self) -> TorchPolicy:
        if self.policy is None:
            raise BackendError(f"policy rank {self.rank}: used before setup or after close")
        return self.policy


class RolloutRank:
    """An `HFRolloutEngine` loaded in `setup` rather than in the constructor.

    A failure inside a Ray actor's constructor kills the actor and surfaces as a multi-line
    "actor died" error; a failure in a method surfaces as the method's own exception, which
    the groups re-raise as the one-line error it is (a missing model directory, say).
    """

    def __init__(self, model_path: str, config: HFBackendConfig) -> None:
        self.model_path = model_path
        self.config = config
        self.engine: HFRolloutEngine | None = None

    def setup(self) -> None:
        self.engine = HFRolloutEngine(self.model_path, self.config)

    def generate(
        self, conversations: list[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        return self._engine().generate(conversations, sampling)

    def prompt_ids(self, conversations: list[Conversation]) -> list[list[int]]:
        return self._engine().prompt_ids(conversations)

    def load_weights(self, weights: list[tuple[str, Tensor]]) -> None:
        self._engine().load_weights(weights)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def _engine(self) -> HFRolloutEngine:
        if self.engine is None:
            raise BackendError(
                f"rollout worker {self.model_path}: used before setup or after close"
            )
        return self.engine


PolicyWorker = ray.remote(PolicyRank)
"""`PolicyRank` as a Ray actor class (`PolicyWorker.options(num_cpus=...).remote(...)`)."""

RolloutWorker = ray.remote(RolloutRank)
"""`RolloutRank` as a Ray actor class; `load_weights` takes a list of named tensors."""


class PolicyGroup:
    """N torch policy ranks in data parallel, driven from the caller's process like one Policy.

    `num_cpus_per_worker` / `num_gpus_per_worker` are the Ray resources each rank reserves
    (fractions allowed, e.g. 0.5 CPU so that two ranks and a rollout worker fit on 2 CPUs).
    `in_process` (only with one worker) keeps the rank in this process, without Ray.
    """

    def __init__(
        self,
        model_path: str | Path,
        config: TorchPolicyConfig = TorchPolicyConfig(),
        num_workers: int = 1,
        *,
        num_cpus_per_worker: float = 1.0,
        num_gpus_per_worker: float = 0.0,
        in_process: bool = False,
    ) -> None:
        if num_workers < 1:
            raise ConfigError(f"policy group: num_workers must be >= 1, got {num_workers}")
        if in_process and num_workers != 1:
            raise ConfigError(f"policy group: in_process needs 1 worker, got {num_workers}")
        self.world_size = num_workers
        self._local: PolicyRank | None = None
        self._actors: list[Any] = []
        if in_process:
            self._local = PolicyRank(str(model_path), config, 0, 1)
            self._local.setup(None)
            return
        options = PolicyWorker.options(num_cpus=num_cpus_per_worker, num_gpus=num_gpus_per_worker)
        self._actors = [
            options.remote(str(model_path), config, rank, num_workers)
            for rank in range(num_workers)
        ]
        try:
            address = (
                ray_get(self._actors[0].rendezvous_address.remote()) if num_workers > 1 else None
            )
            ray_get([actor.setup.remote(address) for actor in self._actors])
        except QwenlongError:
            for actor in self._actors:
                ray.kill(actor)
            self._actors = []
            raise

    # --- Policy -------------------------------------------------------------------------

    def forward_logprobs(self, batch: PackedBatch, mask: Tensor | None = None) -> TokenStats:
        """Each rank scores its share; the results are put back in the packed order. `mask`
        limits the work to the positions it marks, as in `TorchPolicy.forward_logprobs`."""
        if mask is not None:
            check_per_token("mask", mask, batch, "policy group")
        parts = split_for_ranks(batch, self.world_size)
        calls = []
        for part in parts:
            share = None if mask is None else mask[token_positions(batch, part)]
            calls.append((batch.select(part), share))
        results = self._call("forward_logprobs", calls)
        logprobs = torch.zeros(batch.num_tokens, dtype=torch.float32)
        entropy = torch.zeros(batch.num_tokens, dtype=torch.float32)
        for part, stats in zip(parts, results, strict=True):
            positions = token_positions(batch, part)
            logprobs[positions] = stats.logprobs
            entropy[positions] = stats.entropy
        return TokenStats(logprobs=logprobs, entropy=entropy)

    def train_step(self, batch: PackedBatch, update: PolicyUpdate) -> StepStats:
        """One synchronous step: the batch split by tokens, the same `global_tokens` (and
        global sequence count) on every rank, the rank stats summed (`merge_step_stats`)."""
        for name in ("advantages", "token_mask", "old_logprobs", "ref_logprobs"):
            check_per_token(f"update.{name}", getattr(update, name), batch, "policy group")
        mask = update.token_mask.bool()
        global_sequences = int(torch.unique(batch.sequence_index()[mask]).numel())
        calls = []
        for part in split_for_ranks(batch, self.world_size):
            positions = token_positions(batch, part)
            share = PolicyUpdate(
                advantages=update.advantages[positions],
                token_mask=mask[positions],
                old_logprobs=_cut(update.old_logprobs, positions),
                ref_logprobs=_cut(update.ref_logprobs, positions),
                global_tokens=update.global_tokens,
            )
            calls.append((batch.select(part), share, global_sequences))
        return merge_step_stats(self._call("train_step", calls))

    def sft_step(self, batch: PackedBatch, global_tokens: int) -> StepStats:
        """Cross-entropy step (SFT warm start), split across ranks like `train_step`."""
        parts = split_for_ranks(batch, self.world_size)
        calls = [(batch.select(part), global_tokens) for part in parts]
        return merge_step_stats(self._call("sft_step", calls))

    def export_weights(self) -> Iterator[tuple[str, Tensor]]:
        """Rank 0's named tensors (all ranks hold the same weights), streamed one at a time."""
        if self._local is not None:
            yield from self._local.export_weights()
            return
        for ref in self._live()[0].export_weights.remote():
            yield ray_get(ref)

    # --- state --------------------------------------------------------------------------

    def load_weights(self, weights: Iterable[tuple[str, Tensor]]) -> None:
        """Copy the same named tensors into every rank (strict)."""
        named = list(weights)
        if self._local is not None:
            self._local.load_weights(named)
            return
        ref = ray.put(named)
        ray_get([actor.load_weights.remote(ref) for actor in self._live()])

    def optimizer_state(self) -> list[dict[str, Any]]:
        """Each rank's optimizer state, in rank order (identical today: the optimizer is
        replicated; kept per rank so a sharded optimizer fits the same checkpoint format)."""
        return self._call("optimizer_state", [()] * self.world_size)

    def load_optimizer_state(self, states: Sequence[dict[str, Any]]) -> None:
        """Restore `optimizer_state()` output: one state per rank, in rank order."""
        if len(states) != self.world_size:
            raise ConfigError(
                f"policy group: {len(states)} optimizer states for {self.world_size} ranks"
            )
        self._call("load_optimizer_state", [(state,) for state in states])

    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Rank 0 writes the model and tokenizer in HF format (the driver's path must be
        reachable from rank 0's node)."""
        if self._local is not None:
            return Path(self._local.save_pretrained(str(out_dir)))
        return Path(ray_get(self._live()[0].save_pretrained.remote(str(out_dir))))

    def shutdown(self) -> None:
        """Leave the process group and end the actors (or drop the in-process rank)."""
        if self._local is not None:
            self._local.close()
            self._local = None
            return
        if self._actors:
            ray_get([actor.close.remote() for actor in self._actors])
            for actor in self._actors:
                ray.kill(actor)
            self._actors = []

    def _call(self, method: str, args: Sequence[tuple]) -> list[Any]:
        """Call `method` on every rank with its own args, concurrently; results in rank order."""
        if self._local is not None:
            return [getattr(self._local, method)(*args[0])]
        refs = [
            getattr(actor, method).remote(*arg)
            for actor, arg in zip(self._live(), args, strict=True)
        ]
        return ray_get(refs)

    def _live(self) -> list[Any]:
        if not self._actors:
            raise BackendError("policy group: used after shutdown")
        return self._actors


class RolloutGroup:
    """M `RolloutWorker` actors behind the `RolloutEngine` interface.

    `generate` gives each worker a contiguous, near-equal share of the conversations and
    concatenates the answers in input order; `load_weights` puts the tensors in Ray's object
    store once and every worker copies them from there.
    """

    def __init__(
        self,
        model_path: str | Path,
        config: HFBackendConfig = HFBackendConfig(),
        num_workers: int = 1,
        *,
        num_cpus_per_worker: float = 1.0,
        num_gpus_per_worker: float = 0.0,
    ) -> None:
        if num_workers < 1:
            raise ConfigError(f"rollout group: num_workers must be >= 1, got {num_workers}")
        options = RolloutWorker.options(num_cpus=num_cpus_per_worker, num_gpus=num_gpus_per_worker)
        self._actors = [options.remote(str(model_path), config) for _ in range(num_workers)]
        self.name = str(model_path)
        try:
            ray_get([actor.setup.remote() for actor in self._actors])
        except QwenlongError:
            self.shutdown()
            raise

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        actors = self._live()
        shares = _shares(len(conversations), len(actors))
        refs = [
            actor.generate.remote(list(conversations[start:end]), sampling)
            for actor, (start, end) in zip(actors, shares, strict=True)
            if end > start
        ]
        return [group for result in ray_get(refs) for group in result]

    def prompt_ids(self, conversations: Sequence[Conversation]) -> list[list[int]]:
        return ray_get(self._live()[0].prompt_ids.remote(list(conversations)))

    def load_weights(self, weights: Iterable[tuple[str, Tensor]]) -> None:
        actors = self._live()
        ref = ray.put([(name, tensor.detach().cpu()) for name, tensor in weights])
        ray_get([actor.load_weights.remote(ref) for actor in actors])

    def shutdown(self) -> None:
        """End the actors."""
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []

    def _live(self) -> list[Any]:
        if not self._actors:
            raise BackendError("rollout group: used after shutdown")
        return self._actors


def _shares(count: int, workers: int) -> list[tuple[int, int]]:
    """[start, end) of each worker's contiguous share; sizes differ by at most one."""
    base, extra = divmod(count, workers)
    bounds = [0]
    for worker in range(workers):
        bounds.append(bounds[-1] + base + (1 if worker < extra else 0))
    return list(itertools.pairwise(bounds))


def _cut(values: Tensor | None, positions: Tensor) -> Tensor | None:
    return None if values is None else values[positions]
