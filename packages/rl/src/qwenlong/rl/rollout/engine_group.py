"""Rollout engines as Ray actors, driven from the trainer's process like one `RolloutEngine`.

Any engine that builds from a picklable factory and hands out a weight receiver runs here (the
HF engine, the vLLM engine): the group is the data-parallel layer over them.

`generate` gives each engine a contiguous, near-equal share of the conversations and
concatenates the answers in input order; with a seed, each conversation's samples are the same
whichever engine draws them (the hf backend keys its random streams by prompt). New weights
arrive as a stream and go out in chunks of at most `bucket_bytes`: each chunk is put in Ray's
object store once and every engine copies it into its model, so at no point does any process
hold a second copy of the whole model.

Release and reclaim of memory (colocated engines sleeping while the policy trains) reach every
engine.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import ray
from torch import Tensor

from qwenlong.core.errors import BackendError, ConfigError, QwenlongError
from qwenlong.core.hf_weights import ChunkedStream
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation
from qwenlong.rl.interfaces import WeightStream
from qwenlong.rl.ray_calls import actor_options as ray_options
from qwenlong.rl.ray_calls import ray_get
from qwenlong.rl.weight_sync import weight_chunks

EngineFactory = Callable[[], Any]
"""() -> an engine with the `RolloutEngine` methods and `weight_receiver()`; picklable (a
`functools.partial` of a class or classmethod), so each actor builds its own."""


class EngineRank:
    """One engine in a Ray actor, built in `setup` rather than in the constructor.

    A failure inside a Ray actor's constructor kills the actor and surfaces as a multi-line
    "actor died" error; a failure in a method surfaces as the method's own exception, which
    the group re-raises as the one-line error it is (a missing model directory, say).
    """

    def __init__(self, factory: EngineFactory, name: str) -> None:
        self.factory, self.name = factory, name
        self.engine: Any = None
        self.incoming = ChunkedStream(lambda: self._engine().weight_receiver())

    def setup(self) -> None:
        self.engine = self.factory()

    def generate(
        self, conversations: list[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        return self._engine().generate(conversations, sampling)

    def prompt_ids(self, conversations: list[Conversation]) -> list[list[int]]:
        return self._engine().prompt_ids(conversations)

    def receive_weights(self, chunk: list[tuple[str, Tensor]], last: bool) -> None:
        """One chunk of a weight stream; the last one checks that every tensor arrived."""
        self.incoming.receive(chunk, last)

    def transfer_call(self, method: str, kwargs: dict[str, Any]) -> None:
        self._engine().transfer_call(method, kwargs)

    def release_memory(self) -> None:
        self._engine().release_memory()

    def reclaim_memory(self) -> None:
        self._engine().reclaim_memory()

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def _engine(self) -> Any:
        if self.engine is None:
            raise BackendError(f"rollout worker {self.name}: used before setup or after close")
        return self.engine


EngineWorker = ray.remote(EngineRank)
"""`EngineRank` as a Ray actor class."""


class EngineGroup:
    """M `EngineWorker` actors behind the `RolloutEngine` protocol."""

    def __init__(
        self,
        factories: Sequence[EngineFactory],
        name: str,
        *,
        num_cpus_per_worker: float = 1.0,
        num_gpus_per_worker: float = 0.0,
        bucket_bytes: int = 256 * 2**20,
        weight_transports: tuple[str, ...] = ("stream",),
        transfer_plan: Callable[[tuple[str, int], list[Any]], Any] | None = None,
        actor_options: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """One actor per factory (each engine may differ, e.g. in its seed). An engine with
        its own weight transfer adds its transports and `transfer_plan(address, actors)`.
        `actor_options` (one dict per factory) replaces the CPU/GPU requests where engines
        have set places (qwenlong.rl.rollout.colocation)."""
        self.weight_transports = weight_transports
        self._transfer_plan = transfer_plan
        if not factories:
            raise ConfigError("rollout group: num_workers must be >= 1, got 0")
        options = ray_options(
            actor_options, len(factories), num_cpus_per_worker, num_gpus_per_worker, "rollout group"
        )
        self._actors = [
            EngineWorker.options(**option).remote(factory, name)
            for factory, option in zip(factories, options, strict=True)
        ]
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

    def transfer_plan(self, address: tuple[str, int]) -> Any:
        """The engines' weight-transfer group with a sender at `address`."""
        if self._transfer_plan is None:
            raise ConfigError("these rollout engines have no weight transfer of their own")
        return self._transfer_plan(address, self._live())

    def release_memory(self) -> None:
        """Every engine gives up what it can while the policy trains."""
        ray_get([actor.release_memory.remote() for actor in self._live()])

    def reclaim_memory(self) -> None:
        """Every engine takes its memory back before generating."""
        ray_get([actor.reclaim_memory.remote() for actor in self._live()])

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
