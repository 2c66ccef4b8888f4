"""Throughput and memory of context extension at 32K and 128K tokens (CPU only), before and after.

    uv run python benchmarks/synth_assembly.py [--samples-32k 96] [--samples-128k 24] [--seed 0]
        [--repeats 3] [--no-baseline]

Builds the tiny model into a temporary folder for its BPE tokenizer (the target tokenizer of
the CPU recipe), generates a corpus of about 600K tokens from `synthetic_corpus` (four
paragraphs per document, four domain labels), counts every document once (timed apart, since
a real run caches these counts on the documents), then assembles samples with three evidence
documents each to 32K and to 128K tokens. Only assembly is timed (wall clock, one process,
every core the tokenizer's batch encoding takes), `--repeats` times after a garbage collection;
the median is reported with the range.

Three ways of counting the finished contexts, on the same samples:
- joins (what `qwenlong synth` uses, `tokenizer_corpus`): each context counted from its
  documents' cached counts plus the text around each join, all of a batch in one call;
- whole, batched (what a tokenizer not proven additive at word ends gets): each context
  encoded whole, a batch of contexts (up to 1M target tokens) in one call over both cores;
- baseline (the implementation before, `Corpus(docs, count)`): each context encoded whole,
  one after another. `--no-baseline` skips this and the batched way.
All must give the same contexts and lengths (checked here; tests check it byte for byte).

Checks on the way: every context's exact token count is within the 2% tolerance; how many
texts longer than any document were encoded per sample (baseline: 1, the final check), and the
characters encoded per character of context. Memory: the process's peak resident set
(getrusage; includes the tokenizer and model build), and the Python-heap peak of assembling
one 128K sample (tracemalloc, in a separate pass since tracing slows allocation).

Prints a line per length and way, then ONE JSON line of figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

from transformers import AutoTokenizer

from qwenlong.core.records import Document, Provenance, TaskSample
from qwenlong.core.tiny_model import build_tiny_model
from qwenlong.core.tokenizer_train import synthetic_corpus
from qwenlong.evals.truncation import HFTokenCounter
from qwenlong.synth.assemble import AssemblyConfig, assemble_samples, tokenizer_corpus
from qwenlong.synth.interfaces import Corpus

PARAGRAPHS_PER_DOC = 4
DOMAINS = ("general", "academic", "professional", "literature")
LENGTHS = (("32k", 32768), ("128k", 131072))


class Recorder:
    """Counts in the tokenizer and remembers the length of every text it was asked to encode."""

    def __init__(self, counter: HFTokenCounter, tokenizer: object) -> None:
        self.counter = counter
        self.batch = tokenizer_corpus([], counter, tokenizer).count_many
        self.encoded: list[int] = []
        """Characters of each text encoded since the last `clear`."""

    def count(self, text: str) -> int:
        self.encoded.append(len(text))
        return self.counter.count_tokens(text)

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        self.encoded += [len(t) for t in texts]
        return self.batch(texts)


def build_documents(n_docs: int, seed: int) -> list[Document]:
    paragraphs = list(synthetic_corpus(seed, n_docs * PARAGRAPHS_PER_DOC))
    return [
        Document(
            id=f"doc{i:05d}",
            text="\n\n".join(paragraphs[i * PARAGRAPHS_PER_DOC : (i + 1) * PARAGRAPHS_PER_DOC]),
            domain=DOMAINS[i % len(DOMAINS)],
        )
        for i in range(n_docs)
    ]


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
    corpus: Corpus, recorder: Recorder, target: int, n: int, seed: int, repeats: int
) -> tuple[dict[str, float], list[tuple[str, int]]]:
    """Assemble `n` samples to `target` tokens `repeats` times; figures, and (context, length)."""
    config = AssemblyConfig(target_lengths=[target])
    samples = make_samples(corpus, n, f"t{target}", random.Random(seed))
    longest_chars = max(len(d.text) for d in corpus.documents)
    rates = []
    for _ in range(repeats):
        recorder.encoded.clear()
        # else a full collection of torch's and transformers' objects (~0.2 s) lands in one
        # repeat: a cost of the process's heap, not of assembly
        gc.collect()
        start = time.perf_counter()
        result = assemble_samples(samples, corpus, config, random.Random(seed))
        rates.append(n / (time.perf_counter() - start))
    if result.drops:
        raise SystemExit(f"{len(result.drops)} samples dropped at {target}: {result.drops[0]}")
    errors = [abs(s.context_tokens - target) / target for s in result.samples]
    context_chars = sum(len(s.context) for s in result.samples)
    figures = {
        "samples_per_s": statistics.median(rates),
        "samples_per_s_min": min(rates),
        "samples_per_s_max": max(rates),
        "max_rel_error": max(errors),
        "full_counts_per_sample": sum(c > longest_chars for c in recorder.encoded) / n,
        "encoded_chars_per_context_char": sum(recorder.encoded) / context_chars,
    }
    return figures, [(s.context, s.context_tokens) for s in result.samples]


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
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-baseline", action="store_true", help="skip the whole-encode path")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = AutoTokenizer.from_pretrained(build_tiny_model(Path(tmp) / "tiny"))
    recorder = Recorder(HFTokenCounter(tokenizer), tokenizer)
    docs = build_documents(args.docs, args.seed)
    joins = tokenizer_corpus(docs, recorder.count, tokenizer)
    joins.count_batch = recorder.count_batch
    ways = {"joins": joins}
    if not args.no_baseline:
        ways["batched"] = Corpus(docs, recorder.count, recorder.count_batch)
        ways["baseline"] = Corpus(docs, recorder.count)
    start = time.perf_counter()
    corpus_tokens = sum(joins.tokens(d) for d in docs)
    count_s = time.perf_counter() - start
    print(f"corpus: {len(docs)} docs, {corpus_tokens} tokens, counted in {count_s:.2f}s")
    print(f"tokenizer additive at word ends: {joins.additive_at_word_ends}")

    figures: dict[str, float] = {
        "corpus_docs": len(docs),
        "corpus_tokens": corpus_tokens,
        "corpus_count_s": round(count_s, 3),
    }
    sizes = {"32k": args.samples_32k, "128k": args.samples_128k}
    for label, target in LENGTHS:
        n = sizes[label]
        outputs = {}
        for way, corpus in ways.items():
            stats, outputs[way] = run_length(corpus, recorder, target, n, args.seed, args.repeats)
            print(
                f"{label} {way}: {n} samples, {stats['samples_per_s']:.2f} samples/s "
                f"({stats['samples_per_s_min']:.2f}-{stats['samples_per_s_max']:.2f} over "
                f"{args.repeats}), max length error {stats['max_rel_error']:.4%}, "
                f"{stats['full_counts_per_sample']:.2f} full tokenizations per sample, "
                f"{stats['encoded_chars_per_context_char']:.3f} chars encoded per context char"
            )
            suffix = "" if way == "joins" else f"_{way}"
            figures |= {f"{k}_{label}{suffix}": round(v, 5) for k, v in stats.items()}
        if "baseline" in outputs:
            if any(out != outputs["baseline"] for out in outputs.values()):
                raise SystemExit(f"{label}: the ways of counting gave different contexts")
            base = figures[f"samples_per_s_{label}_baseline"]
            for way in ("joins", "batched"):
                suffix = "" if way == "joins" else f"_{way}"
                figures[f"speedup_{label}{suffix}"] = round(
                    figures[f"samples_per_s_{label}{suffix}"] / base, 2
                )
            print(
                f"{label}: same contexts and lengths every way; joins "
                f"{figures[f'speedup_{label}']:.1f}x, whole batched "
                f"{figures[f'speedup_{label}_batched']:.1f}x the baseline"
            )
    figures["py_heap_peak_mb_128k"] = round(heap_peak_mb(joins, 131072, args.seed), 1)
    if not args.no_baseline:
        figures["py_heap_peak_mb_128k_baseline"] = round(
            heap_peak_mb(ways["baseline"], 131072, args.seed), 1
        )
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
