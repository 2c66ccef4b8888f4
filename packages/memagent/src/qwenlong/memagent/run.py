"""`qwenlong memagent CONFIG.yaml --out DIR`: the memory agent over a dataset or one document.

    RUN/config.yaml        the resolved config
    RUN/trace.jsonl        every step's memory and plan, then a result line per sample
    RUN/predictions.jsonl  answers in input order, with the rule score where gold answers exist
    RUN/summary.json       counts, routes, steps, failed steps, mean rule score
    RUN/metrics.jsonl      one line per batch answered, with its time and throughput

Input is one of: a TaskSample dataset (parquet, `qwenlong.core.dataset_io`), an evals benchmark
in its published format, or a single document file with a question. Samples go through the
solver `batch_size` at a time; batch i always holds the same samples and samples with seed
`sampling.seed + i`, so a resumed run (samples whose result is in the trace are skipped)
answers like an uninterrupted one. A document file is streamed, never read whole.

The trace belongs to the config that wrote it, so a rerun with another config is refused
(`qwenlong.core.run_guard`) unless `overwrite` removes `MEMAGENT_OUTPUTS` first; one run at a
time holds the folder's lock. summary.json holds results only; how this run went (samples
answered now or resumed, seconds) is returned and printed, not written, so a resumed run's
predictions and summary are byte-for-byte a clean run's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from qwenlong.core.backends import make_chat_model
from qwenlong.core.backends.config import BackendConfig
from qwenlong.core.config import ConfigModel
from qwenlong.core.dataset_io import iter_samples
from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.interfaces import ChatModel
from qwenlong.core.prompt_set import PromptSet
from qwenlong.core.records import TaskSample
from qwenlong.core.registry import Registry
from qwenlong.core.run_guard import claim_run
from qwenlong.core.rundir import RunDir
from qwenlong.core.tokenizer import load_tokenizer as load_tokenizer_at
from qwenlong.evals.benchmarks import get_benchmark
from qwenlong.evals.run.config import BenchmarkRun, EvalSampling
from qwenlong.evals.task_metrics import score_output
from qwenlong.evals.truncation import HFTokenCounter
from qwenlong.memagent.chunking import file_reader
from qwenlong.memagent.config import MemAgentConfig
from qwenlong.memagent.interfaces import AgentTask
from qwenlong.memagent.query import QUERY_SPLITTERS
from qwenlong.memagent.solver import MemAgentSolver, RoutedSolver
from qwenlong.memagent.trace import TraceStore

RUN_SOLVERS: Registry[type] = Registry("memagent solver")
RUN_SOLVERS.add("memagent", MemAgentSolver)
RUN_SOLVERS.add("routed", RoutedSolver)

MEMAGENT_OUTPUTS: tuple[str, ...] = ("trace.jsonl", "predictions.jsonl", "summary.json")
"""What a memagent run writes in its folder (besides config.yaml and metrics.jsonl): what
`overwrite` removes."""


class DatasetInput(ConfigModel):
    """TaskSamples written by `qwenlong.core.dataset_io` (a parquet file or folder)."""

    path: Path
    """The parquet file or folder; read in row batches, never loaded whole."""
    limit: int | None = Field(default=None, ge=1)
    """Only the first `limit` samples (smoke runs)."""


class DocumentInput(ConfigModel):
    """One document file and one question about it."""

    path: Path
    """A UTF-8 text file of any length; it is streamed chunk by chunk."""
    question: str = Field(min_length=1)
    """The user query; format sentences and options in it are split off (`query_split`)."""
    id: str = "document"
    """Sample id in the trace and predictions."""
    answers: list[str] = Field(default_factory=list)
    """Gold answers, when known: the prediction is then scored by the rule for answer_kind."""
    answer_kind: Literal["text", "choice", "number", "sequence"] = "text"
    """How the answer is graded. Set "choice" for a question with (A)-(D) options so the
    letter is matched exactly; the prompt asks for the letter line whenever options are found."""


class MemAgentRunConfig(ConfigModel):
    """The `qwenlong memagent` config: model, agent settings, sampling and one input."""

    model: BackendConfig
    """The model that reads, remembers and answers."""
    tokenizer: str | None = None
    """Tokenizer chunks and budgets are counted in; defaults to `model.model` for hf and vllm.
    Required with the openai backend."""
    solver: Literal["memagent", "routed"] = "memagent"
    """memagent: every sample through the agent; routed: single pass where the window allows."""
    memagent: MemAgentConfig = MemAgentConfig()
    """Budgets, step sampling, query split and router of the agent."""
    sampling: EvalSampling = EvalSampling()
    """Final-answer sampling (and step sampling where `memagent.step` leaves it unset); its
    max_input_tokens is the routed solver's single-pass prompt limit."""
    samples_per_question: int = Field(default=1, ge=1)
    """Independent trajectories per question (n)."""
    batch_size: int = Field(default=16, ge=1)
    """Samples that read their chunks together, one generate call per step. Our choice."""
    dataset: DatasetInput | None = None
    """Input: a TaskSample dataset. Exactly one of dataset, benchmark, document is set."""
    benchmark: BenchmarkRun | None = None
    """Input: an evals benchmark in its published format (loaded whole, as evals does)."""
    document: DocumentInput | None = None
    """Input: one document file and a question about it."""
    prompts: PromptSet = PromptSet()
    """Prompt name -> template file (relative to the working directory, like every path here);
    names left out use the project's wording: memagent_update, memagent_final,
    memagent_final_choice, memagent_query_split, and single_pass / single_pass_choice for the
    routed solver's one-pass reading. Files are checked on load. Ours."""

    @model_validator(mode="after")
    def _one_input(self) -> MemAgentRunConfig:
        given = [name for name in ("dataset", "benchmark", "document") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(
                f"set exactly one of dataset, benchmark, document (got {', '.join(given) or 'none'})"
            )
        return self


def run_memagent(
    config: MemAgentRunConfig,
    out: str | Path,
    model: ChatModel | None = None,
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run (or resume) the agent into `out`; returns the summary.json payload plus this run's
    `answered_now`, `resumed` and `seconds`.

    `model` may be passed in (tests, notebooks); otherwise it is built from the config and
    closed at the end. `overwrite` starts over in a folder made with another config instead of
    refusing it.
    """
    out = Path(out)
    with claim_run(out, config, MEMAGENT_OUTPUTS, overwrite=overwrite):
        return _run(config, out, model)


def _run(config: MemAgentRunConfig, out: Path, model: ChatModel | None) -> dict[str, Any]:
    """The agent over the input, in a run folder already claimed."""
    own_model = model is None
    chat_model = model or make_chat_model(config.model)
    try:
        with RunDir(out) as run, TraceStore(out / "trace.jsonl") as trace:
            run.save_config(config)
            tokenizer = load_tokenizer(config, chat_model)
            solver = RUN_SOLVERS.get(config.solver)(
                chat_model,
                tokenizer,
                max_input_tokens=config.sampling.max_input_tokens,
                config=config.memagent,
                observer=trace,
                keep_steps=False,
                prompts=config.prompts,
            )
            start = time.perf_counter()
            order: list[TaskSample] = []
            answered = 0
            for index, batch in enumerate(_batches(config, tokenizer)):
                order += [_strip(sample) for sample in batch]
                todo = [sample for sample in batch if sample.id not in trace]
                if not todo:
                    continue  # resumed: the whole batch is in the trace already
                tic = time.perf_counter()
                tasks, originals = _tasks(config, solver, todo, chat_model)
                params = config.sampling.to_params(config.samples_per_question, index)
                solver.solve_tasks(tasks, params, originals)
                answered += len(todo)
                run.log(index, _batch_metrics(trace, tasks, time.perf_counter() - tic))
            summary = _write_outputs(out, trace, order, answered, time.perf_counter() - start)
    finally:
        if own_model:
            chat_model.close()
    return summary


def load_tokenizer(config: MemAgentRunConfig, model: ChatModel) -> Any:
    """The tokenizer to count chunks in: `config.tokenizer`, the model's own, or `model.model`."""
    path = config.tokenizer
    if path is None:
        own = getattr(model, "tokenizer", None)
        if own is not None:
            return own
        if config.model.backend not in ("hf", "vllm"):
            raise ConfigError(
                "memagent: the openai backend needs `tokenizer:` (chunks are counted in tokens)"
            )
        path = config.model.model
    return load_tokenizer_at(path)


def _batches(config: MemAgentRunConfig, tokenizer: Any) -> Iterator[list[TaskSample]]:
    """The input in fixed batches of `batch_size`. A document input is one sample whose text
    stays in its file (the task streams it); its question is the raw query."""
    if config.document is not None:
        doc = config.document
        yield [
            TaskSample(
                id=doc.id,
                task_type="reading",
                question=doc.question,
                answers=list(doc.answers),
                answer_kind=doc.answer_kind,
            )
        ]
        return
    samples = _samples(config, tokenizer)
    while batch := list(islice(samples, config.batch_size)):
        yield batch


def _samples(config: MemAgentRunConfig, tokenizer: Any) -> Iterator[TaskSample]:
    """Dataset samples streamed from parquet, or a benchmark loaded whole (as evals does)."""
    if config.dataset is not None:
        return islice(iter_samples(config.dataset.path), config.dataset.limit)
    bench_run = config.benchmark
    assert bench_run is not None  # the config validator guarantees one input
    samples = get_benchmark(bench_run.name).load(
        bench_run.path, bench_run.subset, HFTokenCounter(tokenizer)
    )
    return iter(samples[: bench_run.limit] if bench_run.limit else samples)


def _tasks(
    config: MemAgentRunConfig,
    solver: MemAgentSolver | RoutedSolver,
    samples: list[TaskSample],
    model: ChatModel,
) -> tuple[list[AgentTask], list[TaskSample] | None]:
    """Agent tasks for `samples`, and the samples themselves when they hold their documents
    (the single-pass route reads them); a document input streams from its file instead."""
    if config.document is None:
        return solver.tasks(samples), samples
    doc = config.document
    if not doc.path.is_file():
        raise DatasetError(f"document file not found: {doc.path}")
    cfg = config.memagent
    splitter = QUERY_SPLITTERS.get(cfg.query_split)
    [split] = splitter([doc.question], model, cfg.split_max_tokens, config.prompts)
    task = AgentTask(
        id=doc.id,
        question=split.question,
        read=file_reader(doc.path, cfg.read_chars),
        instruction=split.instruction,
        choices=split.choices,
        answer_kind="choice" if split.choices else doc.answer_kind,
    )
    return [task], None


def _strip(sample: TaskSample) -> TaskSample:
    """The sample without its document: all scoring needs, at a fraction of the memory."""
    return replace(sample, context="", documents=[])


def _batch_metrics(trace: TraceStore, tasks: list[AgentTask], seconds: float) -> dict[str, Any]:
    outputs = [o for task in tasks for o in (trace.result(task.id) or {}).get("outputs", [])]
    tokens = sum(o["document_tokens"] for o in outputs)
    return {
        "samples": len(tasks),
        "document_tokens": tokens,
        "steps": sum(o["n_steps"] for o in outputs),
        "failed_steps": sum(o["failed_steps"] for o in outputs),
        "seconds": seconds,
        "document_tokens_per_s": tokens / seconds if seconds > 0 else None,
    }


def _write_outputs(
    out: Path, trace: TraceStore, order: list[TaskSample], answered: int, seconds: float
) -> dict[str, Any]:
    """predictions.jsonl in input order and summary.json, both recomputed from the trace; the
    summary is returned with this run's own counts and time added (they are not written)."""
    routes: dict[str, int] = {}
    scores: list[float] = []
    totals = {"document_tokens": 0, "n_steps": 0, "failed_steps": 0}
    with (out / "predictions.jsonl").open("w", encoding="utf-8") as handle:
        for sample in order:
            record = trace.result(sample.id)
            if record is None:
                continue
            outputs = record["outputs"]
            for output in outputs:
                routes[output["route"]] = routes.get(output["route"], 0) + 1
                for key in totals:
                    totals[key] += output[key]
            line: dict[str, Any] = {"id": sample.id, "outputs": [o["text"] for o in outputs]}
            line["routes"] = [o["route"] for o in outputs]
            if sample.answers:
                line["answers"] = sample.answers
                line["score"] = sum(score_output(sample, o["text"]) for o in outputs) / len(outputs)
                scores.append(line["score"])
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    summary = {
        "samples": len(order),
        "routes": routes,
        **totals,
        "rule_score": sum(scores) / len(scores) if scores else None,
        "scored": len(scores),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return {
        **summary,
        "answered_now": answered,
        "resumed": len(order) - answered,
        "seconds": seconds,
    }
