"""`qwenlong synth CONFIG.yaml --out DIR`, stage by stage as RECIPE.md section 1 describes.

    documents  = corpus (fictional world or ingested folders), token-counted
    triples    = extract(documents)                    # rule or LLM, resumable per document
    candidates = generators A, B, C, dialogue          # each written once
    candidates = dedup(candidates); decontaminate(candidates)
    samples    = extend contexts with distractors to the target lengths
    samples    = verify: knowledge grounding, contextual robustness (pass@k)
    dataset    = balance by pass-rate bins
    write DIR/dataset (parquet TaskSamples), DIR/report.md, DIR/summary.json
    report what each source type (fictional, txt, html, pdf, ...) gave, and why some gave none

Cheap filters run before verification so the model is never asked about a sample that would be
dropped anyway. Everything after generation is deterministic for the seed and recomputed on a
resumed run; verification's model calls are stored per sample and never repeated.

A rerun resumes only with the config the folder was made with (`qwenlong.core.run_guard`):
the stored world, triples and candidates were made by that config, so a changed one is refused
unless `overwrite` removes `SYNTH_OUTPUTS` first. One run at a time holds the folder's lock.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from qwenlong.core.backends import make_chat_model
from qwenlong.core.dataset_io import write_samples
from qwenlong.core.interfaces import ChatModel
from qwenlong.core.run_guard import claim_run
from qwenlong.core.rundir import RunDir
from qwenlong.core.seeding import derive_rng
from qwenlong.core.tokenizer import load_tokenizer
from qwenlong.evals.interfaces import Judge
from qwenlong.evals.judge import LLMJudge
from qwenlong.evals.truncation import HFTokenCounter
from qwenlong.synth.assemble.extend import assemble_samples
from qwenlong.synth.assemble.word_ends import tokenizer_corpus
from qwenlong.synth.config import SynthConfig
from qwenlong.synth.filter.balance import balance_by_difficulty
from qwenlong.synth.filter.decontam import decontaminate, load_eval_texts
from qwenlong.synth.filter.dedup import remove_near_duplicates
from qwenlong.synth.pipeline.generators import GeneratorInputs
from qwenlong.synth.pipeline.stages import (
    corpus_stage,
    extract_stage,
    generate_stage,
    read_skipped,
)
from qwenlong.synth.report import write_report
from qwenlong.synth.source_yield import yield_by_source
from qwenlong.synth.verify.checks import verify_samples

SYNTH_OUTPUTS: tuple[str, ...] = (
    "corpus",
    "extract",
    "candidates",
    "verify",
    "dataset",
    "report.md",
    "context_lengths_*.png",
    "summary.json",
    "judge_cache.jsonl",
)
"""What synthesis writes in its run folder (besides config.yaml and metrics.jsonl): what
`overwrite` removes."""


def run_synth(
    config: SynthConfig,
    out: Path,
    *,
    llm: ChatModel | None = None,
    solver: ChatModel | None = None,
    judge: Judge | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run (or resume) synthesis into `out`; returns the summary also written to summary.json.

    Models may be passed in (tests, notebooks); otherwise they are built from the config.
    `overwrite` starts over in a folder made with another config instead of refusing it.
    """
    with claim_run(out, config, SYNTH_OUTPUTS, overwrite=overwrite), RunDir(out) as run:
        run.save_config(config)
        return _synthesize(config, out, run, llm, solver, judge)


def _synthesize(
    config: SynthConfig,
    out: Path,
    run: RunDir,
    llm: ChatModel | None,
    solver: ChatModel | None,
    judge: Judge | None,
) -> dict[str, Any]:
    tokenizer = load_tokenizer(config.tokenizer)
    count = HFTokenCounter(tokenizer)
    llm = llm or (make_chat_model(config.llm) if config.llm else None)
    solver = solver or (make_chat_model(config.solver) if config.solver else llm)
    if judge is None and config.judge is not None:
        judge = LLMJudge(make_chat_model(config.judge), cache_path=out / "judge_cache.jsonl")
    rng = derive_rng(config.seed, "filters")
    modes: dict[str, str] = {}

    documents, modes["corpus"] = corpus_stage(config, out, count)
    corpus = tokenizer_corpus(documents, count, tokenizer)
    triples, modes["extract"] = extract_stage(config, corpus, out, llm)
    inputs = GeneratorInputs(triples=triples.triples([d.id for d in documents]), judge=judge)
    candidates, generator_modes = generate_stage(config, corpus, out, inputs, llm)
    modes.update({f"generator {name}": mode for name, mode in generator_modes.items()})

    deduped = remove_near_duplicates(candidates, config.filter.dedup)
    eval_texts = load_eval_texts(config.filter.decontam, count_tokens=count)
    clean = decontaminate(deduped.kept, eval_texts, config.filter.decontam)
    assembled = assemble_samples(clean.kept, corpus, config.assembly, rng)
    verified = verify_samples(
        assembled.samples, solver, config.verify, out / "verify", tokenizer=tokenizer
    )
    balanced = balance_by_difficulty(verified.samples, config.filter.balance, rng)
    modes |= {
        "dedup": deduped.mode,
        "decontam": clean.mode,
        "assemble": assembled.mode,
        "verify": verified.mode,
        "balance": balanced.mode,
    }

    dataset = balanced.kept
    drops = deduped.drops + clean.drops + assembled.drops + verified.drops + balanced.drops
    write_samples(dataset, out / "dataset" / "data.parquet")
    extracted = {d.id: len(triples.triples([d.id])) for d in documents if triples.done(d.id)}
    sources = yield_by_source(documents, read_skipped(out), extracted, candidates, dataset)
    write_report(out, dataset, drops, modes, contamination=clean.counts, sources=sources)
    summary = {
        "samples": len(dataset),
        "candidates": len(candidates),
        "by_task_type": dict(Counter(s.task_type for s in dataset)),
        "by_generator": dict(Counter(s.provenance.generator for s in dataset)),
        "drops": dict(Counter(d.reason for d in drops)),
        "by_source_type": {kind: y.as_dict() for kind, y in sources.items()},
        "stage_modes": modes,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    run.log(0, {"samples": len(dataset), "candidates": len(candidates), "drops": len(drops)})
    return summary
