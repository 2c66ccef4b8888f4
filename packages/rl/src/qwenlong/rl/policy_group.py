"""A policy's ranks driven from the trainer's process like one `Policy`, whatever the backend.

The trainer is a single controller: it holds one `PolicyGroup` and never touches Ray or a rank
itself. The group starts one `PolicyRank` per process (Ray actors, or one rank in this process
without Ray), learns each rank's place in the parallel layout from `setup`, and then, for every
call:

- divides the batch among data-parallel shares only, balanced by tokens; tensor, context and
  pipeline peers of a share get the same sequences;
- plans every share's micro-batches here and pads the plans to one count, so every rank runs
  the same number of forward/backward passes (a collective such as expert parallelism's
  all-to-all needs every rank in every micro-batch, including a rank that got no sequence);
- sends every rank the same `global_tokens`, so the summed per-rank gradients are the whole
  batch's (the loss is normalised by global counts, qwenlong.rl.losses);
- reads results from one reporting rank per share and puts them back in packed order.

Weights travel as streams in chunks of at most `bucket_bytes`; optimizer state never leaves
the ranks (each writes its own file into a folder the driver names).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from qwenlong.core.errors import BackendError, CheckpointError, ConfigError, QwenlongError
from qwenlong.rl.batch_checks import check_per_token, check_update_shapes
from qwenlong.rl.data_parallel import split_for_ranks
from qwenlong.rl.interfaces import (
    PackedBatch,
    PolicyUpdate,
    RankLayout,
    StepStats,
    TokenStats,
    WeightStream,
)
from qwenlong.rl.micro_batches import MicroBatchPlanner, equal_counts
from qwenlong.rl.rollout.vllm_transfer import TransferPlan
from qwenlong.rl.trained_stats import with_share_logprobs
from qwenlong.rl.weight_sync import weight_chunks

RankSpec = tuple[type, tuple[Any, ...]]
"""(rank class implementing `PolicyRank`, its constructor arguments), one per process."""

OPTIMIZER_LAYOUT = "layout.json"
"""In an optimizer-state folder: how many ranks wrote it (a resume must match)."""


class PolicyGroup:
    """The ranks of one policy behind the `Policy` protocol.

    `num_cpus_per_rank` / `num_gpus_per_rank` are the Ray resources each rank reserves
    (fractions allowed, e.g. 0.5 CPU so that two ranks and a rollout worker fit on 2 CPUs);
    `actor_options` (one dict per rank) replaces them where the ranks have set places, e.g.
    the bundles of a colocated placement group (qwenlong.rl.rollout.colocation).
    `in_process` (one rank only) runs the rank in this process, without Ray: no extra process
    and no transfer of batches and weights.
    """

    weight_transports = ("vllm_ipc", "vllm_nccl", "stream")
    """vLLM's own transfer from the ranks when the engines take it, else the stream."""

    def __init__(
        self,
        ranks: Sequence[RankSpec],
        planner: MicroBatchPlanner,
        *,
        num_cpus_per_rank: float = 1.0,
        num_gpus_per_rank: float = 0.0,
        in_process: bool = False,
        bucket_bytes: int = 256 * 2**20,
        name: str = "policy",
        actor_options: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        if not ranks:
            raise ConfigError(f"{name}: needs at least one rank")
        if in_process and len(ranks) != 1:
            raise ConfigError(f"{name}: in-process needs 1 rank, got {len(ranks)}")
        self.planner, self.bucket_bytes, self.name = planner, bucket_bytes, name
        self._local: Any = None
        self._actors: list[Any] = []
        if in_process:
            cls, args = ranks[0]
            self._local = cls(*args)
            self.layouts = [self._local.setup(None)]
        else:
            self.layouts = self._start_actors(
                ranks, actor_options, num_cpus_per_rank, num_gpus_per_rank
            )
        self.dp_size = _check_layouts(self.layouts, name)

    def _start_actors(
        self,
        ranks: Sequence[RankSpec],
        given: Sequence[dict[str, Any]] | None,
        num_cpus: float,
        num_gpus: float,
    ) -> list[RankLayout]:
        import ray

        from qwenlong.rl.ray_calls import actor_options, ray_get

        options = actor_options(given, len(ranks), num_cpus, num_gpus, self.name)
        self._actors = [
            ray.remote(cls).options(**option).remote(*args)
            for (cls, args), option in zip(ranks, options, strict=True)
        ]
        try:
            address = (
                ray_get(self._actors[0].rendezvous_address.remote()) if len(ranks) > 1 else None
            )
            return ray_get([actor.setup.remote(address) for actor in self._actors])
        except QwenlongError:
            for actor in self._actors:
                ray.kill(actor)
            self._actors = []
            raise

    # --- Policy -------------------------------------------------------------------------

    def forward_logprobs(self, batch: PackedBatch, mask: Tensor | None = None) -> TokenStats:
        """Each share scored where it lives; results put back in the packed order."""
        check_per_token("mask", mask, batch, self.name)
        shares = split_for_ranks(batch, self.dp_size)
        parts = [batch.select(share) for share in shares]
        masks = [None if mask is None else mask[batch.token_positions(s)] for s in shares]
        plans = equal_counts([self.planner.plan(p, m) for p, m in zip(parts, masks, strict=True)])
        results = self._call_shares(
            "forward_logprobs",
            [(p, m, plan) for p, m, plan in zip(parts, masks, plans, strict=True)],
        )
        logprobs = torch.zeros(batch.num_tokens, dtype=torch.float32)
        entropy = torch.zeros(batch.num_tokens, dtype=torch.float32)
        for share, stats in zip(shares, results, strict=True):
            positions = batch.token_positions(share)
            logprobs[positions] = stats.logprobs
            entropy[positions] = stats.entropy
        return TokenStats(logprobs=logprobs, entropy=entropy)

    def train_step(self, batch: PackedBatch, update: PolicyUpdate) -> StepStats:
        """One synchronous step: every share with the same `global_tokens` (and global
        sequence count), the shares' stats summed and their training log-probs, when the
        backend returns them, put back in packed order."""
        check_update_shapes(batch, update, self.name)
        mask = update.token_mask.bool()
        global_sequences = int(torch.unique(batch.sequence_index()[mask]).numel())
        shares = split_for_ranks(batch, self.dp_size)
        parts = [batch.select(share) for share in shares]
        updates = [update.select(batch.token_positions(share)) for share in shares]
        plans = equal_counts(
            [self.planner.plan(p, u.token_mask) for p, u in zip(parts, updates, strict=True)]
        )
        calls = [
            (part, share_update, global_sequences, plan)
            for part, share_update, plan in zip(parts, updates, plans, strict=True)
        ]
        results = self._call_shares("train_step", calls)
        return with_share_logprobs(StepStats.sum_over_ranks(results), batch, shares, results)

    def sft_step(self, batch: PackedBatch, global_tokens: int) -> StepStats:
        """Cross-entropy step (SFT warm start), divided like `train_step`."""
        parts = [batch.select(share) for share in split_for_ranks(batch, self.dp_size)]
        plans = equal_counts([self.planner.plan(p, p.loss_mask) for p in parts])
        calls = [(part, global_tokens, plan) for part, plan in zip(parts, plans, strict=True)]
        return StepStats.sum_over_ranks(self._call_shares("sft_step", calls))

    def export_weights(self) -> Iterator[tuple[str, Tensor]]:
        """The exporting rank's stream, one tensor at a time; the other ranks run their side
        of the export (gathers, for sharded backends) at the same time."""
        if self._local is not None:
            yield from self._local.export_weights()
            return
        from qwenlong.rl.ray_calls import ray_get

        streams = [actor.export_weights.remote() for actor in self._live()]
        for ref in streams[0]:
            yield ray_get(ref)
        for stream in streams[1:]:
            for ref in stream:
                ray_get(ref)

    def load_weights(self, weights: WeightStream) -> None:
        """Every rank copies the stream in, chunk by chunk (strict at the last chunk)."""
        if self._local is not None:
            for chunk, last in weight_chunks(weights, self.bucket_bytes):
                self._local.receive_weights(chunk, last)
            return
        import ray

        for chunk, last in weight_chunks(weights, self.bucket_bytes):
            ref = ray.put([(name, tensor.detach().cpu()) for name, tensor in chunk])
            self._call_all("receive_weights", (ref, last))

    def send_weights_to_vllm(self, plan: TransferPlan) -> None:
        """Every rank joins vLLM's weight transfer (rank 0 sends): qwenlong.rl.rollout.
        vllm_transfer."""
        self._call_all("send_weights_to_vllm", (plan,))

    def sender_address(self) -> tuple[str, int]:
        """(host, free port) on rank 0's node, where a weight-transfer group can meet."""
        if self._local is not None:
            address = self._local.rendezvous_address()
        else:
            from qwenlong.rl.ray_calls import ray_get

            address = ray_get(self._live()[0].rendezvous_address.remote())
        host, port = address.removeprefix("tcp://").rsplit(":", 1)
        return host, int(port)

    def save_pretrained(self, out_dir: Path) -> Path:
        """The model in HF format (the driver's path must be reachable from the ranks)."""
        self._call_all("save_pretrained", (str(out_dir),))
        return Path(out_dir)

    def save_optimizer_state(self, folder: Path) -> None:
        """Each rank writes its own state into `folder`, plus the rank count beside them."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._call_all("save_optimizer_state", (str(folder),))
        (folder / OPTIMIZER_LAYOUT).write_text(json.dumps({"ranks": len(self.layouts)}) + "\n")

    def set_learning_rate_scale(self, scale: float) -> None:
        """Every rank trains at its configured learning rate x `scale` from the next step."""
        self._call_all("set_learning_rate_scale", (scale,))

    def load_optimizer_state(self, folder: Path) -> None:
        """Each rank reads its own state back; written by another rank count: refused."""
        layout = Path(folder) / OPTIMIZER_LAYOUT
        if not layout.is_file():
            raise CheckpointError(f"{folder}: no optimizer state ({OPTIMIZER_LAYOUT} missing)")
        ranks = json.loads(layout.read_text(encoding="utf-8"))["ranks"]
        if ranks != len(self.layouts):
            raise CheckpointError(
                f"{folder}: optimizer state of {ranks} ranks; {self.name} has "
                f"{len(self.layouts)} (resume with the same layout)"
            )
        self._call_all("load_optimizer_state", (str(folder),))

    def close(self) -> None:
        """Leave the process groups and end the ranks."""
        if self._local is not None:
            self._local.close()
            self._local = None
            return
        if self._actors:
            import ray

            from qwenlong.rl.ray_calls import ray_get

            ray_get([actor.close.remote() for actor in self._actors])
            for actor in self._actors:
                ray.kill(actor)
            self._actors = []

    # --- calls --------------------------------------------------------------------------

    def _call_shares(self, method: str, per_share: Sequence[tuple]) -> list[Any]:
        """Every rank gets its data-parallel share's arguments; the reporting rank of each
        share gives its result, in share order."""
        args = [per_share[layout.data_parallel_rank] for layout in self.layouts]
        results = self._call(method, args)
        by_share: list[Any] = [None] * self.dp_size
        for layout, result in zip(self.layouts, results, strict=True):
            if layout.reports:
                by_share[layout.data_parallel_rank] = result
        return by_share

    def _call_all(self, method: str, args: tuple) -> list[Any]:
        return self._call(method, [args] * len(self.layouts))

    def _call(self, method: str, args: Sequence[tuple]) -> list[Any]:
        """Call `method` on every rank with its own args, concurrently; results in rank order."""
        if self._local is not None:
            return [getattr(self._local, method)(*args[0])]
        from qwenlong.rl.ray_calls import ray_get

        refs = [
            getattr(actor, method).remote(*arg)
            for actor, arg in zip(self._live(), args, strict=True)
        ]
        return ray_get(refs)

    def _live(self) -> list[Any]:
        if not self._actors:
            raise BackendError(f"{self.name}: used after close")
        return self._actors


def rendezvous_address() -> str:
    """A tcp:// address on this node, with a port that was free a moment ago, where a policy's
    ranks meet to form their process groups: the node's address under Ray (ranks may live on
    several nodes), the loopback interface without it."""
    import socket

    host = "127.0.0.1"
    try:
        import ray

        if ray.is_initialized():
            host = ray.util.get_node_ip_address()
    except ImportError:
        pass
    with socket.socket() as sock:
        sock.bind((host, 0))
        port = int(sock.getsockname()[1])
    return f"tcp://{host}:{port}"


def _check_layouts(layouts: Sequence[RankLayout], name: str) -> int:
    """The data-parallel size, after checking the ranks agree on it and every share has
    exactly one reporting rank."""
    sizes = {layout.data_parallel_size for layout in layouts}
    if len(sizes) != 1:
        raise BackendError(f"{name}: ranks disagree on the data-parallel size {sorted(sizes)}")
    size = sizes.pop()
    reporters = [layout.data_parallel_rank for layout in layouts if layout.reports]
    if sorted(reporters) != list(range(size)):
        raise BackendError(
            f"{name}: each of the {size} data-parallel shares needs exactly one reporting "
            f"rank; reporting ranks cover {sorted(reporters)}"
        )
    return size
