"""HF rollout engines as Ray actors, driven from the trainer's process like one `RolloutEngine`.

`generate` gives each engine a contiguous, near-equal share of the conversations and
concatenates the answers in input order; with a seed, each conversation's samples are the same
whichever engine draws them (the hf backend keys its random streams by prompt). New weights
arrive as a stream and go out in chunks of at most `bucket_bytes`: each chunk is put in Ray's
object store once and every engine copies it into its model, so at no point does any process
hold a second copy of the whole model.

`start_hf_engines` is the `hf` entry of the rollout-engine registry: one engine in this process
without Ray, else `rollout.num_workers` actors.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
from torch import Tensor

from qwenlong.core.backends.config import HFBackendConfig
from qwenlong.core.errors import BackendError, ConfigError, QwenlongError
from qwenlong.core.hf_weights import ChunkedStream
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation
from qwenlong.rl.interfaces import RolloutEngine, WeightStream
from qwenlong.rl.ray_calls import ray_get
from qwenlong.rl.rollout.hf_engine import HFRolloutEngine
from qwenlong.rl.weight_sync import weight_chunks

if TYPE_CHECKING:
    from qwenlong.rl.config import TrainConfig


class HFRolloutRank:
    """One `HFRolloutEngine`, loaded in `setup` rather than in the constructor.

    A failure inside a Ray actor's constructor kills the actor and surfaces as a multi-line
    "actor died" error; a failure in a method surfaces as the method's own exception, which
    the group re-raises as the one-line error it is (a missing model directory, say).
    """

    def __init__(self, model_path: str, config: HFBackendConfig) -> None:
        self.model_path, self.config = model_path, config
        self.engine: HFRolloutEngine | None = None
        self.incoming = ChunkedStream(lambda: self._engine().weight_receiver())

    def setup(self) -> None:
        self.engine = HFRolloutEngine(self.model_path, self.config)

    def generate(
        self, conversations: list[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        return self._engine().generate(conversations, sampling)

    def prompt_ids(self, conversations: list[Conversation]) -> list[list[int]]:
        return self._engine().prompt_ids(conversations)

    def receive_weights(self, chunk: list[tuple[str, Tensor]], last: bool) -> None:
        """One chunk of a weight stream; the last one checks that every tensor arrived."""
        self.incoming.receive(chunk, last)

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


HFRolloutWorker = ray.remote(HFRolloutRank)
"""`HFRolloutRank` as a Ray actor class."""


class HFRolloutGroup:
    """M `HFRolloutWorker` actors behind the `RolloutEngine` protocol."""

    weight_transports = ("stream",)

    def __init__(
        self,
        model_path: str | Path,
        config: HFBackendConfig = HFBackendConfig(),
        num_workers: int = 1,
        *,
        num_cpus_per_worker: float = 1.0,
        num_gpus_per_worker: float = 0.0,
        bucket_bytes: int = 256 * 2**20,
    ) -> None:
        if num_workers < 1:
            raise ConfigError(f"rollout group: num_workers must be >= 1, got {num_workers}")
        options = HFRolloutWorker.options(
            num_cpus=num_cpus_per_worker, num_gpus=num_gpus_per_worker
        )
        self._actors = [options.remote(str(model_path), config) for _ in range(num_workers)]
        self.bucket_bytes = bucket_bytes
        try:
            ray_get([actor.setup.remote() for actor in self._actors])
        except QwenlongError:
            self.close()
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

    def load_weights(self, weights: WeightStream) -> None:
        """Every engine copies the stream in, chunk by chunk."""
        actors = self._live()
        for chunk, last in weight_chunks(weights, self.bucket_bytes):
            ref = ray.put([(name, tensor.detach().cpu()) for name, tensor in chunk])
            ray_get([actor.receive_weights.remote(ref, last) for actor in actors])

    def release_memory(self) -> None:
        """Nothing to release: HF engines keep no cache between calls."""

    def reclaim_memory(self) -> None:
        """Nothing to take back."""

    def close(self) -> None:
        """End the actors."""
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []

    def _live(self) -> list[Any]:
        if not self._actors:
            raise BackendError("rollout group: used after close")
        return self._actors


def _shares(count: int, workers: int) -> list[tuple[int, int]]:
    """[start, end) of each worker's contiguous share; sizes differ by at most one."""
    base, extra = divmod(count, workers)
    bounds = [0]
    for worker in range(workers):
        bounds.append(bounds[-1] + base + (1 if worker < extra else 0))
    return list(itertools.pairwise(bounds))


def start_hf_engines(config: TrainConfig, model_path: str) -> RolloutEngine:
    """The run's HF rollout engines: one in this process without Ray, else a group of actors."""
    rollout = config.rollout
    if not config.ray.enabled:
        return HFRolloutEngine(model_path, rollout.hf)
    return HFRolloutGroup(
        model_path,
        rollout.hf,
        rollout.num_workers,
        num_cpus_per_worker=rollout.num_cpus_per_worker,
        num_gpus_per_worker=rollout.num_gpus_per_worker,
        bucket_bytes=int(config.weight_sync.bucket_mb * 2**20),
    )
