"""Micro-batching: many threads share one model that is not thread-safe.

An HTTP server answers each client on its own thread, but a transformers model must be driven by
one thread at a time, and one `generate` call over eight conversations costs far less than eight
calls over one. `MicroBatcher` puts every request on a queue; a single worker thread takes the
oldest one, gathers the queued requests whose sampling settings are identical to it (requests
that arrived together, or while the previous batch was generating), and runs them as one
`generate` call. Requests with other settings wait, in arrival order, for a later call.

A model that can decode step by step (the hf backend) is served by
`qwenlong.core.continuous_batcher.ContinuousBatcher` instead, where requests join and leave
the batch between steps; `MicroBatcher` serves every other `ChatModel` (an OpenAI-compatible
upstream, test doubles).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from qwenlong.core.decoding import RequestTooLong
from qwenlong.core.errors import BackendUnavailable
from qwenlong.core.interfaces import ChatModel, SamplingParams
from qwenlong.core.records import Completion, Conversation

log = logging.getLogger(__name__)


def can_share_batch(a: SamplingParams, b: SamplingParams) -> bool:
    """Whether two requests may be generated in one call: one call takes one `SamplingParams`,
    so every setting must match, the seed included.

    Merging seeded requests keeps them reproducible only because backends draw each sample's
    random numbers from a stream keyed by (seed, prompt, sample index), not from a batch-wide
    generator: the hf backend does exactly that, and vLLM seeds each request separately.
    """
    return a == b


@dataclass(eq=False)
class Job:
    """One client's request and the future its handler thread waits on (hashed by identity)."""

    conversation: Conversation
    sampling: SamplingParams
    future: Future[list[Completion]] = field(default_factory=Future)


class QueuedBatcher(ABC):
    """The part both batchers share: a queue of jobs served by one worker thread (`_run`,
    given by each batcher), `submit` / `generate` for the clients, and a `close` that fails
    the jobs still queued and lets the worker finish what it took."""

    def __init__(self, model: Any, max_batch: int = 8, max_wait_s: float = 0.005) -> None:
        """`max_batch` requests at once at most; after taking a request the worker waits up to
        `max_wait_s` for companions that are about to arrive (clients that fire together rarely
        land in the same millisecond). Both are our choices, not published."""
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.model = model
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._pending: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="qwenlong-batcher", daemon=True)
        self._worker.start()

    def submit(
        self, conversation: Conversation, sampling: SamplingParams
    ) -> Future[list[Completion]]:
        """Queue one conversation; the future resolves to its `sampling.n` completions."""
        job = Job(conversation, sampling)
        with self._cond:
            if self._closed:
                raise BackendUnavailable("the model server is shutting down")
            self._pending.append(job)
            self._cond.notify_all()
        return job.future

    def generate(self, conversation: Conversation, sampling: SamplingParams) -> list[Completion]:
        """Blocking form of `submit`: the caller's thread waits for its completions."""
        return self.submit(conversation, sampling).result()

    @property
    def pending(self) -> int:
        """Requests queued and not yet taken by the worker."""
        with self._cond:
            return len(self._pending)

    def close(self) -> None:
        """Stop taking requests, fail the queued ones, let the worker finish what it took."""
        with self._cond:
            self._closed = True
            abandoned = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        for job in abandoned:
            job.future.set_exception(BackendUnavailable("the model server shut down"))
        if self._worker is not threading.current_thread():
            self._worker.join()

    @abstractmethod
    def _run(self) -> None:
        """The worker thread's loop: take jobs until closed, answer each job's future."""


class MicroBatcher(QueuedBatcher):
    """Serialises calls into one `ChatModel` and merges compatible concurrent ones."""

    model: ChatModel

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            self._execute(batch)

    def _take_batch(self) -> list[Job] | None:
        """The oldest queued request and up to `max_batch - 1` compatible ones, or None at close."""
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            head = self._pending.popleft()
            batch = [head]
            deadline = time.monotonic() + self.max_wait_s
            while True:
                self._gather(batch)
                remaining = deadline - time.monotonic()
                if len(batch) >= self.max_batch or self._closed or remaining <= 0:
                    return batch
                self._cond.wait(remaining)

    def _gather(self, batch: list[Job]) -> None:
        """Move queued jobs that can join `batch` into it, keeping the rest in arrival order."""
        head = batch[0].sampling
        kept: deque[Job] = deque()
        for job in self._pending:
            if len(batch) < self.max_batch and can_share_batch(head, job.sampling):
                batch.append(job)
            else:
                kept.append(job)
        self._pending = kept

    def _execute(self, batch: list[Job]) -> None:
        """One `generate` call for the batch. When one request is too long for the model the
        backend refuses the whole call, so each request is then run alone: only the long one
        fails, with its own error."""
        try:
            results = self.model.generate([job.conversation for job in batch], batch[0].sampling)
            if len(results) != len(batch):
                raise RuntimeError(
                    f"model returned {len(results)} results for {len(batch)} conversations"
                )
        except RequestTooLong as err:
            if len(batch) == 1:
                batch[0].future.set_exception(err)
            else:
                for job in batch:
                    self._execute([job])
            return
        except BaseException as err:  # every waiting client must hear about the failure
            log.warning("batch of %d failed: %s", len(batch), err)
            for job in batch:
                job.future.set_exception(err)
            if not isinstance(err, Exception):
                raise
            return
        for job, completions in zip(batch, results, strict=True):
            job.future.set_result(completions)
