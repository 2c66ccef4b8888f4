"""The two verification checks of RECIPE.md section 1, and the stage that runs them.

- Knowledge grounding: the question is asked with no document. A model that still answers it
  knows the answer already (a famous fact, a guessable template), so training on it would teach
  recall, not reading: drop ("grounding").
- Contextual robustness: the question is asked with its assembled long context, k times. If no
  output passes, the distractors made it unanswerable or the sample is wrong: drop
  ("robustness"). Otherwise the pass rate becomes the sample's difficulty, which balancing bins.

With no model the stage is skipped and says so; samples then keep their generator difficulty.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from qwenlong.core.interfaces import ChatModel
from qwenlong.core.records import TaskSample
from qwenlong.core.registry import Registry
from qwenlong.evals.interfaces import Solver
from qwenlong.evals.run.store import PredictionStore
from qwenlong.evals.solver import SinglePassSolver
from qwenlong.synth.difficulty import PASS_RATE_META
from qwenlong.synth.interfaces import Drop
from qwenlong.synth.verify.config import VerifyConfig
from qwenlong.synth.verify.passk import PassRecord, measure_passes


@dataclass
class CheckResult:
    """Samples that passed a check, the drops, and every sample's pass record."""

    kept: list[TaskSample]
    drops: list[Drop]
    records: dict[str, PassRecord]


class Check(Protocol):
    """A verification check: asks each sample's question `k` times and keeps or drops it."""

    def __call__(
        self,
        samples: Sequence[TaskSample],
        solver: Solver,
        k: int,
        *,
        config: VerifyConfig = ...,
        store: PredictionStore | None = None,
        log: Callable[[str], None] | None = None,
    ) -> CheckResult: ...


CHECKS: Registry[Check] = Registry("verification check")


def _passes(record: PassRecord) -> str:
    return f"{record.passes}/{record.k}"


@CHECKS.register("grounding")
def grounding_check(
    samples: Sequence[TaskSample],
    solver: Solver,
    k: int,
    *,
    config: VerifyConfig = VerifyConfig(),
    store: PredictionStore | None = None,
    log: Callable[[str], None] | None = None,
) -> CheckResult:
    """Drop samples answered without their documents at a pass rate over
    `config.grounding_max_pass_rate` (any correct output, by default).

    `k` outputs per question; `config` gives the sampling and the pass rule. Kept samples record
    their no-document passes in `meta["grounding_passes"]` ("0/8").
    """
    blind = [dataclasses.replace(s, context="", documents=[], context_tokens=None) for s in samples]
    records = _measure(blind, solver, k, config, store, log)
    kept, drops = [], []
    for sample in samples:
        record = records[sample.id]
        if record.rate > config.grounding_max_pass_rate:
            detail = f"{_passes(record)} correct without the documents"
            drops.append(Drop.of(sample, "grounding", "verify", detail))
        else:
            kept.append(_with_meta(sample, grounding_passes=_passes(record)))
    return CheckResult(kept, drops, records)


@CHECKS.register("robustness")
def robustness_check(
    samples: Sequence[TaskSample],
    solver: Solver,
    k: int,
    *,
    config: VerifyConfig = VerifyConfig(),
    store: PredictionStore | None = None,
    log: Callable[[str], None] | None = None,
) -> CheckResult:
    """Drop samples no output answers with the assembled context (pass@k = 0); set the pass rate
    of the others as their difficulty and in `meta["pass_rate"]` / `meta["passes"]`."""
    records = _measure(samples, solver, k, config, store, log)
    kept, drops = [], []
    for sample in samples:
        record = records[sample.id]
        if record.passes == 0:
            detail = f"0/{record.k} correct with the context"
            drops.append(Drop.of(sample, "robustness", "verify", detail))
            continue
        marked = _with_meta(
            sample, **{PASS_RATE_META: repr(record.rate), "passes": _passes(record)}
        )
        kept.append(dataclasses.replace(marked, difficulty=record.rate))
    return CheckResult(kept, drops, records)


def _measure(
    samples: Sequence[TaskSample],
    solver: Solver,
    k: int,
    config: VerifyConfig,
    store: PredictionStore | None,
    log: Callable[[str], None] | None,
) -> dict[str, PassRecord]:
    return measure_passes(
        samples,
        solver,
        config.sampling(k),
        store=store,
        chunk_size=config.chunk_size,
        pass_value=config.pass_value,
        log=log,
    )


def _with_meta(sample: TaskSample, **entries: str) -> TaskSample:
    return dataclasses.replace(sample, meta={**sample.meta, **entries})


@dataclass
class VerifyResult:
    """Samples that passed every check, the drops, and how the stage ran (for the report)."""

    samples: list[TaskSample]
    drops: list[Drop]
    mode: str


def verify_samples(
    samples: Sequence[TaskSample],
    model: ChatModel | None,
    config: VerifyConfig = VerifyConfig(),
    store_dir: Path | None = None,
    *,
    tokenizer: Any | None = None,
    log: Callable[[str], None] | None = None,
) -> VerifyResult:
    """Run `config.checks` in order with a single-pass solver over `model`.

    Each check keeps its pass records in `store_dir/<check>.jsonl` (no persistence when None), so
    a resumed run re-asks nothing already finished. `tokenizer` (the model's, an HF tokenizer or
    `HFTokenCounter`) lets the solver middle-truncate prompts to `config.max_input_tokens`; without
    it prompts are sent whole. With no model, or the stage disabled, samples pass unchanged.
    """
    if not config.enabled:
        return VerifyResult(list(samples), [], "skipped (disabled)")
    if model is None:
        return VerifyResult(list(samples), [], "skipped (no LLM)")
    solver = SinglePassSolver(model, tokenizer=tokenizer, max_input_tokens=config.max_input_tokens)
    current, drops = list(samples), []
    for name in config.checks:
        store = PredictionStore(store_dir / f"{name}.jsonl") if store_dir is not None else None
        result = CHECKS.get(name)(current, solver, config.k, config=config, store=store, log=log)
        current = result.kept
        drops += result.drops
    return VerifyResult(current, drops, f"{model.name}, k={config.k}: {', '.join(config.checks)}")
