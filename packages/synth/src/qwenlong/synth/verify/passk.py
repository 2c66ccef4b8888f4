"""Ask each question k times and count the passes, resumably.

Both verification checks reduce to the same measurement: a pass count out of k for each sample,
scored by the same rule metric RL rewards use (`qwenlong.evals.task_metrics.scorer_for`), so a
sample is judged the same way when it is made and when it is trained on. Questions go to the
solver in chunks; each finished chunk's counts are appended to a JSONL store keyed by sample id
(the evals `PredictionStore`: flushed and fsynced, a torn last line cut on reopening), so a
killed run asks only the questions it had not finished.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import TaskSample
from qwenlong.evals.interfaces import Solver, SolverOutput
from qwenlong.evals.run.store import PredictionStore
from qwenlong.evals.task_metrics import scorer_for


@dataclass(frozen=True)
class PassRecord:
    """How one sample fared: `passes` of `k` outputs passed; `values` are their scores."""

    sample_id: str
    k: int
    passes: int
    values: tuple[float, ...]

    @property
    def rate(self) -> float:
        """Pass rate passes / k, the sample's difficulty after verification."""
        return self.passes / self.k

    def to_json(self) -> dict[str, Any]:
        return {"id": self.sample_id, "k": self.k, "passes": self.passes, "values": self.values}

    @classmethod
    def from_json(cls, record: Mapping[str, Any], where: str) -> PassRecord:
        """A record read back from a store; `where` names the file for the error message."""
        try:
            values = tuple(float(v) for v in record["values"])
            return cls(str(record["id"]), int(record["k"]), int(record["passes"]), values)
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetError(f"{where}: malformed pass record {record!r} ({err})") from None


def count_passes(
    sample: TaskSample, outputs: Sequence[SolverOutput], pass_value: float = 1.0
) -> PassRecord:
    """Score each output with the sample's rule metric; an output passes when the scorer calls
    it correct or its value reaches `pass_value` (see `VerifyConfig.pass_value`)."""
    scorer = scorer_for(sample)
    scores = [scorer(sample, out.text) for out in outputs]
    passes = sum(1 for s in scores if s.correct or s.value >= pass_value)
    return PassRecord(sample.id, len(outputs), passes, tuple(s.value for s in scores))


def measure_passes(
    samples: Sequence[TaskSample],
    solver: Solver,
    sampling: SamplingParams,
    *,
    store: PredictionStore | None = None,
    chunk_size: int = 64,
    pass_value: float = 1.0,
    log: Callable[[str], None] | None = None,
) -> dict[str, PassRecord]:
    """Pass records of every sample, asking the solver only about those not already in `store`.

    The samples are sent as given: a check that hides the documents passes copies without them.
    A stored record made with a different k is an error rather than silently reused or redone:
    the caller either restores k or deletes the store.
    """
    records: dict[str, PassRecord] = {}
    pending: list[TaskSample] = []
    for sample in samples:
        stored = store.get(sample.id) if store is not None else None
        if stored is None:
            pending.append(sample)
            continue
        record = PassRecord.from_json(stored, str(store.path) if store else "")
        if record.k != sampling.n:
            raise ConfigError(
                f"{store.path if store else ''}: sample {sample.id} was verified with "
                f"k={record.k}, the config asks k={sampling.n}; restore k or delete the file"
            )
        records[sample.id] = record
    for start in range(0, len(pending), chunk_size):
        chunk = pending[start : start + chunk_size]
        outputs = solver.solve(chunk, sampling)
        fresh = [count_passes(s, outs, pass_value) for s, outs in zip(chunk, outputs, strict=True)]
        if store is not None:
            store.append(r.to_json() for r in fresh)
        records.update((r.sample_id, r) for r in fresh)
        if log is not None:
            log(f"verified {start + len(chunk)}/{len(pending)} pending questions")
    return records
