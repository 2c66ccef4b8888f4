"""`qwenlong eval CONFIG.yaml`: load, generate (resumable), score, report.

    for each benchmark run in the config:
        samples  = benchmark.load(path, subset)
        generate predictions for the questions the run directory does not hold yet
        score them with the paper's metric and the official one (judge where the rule fails)
    write scores.json, scores.official.json, report.md

The run directory is the unit of resumption: predictions/<benchmark>.jsonl grows chunk by chunk,
the judge's verdicts are cached in judge_cache.jsonl, and everything else is recomputed. Stored
predictions belong to the config that made them, so a rerun with another config is refused
(`qwenlong.core.run_guard`) unless `overwrite` removes `EVAL_OUTPUTS` first; one run at a time
holds the folder's lock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qwenlong.core.backends import make_chat_model
from qwenlong.core.errors import ConfigError
from qwenlong.core.interfaces import ChatModel, SamplingParams
from qwenlong.core.run_guard import TRANSPORT_KEYS, claim_run
from qwenlong.core.rundir import RunDir
from qwenlong.core.tokenizer import load_tokenizer
from qwenlong.evals.benchmarks import get_benchmark
from qwenlong.evals.interfaces import Judge
from qwenlong.evals.judge import LLMJudge
from qwenlong.evals.run.config import EvalConfig
from qwenlong.evals.run.generate import generate_pending
from qwenlong.evals.run.report import render_markdown, summarize, write_scores
from qwenlong.evals.run.scoring import MetricKind, score_benchmark
from qwenlong.evals.run.store import PredictionStore
from qwenlong.evals.solver import SOLVERS
from qwenlong.evals.truncation import HFTokenCounter

EVAL_OUTPUTS: tuple[str, ...] = (
    "predictions",
    "scored",
    "scores.json",
    "scores.official.json",
    "report.md",
    "judge_cache.jsonl",
)
"""What an eval writes in its run folder (besides config.yaml and metrics.jsonl): what
`overwrite` removes."""

EVAL_EXEMPT: tuple[str, ...] = (*TRANSPORT_KEYS, "bootstrap_resamples")
"""Keys a rerun may change. Only the confidence intervals depend on `bootstrap_resamples`, and
they are recomputed from the stored predictions on every run, so a rerun with a new value
reports exactly what a fresh run would."""


def run_eval(
    config: EvalConfig,
    out: Path,
    model: ChatModel | None = None,
    judge: Judge | None = None,
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run (or resume) the eval in `out`; returns the paper-metric scores.json payload.

    `model` and `judge` may be passed in (tests, notebooks); otherwise they are built from the
    config. `overwrite` starts over in a folder made with another config instead of refusing it.
    """
    _check_unique_keys(config)
    with (
        claim_run(out, config, EVAL_OUTPUTS, overwrite=overwrite, exempt=EVAL_EXEMPT),
        RunDir(out) as run,
    ):
        run.save_config(config)
        return _evaluate(config, out, run, model, judge)


def _evaluate(
    config: EvalConfig,
    out: Path,
    run: RunDir,
    model: ChatModel | None,
    judge: Judge | None,
) -> dict[str, Any]:
    """Generate, score and report, in a run folder already claimed and opened."""
    model = model or make_chat_model(config.model)
    tokenizer = _load_tokenizer(config)
    if judge is None and config.judge is not None:
        judge = LLMJudge(
            make_chat_model(config.judge.model),
            SamplingParams(max_new_tokens=config.judge.max_new_tokens, temperature=0.0),
            cache_path=out / "judge_cache.jsonl",
            prompts=config.prompts,
        )
    solver = SOLVERS.get(config.solver)(
        model,
        tokenizer=tokenizer,
        max_input_tokens=config.sampling.max_input_tokens,
        prompts=config.prompts,
        **config.solver_options,
    )
    kinds: list[MetricKind] = (
        ["paper", "official"] if config.metrics == "both" else [config.metrics]
    )
    entries: dict[MetricKind, dict[str, dict[str, Any]]] = {kind: {} for kind in kinds}
    counter = HFTokenCounter(tokenizer) if tokenizer is not None else None
    for step, bench_run in enumerate(config.benchmarks):
        bench = get_benchmark(bench_run.name)
        samples = bench.load(bench_run.path, bench_run.subset, counter)
        samples = samples[: bench_run.limit] if bench_run.limit else samples
        store = PredictionStore(out / "predictions" / f"{bench_run.key}.jsonl")
        outcome = generate_pending(
            samples,
            store,
            solver,
            config.sampling,
            n=config.samples_per_question,
            chunk_size=config.chunk_size,
            description=f"{bench_run.key}",
        )
        for kind in kinds:
            scores = score_benchmark(bench, samples, store, kind, judge)
            entries[kind][bench_run.key] = summarize(
                bench, scores, config.bootstrap_resamples, bench_run.subset
            )
            _write_scored(out / "scored" / kind / f"{bench_run.key}.jsonl", scores)
        first = entries[kinds[0]][bench_run.key]
        run.log(
            step,
            {
                "benchmark": bench_run.key,
                "score": first["score"],
                "n": first["n"],
                "n_pending": first["n_pending"],
                "generated": outcome.generated,
                "outage": outcome.outage,
            },
        )
    name = config.model.model
    primary = entries[kinds[0]]
    write_scores(out / "scores.json", primary, name, config.solver)
    if "official" in entries and kinds[0] != "official":
        write_scores(out / "scores.official.json", entries["official"], name, config.solver)
    (out / "report.md").write_text(
        render_markdown(entries.get("paper", {}), entries.get("official", {}), name, config.solver)
    )
    return json.loads((out / "scores.json").read_text())


def _check_unique_keys(config: EvalConfig) -> None:
    seen: set[str] = set()
    for index, bench_run in enumerate(config.benchmarks):
        if bench_run.key in seen:
            raise ConfigError(
                f"benchmarks[{index}]: {bench_run.key} is listed twice (give a different subset)"
            )
        seen.add(bench_run.key)


def _load_tokenizer(config: EvalConfig) -> Any | None:
    """The target tokenizer for truncation and length bins (None: send full contexts)."""
    path = config.tokenizer
    if path is None and config.model.backend in ("hf", "vllm"):
        path = config.model.model
    if path is None:
        return None
    return load_tokenizer(path)


def _write_scored(path: Path, scores: Any) -> None:
    """Per-question scores for inspection, rewritten on every run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for question in scores.questions:
            record = {"id": question.sample.id, "value": question.value, "scores": question.scores}
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
