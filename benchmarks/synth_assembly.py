"""Throughput and memory of context extension at 32K and 128K tokens (CPU only).

    uv run python benchmarks/synth_assembly.py [--samples-32k 96] [--samples-128k 24] [--seed 0]

Builds the tiny model into a temporary folder for its BPE tokenizer (the target tokenizer of
the CPU recipe), generates a corpus of about 600K tokens from `synthetic_corpus` (four
paragraphs per document, four domain labels), counts every document once (timed apart, since
a real run caches these counts on the documents), then assembles samples with three evidence
documents each to 32K and to 128K tokens. Only assembly is timed (wall clock, one process).

Checks on the way: every context's exact token count is within the 2% tolerance, and how many
times per sample a text longer than any document was tokenized (1: only the final check).
Memory: the process's peak resident set (getrusage; includes the tokenizer and model build),
and the Python-heap peak of assembling one 128K sample (tracemalloc, in a separate pass since
tracing slows allocation).

Prints a line per length, then ONE JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from transformers import AutoTokenizer

from qwenlong.core.records import Document, Provenance, TaskSample
from qwenlong.core.tiny_model import build_tiny_model
from qwenlong.core.tokenizer_train import synthetic_corpus
from qwenlong.evals.truncation import HFTokenCounter
from qwenlong.synth.assemble import AssemblyConfig, assemble_samples
from qwenlong.synth.interfaces import Corpus

PARAGRAPHS_PER_DOC = 4
DOMAINS = ("general", "academic", "professional", "literature")


def build_corpus(counter: HFTokenCounter, n_docs: int, seed: int) -> tuple[Corpus, list[int]]:
    """The generated corpus, and the list its counter appends each counted length to."""
    paragraphs = list(synthetic_corpus(seed, n_docs * PARAGRAPHS_PER_DOC))
    docs = [
        Document(
            id=f"doc{i:05d}",
            text="\n\n".join(paragraphs[i * PARAGRAPHS_PER_DOC : (i + 1) * PARAGRAPHS_PER_DOC]),
            domain=DOMAINS[i % len(DOMAINS)],
        )
        for i in range(n_docs)
    ]
    counted: list[int] = []

    def count(text: str) -> int:
        n = counter.count_tokens(text)
        counted.append(n)
        return n

    return Corpus(docs, count), counted


def make_samples(corpus: Corpus, n: int, tag: str, rng: random.Random) -> list[TaskSample]:
    ids = [d.id for d in corpus.documents]
    return [
        TaskSample(
            id=f"{tag}-{i}",
            task_type="multihop",
            question="Which of the people named in these documents was born first?",
            answers=["nobody named here"],
            provenance=Provenance(generator="bench", source_documents=rng.sample(ids, 3)),
        )
        for i in range(n)
    ]


def run_length(
    corpus: Corpus, counted: list[int], target: int, n: int, seed: int
) -> dict[str, float]:
    """Assemble `n` samples to `target` tokens; throughput, worst length error, full counts."""
    config = AssemblyConfig(target_lengths=[target])
    samples = make_samples(corpus, n, f"t{target}", random.Random(seed))
    longest_doc = max(corpus.tokens(d) for d in corpus.documents)
    counted.clear()
    start = time.perf_counter()
    result = assemble_samples(samples, corpus, config, random.Random(seed))
    elapsed = time.perf_counter() - start
    if result.drops:
        raise SystemExit(f"{len(result.drops)} samples dropped at {target}: {result.drops[0]}")
    errors = [abs(s.context_tokens - target) / target for s in result.samples]
    full_counts = sum(1 for c in counted if c > longest_doc)
    return {
        "samples_per_s": n / elapsed,
        "s_per_sample": elapsed / n,
        "max_rel_error": max(errors),
        "full_counts_per_sample": full_counts / n,
    }


def heap_peak_mb(corpus: Corpus, target: int, seed: int) -> float:
    """Python-heap peak (MB) of assembling one sample to `target` tokens."""
    sample = make_samples(corpus, 1, "heap", random.Random(seed + 1))
    config = AssemblyConfig(target_lengths=[target])
    tracemalloc.start()
    assemble_samples(sample, corpus, config, random.Random(seed))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def peak_rss_mb() -> float:
    """Peak resident set of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples-32k", type=int, default=96)
    parser.add_argument("--samples-128k", type=int, default=24)
    parser.add_argument("--docs", type=int, default=1800, help="corpus documents (~340 tokens)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = AutoTokenizer.from_pretrained(build_tiny_model(Path(tmp) / "tiny"))
    counter = HFTokenCounter(tokenizer)
    corpus, counted = build_corpus(counter, args.docs, args.seed)
    start = time.perf_counter()
    corpus_tokens = sum(corpus.tokens(d) for d in corpus.documents)
    count_s = time.perf_counter() - start
    print(
        f"corpus: {len(corpus.documents)} docs, {corpus_tokens} tokens, counted in {count_s:.2f}s"
    )

    figures: dict[str, float] = {
        "corpus_docs": len(corpus.documents),
        "corpus_tokens": corpus_tokens,
        "corpus_count_s": round(count_s, 3),
    }
    for label, target, n in (("32k", 32768, args.samples_32k), ("128k", 131072, args.samples_128k)):
        stats = run_length(corpus, counted, target, n, args.seed)
        print(
            f"{label}: {n} samples, {stats['samples_per_s']:.2f} samples/s, "
            f"max length error {stats['max_rel_error']:.4%}, "
            f"{stats['full_counts_per_sample']:.2f} full tokenizations per sample"
        )
        figures |= {f"{key}_{label}": round(value, 5) for key, value in stats.items()}
    figures["py_heap_peak_mb_128k"] = round(heap_peak_mb(corpus, 131072, args.seed), 1)
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
