"""Generate predictions for the questions a store does not hold yet, chunk by chunk."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from qwenlong.core.errors import BackendUnavailable
from qwenlong.core.progress import progress_bar
from qwenlong.core.records import TaskSample
from qwenlong.evals.interfaces import Solver
from qwenlong.evals.run.config import EvalSampling
from qwenlong.evals.run.store import PredictionStore

log = logging.getLogger(__name__)


@dataclass
class GenerationOutcome:
    generated: int
    """Questions answered in this call."""
    pending: int
    """Questions still without predictions (the backend became unreachable)."""
    outage: str | None = None
    """The backend error that stopped generation, if any."""


def chunk_indices(n_samples: int, chunk_size: int) -> list[range]:
    """Fixed partition of the benchmark into chunks.

    Chunk boundaries depend only on the sample order and the chunk size, never on what was
    already done, so a resumed run puts every question in the same batch with the same seed as
    an uninterrupted run and regenerates the same text.
    """
    return [range(i, min(i + chunk_size, n_samples)) for i in range(0, n_samples, chunk_size)]


def generate_pending(
    samples: Sequence[TaskSample],
    store: PredictionStore,
    solver: Solver,
    sampling: EvalSampling,
    n: int,
    chunk_size: int,
    description: str = "generate",
) -> GenerationOutcome:
    """Answer every question missing from `store`, appending each finished chunk.

    A `BackendUnavailable` stops generation: finished chunks are kept, the rest stay pending for
    the next run, and nothing is scored wrong because the server was down.
    """
    chunks = chunk_indices(len(samples), chunk_size)
    todo = [(i, c) for i, c in enumerate(chunks) if any(samples[j].id not in store for j in c)]
    generated = 0
    with progress_bar(total=sum(len(c) for _, c in todo), description=description) as advance:
        for chunk_index, chunk in todo:
            batch = [samples[j] for j in chunk]
            try:
                outputs = solver.solve(batch, sampling.to_params(n, chunk_index))
            except BackendUnavailable as err:
                pending = sum(1 for s in samples if s.id not in store)
                log.warning("generation stopped, %d questions left pending: %s", pending, err)
                return GenerationOutcome(generated, pending, outage=str(err))
            store.append(
                {
                    "id": sample.id,
                    "outputs": [o.text for o in outs],
                    "finish_reasons": [o.finish_reason for o in outs],
                    "output_tokens": [o.output_tokens for o in outs],
                    **({"traces": [o.trace for o in outs]} if any(o.trace for o in outs) else {}),
                }
                for sample, outs in zip(batch, outputs, strict=True)
            )
            generated += len(batch)
            advance(len(batch))
    return GenerationOutcome(generated, pending=0)
