"""Continuous batching: requests join and leave the decode batch between steps.

`MicroBatcher` runs each merged batch to its end, so an 8-token request merged with (or queued
behind) a 2,000-token one waits for all of it, and requests with different settings or seeds
never share a call. `ContinuousBatcher` drives a `SteppedChatModel`'s `StepDecoder` instead:
between two decoding steps its single worker thread admits waiting requests (up to `max_batch`
in the batch, whatever their settings; each keeps its own seed) and answers every request the
step its last sample finishes. A short request now waits at most for the steps already queued
ahead of it at admission, not for other requests' whole generations.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from qwenlong.core.decoding import StepDecoder, SteppedChatModel
from qwenlong.core.request_batcher import Job, QueuedBatcher

log = logging.getLogger(__name__)


class ContinuousBatcher(QueuedBatcher):
    """Serialises a `SteppedChatModel` behind a queue; same interface as `MicroBatcher`.
    `max_batch` requests decode at once at most (each with its `n` samples)."""

    model: SteppedChatModel

    def __init__(
        self, model: SteppedChatModel, max_batch: int = 8, max_wait_s: float = 0.005
    ) -> None:
        self._running: set[Job] = set()  # before the worker starts
        super().__init__(model, max_batch, max_wait_s)

    def _run(self) -> None:
        decoder: StepDecoder[Job] = self.model.decoder()
        while (joining := self._take(decoder)) is not None:
            try:
                if joining:
                    self._admit(decoder, joining)
                if decoder.active:
                    for job, completions in decoder.step():
                        self._running.discard(job)
                        job.future.set_result(completions)
            except BaseException as err:  # every admitted client must hear about the failure
                log.warning("decoding %d requests failed: %s", len(self._running), err)
                for job in self._running:
                    job.future.set_exception(err)
                self._running.clear()
                if not isinstance(err, Exception):
                    raise
                decoder = self.model.decoder()  # the failed batch's state is unknown

    def _admit(self, decoder: StepDecoder[Job], joining: list[Job]) -> None:
        self._running.update(joining)
        refused = decoder.admit([(job, job.conversation, job.sampling) for job in joining])
        for job, err in refused:
            self._running.discard(job)
            job.future.set_exception(err)

    def _take(self, decoder: StepDecoder[Any]) -> list[Job] | None:
        """Requests to admit before the next step ([] for none), or None once closed and idle.

        An idle worker sleeps until a request comes; a busy one takes what is queued without
        waiting, as far as the batch has room.
        """
        with self._cond:
            while not decoder.active and not self._pending and not self._closed:
                self._cond.wait()
            if self._closed and not decoder.active:
                return None
            if not decoder.can_admit():
                return []
            room = self.max_batch - decoder.active
            joining = [self._pending.popleft() for _ in range(min(room, len(self._pending)))]
            if joining and not decoder.active:
                deadline = time.monotonic() + self.max_wait_s
                while len(joining) < room and not self._closed:
                    if self._pending:
                        joining.append(self._pending.popleft())
                    elif (remaining := deadline - time.monotonic()) > 0:
                        self._cond.wait(remaining)
                    else:
                        break
            return joining
