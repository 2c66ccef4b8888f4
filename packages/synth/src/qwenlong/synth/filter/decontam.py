"""Decontamination: drop training samples that share a word n-gram with an evaluation set.

Synthesized questions are written from a corpus that may contain the very documents the
benchmarks ask about, and an LLM rewriter may reproduce a benchmark question it memorised. A
sample whose question (+ options + answers) shares one normalised 13-word sequence with an
evaluation question is treated as seen (the GPT-3 decontamination rule); one too short to have a
13-gram is contaminated when its whole normalised text equals an evaluation question's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.evals.benchmarks import get_benchmark
from qwenlong.evals.normalize import normalized_tokens
from qwenlong.synth.filter.config import DecontamConfig
from qwenlong.synth.interfaces import Drop


@dataclass(frozen=True)
class EvalText:
    """One piece of evaluation material: where it is from and its text."""

    source: str
    """The benchmark (and subset) or file name, for the report's counts."""
    text: str


def overlap_text(sample: TaskSample, include_answers: bool) -> str:
    """The text compared on both sides: the question, plus options and gold answers if asked."""
    parts = [sample.question]
    if include_answers:
        parts += [*sample.choices, *sample.answers]
    return " ".join(parts)


def eval_texts_from_samples(
    source: str, samples: Iterable[TaskSample], include_answers: bool = True
) -> list[EvalText]:
    """Evaluation questions already loaded as `TaskSample`s (a benchmark loader's output)."""
    return [EvalText(source, overlap_text(s, include_answers)) for s in samples]


def load_eval_texts(
    config: DecontamConfig, count_tokens: Callable[[str], int] | None = None
) -> list[EvalText]:
    """Every evaluation text `config` names: its benchmarks through their loaders, then its files."""
    texts: list[EvalText] = []
    for entry in config.benchmarks:
        samples = get_benchmark(entry.benchmark).load(entry.path, entry.subset, count_tokens)
        name = entry.benchmark + (f"/{entry.subset}" if entry.subset else "")
        texts += eval_texts_from_samples(name, samples, config.include_answers)
    for path in config.text_files:
        if not path.is_file():
            raise DatasetError(f"decontamination text file not found: {path}")
        texts.append(EvalText(path.name, path.read_text(encoding="utf-8")))
    return texts


class NgramIndex:
    """Hashed word n-grams of evaluation texts, each mapped to the first source it came from.

    Python's string hash is salted per process, which is fine: the index lives for one run.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.sources: list[str] = []
        self._source_ids: dict[str, int] = {}
        self._grams: dict[int, int] = {}
        self._short: dict[str, int] = {}
        """Whole normalised texts shorter than n words: the only ones a short sample can equal."""

    def add(self, text: EvalText) -> None:
        source = self._source_ids.setdefault(text.source, len(self.sources))
        if source == len(self.sources):
            self.sources.append(text.source)
        words = normalized_tokens(text.text)
        if len(words) < self.n:
            self._short.setdefault(" ".join(words), source)
            return
        for i in range(len(words) - self.n + 1):
            self._grams.setdefault(hash(tuple(words[i : i + self.n])), source)

    def find(self, text: str) -> tuple[str, str] | None:
        """(source, overlapping words) of the first n-gram of `text` found, or None."""
        words = normalized_tokens(text)
        if len(words) < self.n:
            source = self._short.get(" ".join(words))
            return None if source is None else (self.sources[source], " ".join(words))
        for i in range(len(words) - self.n + 1):
            gram = words[i : i + self.n]
            source = self._grams.get(hash(tuple(gram)))
            if source is not None:
                return self.sources[source], " ".join(gram)
        return None


@dataclass
class DecontamResult:
    """Kept samples in input order, the contaminated ones, and per-source counts."""

    kept: list[TaskSample]
    drops: list[Drop]
    counts: dict[str, int]
    """Evaluation source -> training samples dropped for overlapping it."""
    mode: str


def decontaminate(
    samples: Sequence[TaskSample], eval_texts: Sequence[EvalText], config: DecontamConfig
) -> DecontamResult:
    """Drop samples sharing an n-gram with any evaluation text (reason "contaminated")."""
    if not config.enabled:
        return DecontamResult(list(samples), [], {}, "skipped (disabled)")
    if not eval_texts:
        return DecontamResult(list(samples), [], {}, "skipped (no evaluation sets)")
    index = NgramIndex(config.ngram)
    for text in eval_texts:
        index.add(text)
    kept: list[TaskSample] = []
    drops: list[Drop] = []
    counts: Counter[str] = Counter()
    for sample in samples:
        hit = index.find(overlap_text(sample, config.include_answers))
        if hit is None:
            kept.append(sample)
            continue
        counts[hit[0]] += 1
        drops.append(Drop.of(sample, "contaminated", "decontam", f"{hit[0]}: {hit[1]!r}"))
    mode = f"{config.ngram}-gram overlap with {', '.join(index.sources)}"
    return DecontamResult(kept, drops, dict(counts), mode)
