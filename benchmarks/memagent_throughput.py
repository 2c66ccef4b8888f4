"""Memory-agent throughput and memory on CPU with the tiny model.

    uv run python benchmarks/memagent_throughput.py [--docs 8] [--doc-tokens 2048]
        [--chunk-tokens 256] [--step-tokens 16] [--memory-doc-tokens 50000] [--growth 10]

1. Throughput: `--docs` documents of about `--doc-tokens` tokens each are read by the agent
   (greedy, `--step-tokens` per update) once as one batch, where each step is one generate
   call over every active document, and once one document at a time. Reported as document
   tokens read per second of wall time.
2. Streaming bound: one document file of `--memory-doc-tokens` tokens and one `--growth` times
   longer are each read in a fresh process (4096-token chunks, steps written to a JSONL trace
   as in `qwenlong memagent`). Peak RSS and peak Python heap (tracemalloc) should stay flat
   while the document grows: the agent holds one chunk per sample, never the document.

The tiny model is random, so its updates are rarely well-formed; the figures measure the
machinery (chunking, prompting, batched decoding, parsing, tracing), not answer quality.
Prints a table, then ONE JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.tokenizer_train import synthetic_corpus
from qwenlong.memagent.agent import MemoryAgent
from qwenlong.memagent.chunking import file_reader, iter_chunks, text_reader
from qwenlong.memagent.config import MemAgentConfig
from qwenlong.memagent.interfaces import AgentTask
from qwenlong.memagent.trace import TraceStore

CHARS_PER_TOKEN = 3.1
"""About what the tiny model's tokenizer averages on the generated corpus (sizes files)."""


def _load_model(model_dir: Path, threads: int, batch_size: int):
    from qwenlong.core.backends.hf import HFChatModel

    return HFChatModel(model_dir, batch_size=batch_size, torch_threads=threads)


def _document(seed: int, tokens: int, tokenizer) -> str:
    """Generated prose cut to exactly `tokens` tokens (the first chunk of that size)."""
    text = "".join(synthetic_corpus(seed, max(4, int(tokens * CHARS_PER_TOKEN / 250) + 4)))
    return next(iter_chunks(text, tokenizer, tokens)).text


def throughput(model_dir: Path, args: argparse.Namespace) -> dict[str, float]:
    """Document tokens per second, batched versus one document at a time."""
    model = _load_model(model_dir, args.threads, batch_size=args.docs)
    config = MemAgentConfig(
        chunk_tokens=args.chunk_tokens,
        memory_tokens=args.chunk_tokens // 2,
        plan_tokens=32,
        step={"max_new_tokens": args.step_tokens},
        final_max_tokens=8,
    )
    sampling = SamplingParams(max_new_tokens=8, temperature=0.0, seed=0)
    docs = [_document(seed, args.doc_tokens, model.tokenizer) for seed in range(args.docs)]
    tasks = [
        AgentTask(id=f"d{i}", question="Which places are named?", read=text_reader(doc))
        for i, doc in enumerate(docs)
    ]
    agent = MemoryAgent(model, model.tokenizer, config)
    agent.run(tasks[:1], sampling)  # warm-up: first-call allocations, kernels
    start = time.perf_counter()
    batched = agent.run(tasks, sampling)
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    for task in tasks:
        agent.run([task], sampling)
    sequential_s = time.perf_counter() - start
    tokens = sum(per[0].document_tokens for per in batched)
    model.close()
    return {
        "document_tokens": tokens,
        "steps_per_doc": max(per[0].n_steps for per in batched),
        "batched_s": batched_s,
        "sequential_s": sequential_s,
        "batched_tokens_per_s": tokens / batched_s,
        "sequential_tokens_per_s": tokens / sequential_s,
    }


def _write_document(path: Path, tokens: int) -> None:
    """A file of about `tokens` tokens, written paragraph by paragraph."""
    target = int(tokens * CHARS_PER_TOKEN)
    written = seed = 0
    with path.open("w", encoding="utf-8") as handle:
        while written < target:
            for paragraph in synthetic_corpus(seed, 100):
                handle.write(paragraph)
                written += len(paragraph)
                if written >= target:
                    break
            seed += 1


def measure_memory(model_dir: Path, document: Path, threads: int) -> dict[str, float]:
    """(child process) Read `document` once; report peak RSS and peak Python heap."""
    model = _load_model(model_dir, threads, batch_size=1)
    config = MemAgentConfig(
        chunk_tokens=4096,
        memory_tokens=256,
        plan_tokens=32,
        step={"max_new_tokens": 4},
        final_max_tokens=4,
    )
    task = AgentTask(id="doc", question="What is named?", read=file_reader(document))
    sampling = SamplingParams(max_new_tokens=4, temperature=0.0, seed=0)
    with tempfile.TemporaryDirectory() as tmp, TraceStore(Path(tmp) / "trace.jsonl") as trace:
        agent = MemoryAgent(model, model.tokenizer, config, observer=trace)
        tracemalloc.start()
        start = time.perf_counter()
        [[result]] = agent.run([task], sampling, keep_steps=False)
        seconds = time.perf_counter() - start
        _, python_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {
        "doc_tokens": result.document_tokens,
        "steps": result.n_steps,
        "file_mb": document.stat().st_size / 2**20,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_python_mb": python_peak / 2**20,
        "seconds": seconds,
    }


def memory_scaling(model_dir: Path, args: argparse.Namespace, tmp: Path) -> list[dict]:
    """Peak memory at the base length and `growth` times it, each in a fresh process."""
    rows = []
    for tokens in (args.memory_doc_tokens, args.memory_doc_tokens * args.growth):
        document = tmp / f"doc-{tokens}.txt"
        _write_document(document, tokens)
        child = [sys.executable, __file__, "--child-memory", str(document)]
        child += ["--model-dir", str(model_dir), "--threads", str(args.threads)]
        output = subprocess.run(child, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        document.unlink()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=8)
    parser.add_argument("--doc-tokens", type=int, default=2048)
    parser.add_argument("--chunk-tokens", type=int, default=256)
    parser.add_argument("--step-tokens", type=int, default=16)
    parser.add_argument("--memory-doc-tokens", type=int, default=50_000)
    parser.add_argument("--growth", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--child-memory", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory is not None:
        print(json.dumps(measure_memory(args.model_dir, args.child_memory, args.threads)))
        return

    from qwenlong.core.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model_dir = build_tiny_model(tmp / "tiny")
        speed = throughput(model_dir, args)
        memory = memory_scaling(model_dir, args, tmp)

    print(f"throughput: {args.docs} docs x {args.doc_tokens} tokens, chunk {args.chunk_tokens}")
    print(f"  batched     {speed['batched_tokens_per_s']:9.0f} doc tokens/s")
    print(f"  one by one  {speed['sequential_tokens_per_s']:9.0f} doc tokens/s")
    print("memory: doc tokens | file MB | peak RSS MB | peak Python MB | s")
    for row in memory:
        print(
            f"  {row['doc_tokens']:>10} | {row['file_mb']:7.1f} | {row['peak_rss_mb']:11.0f} | "
            f"{row['peak_python_mb']:14.2f} | {row['seconds']:.0f}"
        )
    small, large = memory
    figures = {
        **speed,
        "batch_speedup": speed["batched_tokens_per_s"] / speed["sequential_tokens_per_s"],
        "memory": memory,
        "doc_growth": large["doc_tokens"] / small["doc_tokens"],
        "rss_growth": large["peak_rss_mb"] / small["peak_rss_mb"],
        "python_peak_growth": large["peak_python_mb"] / small["peak_python_mb"],
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
