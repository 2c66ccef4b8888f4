"""Throughput of the rule metrics on realistic synthetic model outputs (CPU only).

    uv run python benchmarks/scoring.py [--items 100000] [--mrcr-items N] [--seed 0]

Each metric scores `--items` outputs shaped like a thinking model's: a reasoning of a few
thousand to tens of thousands of characters, `</think>`, then an answer in the form its
benchmark asks for; about 3% are truncated (no `</think>`: the extractor reads the whole text).
MRCR responses are 300-3,000 characters (identical to the gold, lightly edited, a different
text, or missing the prefix) and cost milliseconds each, so MRCR scores `--mrcr-items` outputs.
Only scoring is timed (process CPU time); generating the texts is not.

Prints a table of items/s per metric, then ONE JSON line: items_per_s per metric and the CPU
seconds per 1,000 items of a Table-7-like mix (one metric per benchmark, weighted by benchmark
size; the MRCR size is approximate).
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time
from collections.abc import Callable, Iterator

from qwenlong.core.records import TaskSample
from qwenlong.evals.metrics import make_scorer

_PROSE_VOCABULARY = """
the of and to in revenue table figure total margin year growth report section question
therefore compute first second check value because context document mentions about which
company quarter percent million ratio answer consider however wait so let me see step sum
difference average Paris Curie river treaty album director
"""
WORDS = _PROSE_VOCABULARY.split()
ENTITIES = [
    "Marie Curie",
    "Paris",
    "the Treaty of Utrecht",
    "1987",
    "Lake Baikal",
    "Ludwig van Beethoven",
    "the Golden Gate Bridge",
    "Acme Holdings",
    "Nile",
    "42",
]
LB1_DATASETS = ["hotpotqa", "2wikimqa", "musique", "narrativeqa", "qasper", "triviaqa"]

TABLE7_MIX = {  # benchmark: (metric, items)
    "DocMath": ("docmath", 800),
    "LongBench-V2": ("longbench_v2", 503),
    "Frames": ("cover_em", 824),
    "MRCR 0-128K": ("mrcr", 1500),  # about 300 per bin, 5 bins
    "CorpusQA 128K": ("corpusqa", 329),
    "LongBench-V1 QA": ("cover_em", 1000),  # 5 datasets x 200
}

Item = tuple[TaskSample, str]


class Texts:
    """Seeded generators of reasoning and answer texts."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.corpus = self._words(1_000_000)
        self.reasonings = [
            self._words(int(min(self.rng.lognormvariate(9.4, 0.7), 80_000))) for _ in range(64)
        ]

    def _words(self, chars: int) -> str:
        words: list[str] = []
        size = 0
        while size < chars:
            word = self.rng.choice(WORDS)
            words.append(word + ("." if self.rng.random() < 0.08 else ""))
            size += len(word) + 1
        return " ".join(words)

    def prose(self, chars: int) -> str:
        """`chars` characters of prose: a random slice of a pre-generated corpus."""
        start = self.rng.randrange(len(self.corpus) - chars)
        return self.corpus[start : start + chars]

    def output(self, answer: str) -> str:
        reasoning = self.rng.choice(self.reasonings)
        if self.rng.random() < 0.03:
            return reasoning  # truncated: no answer part
        return reasoning + "</think>\n\n" + answer

    def number(self) -> float:
        return round(self.rng.uniform(-5_000, 50_000), self.rng.choice([0, 1, 2, 3]))


def sample(answers: list[str], **meta: str) -> TaskSample:
    return TaskSample(id="b", task_type="bench", question="q", answers=answers, meta=meta)


def short_answer_items(t: Texts) -> Iterator[Item]:
    while True:
        gold = t.rng.choice(ENTITIES)
        said = gold if t.rng.random() < 0.6 else t.rng.choice(ENTITIES)
        text = f"{t.prose(200)} Therefore, the answer is **{said}**."
        yield sample([gold, gold.lower()]), t.output(text)


def longbench_f1_items(t: Texts) -> Iterator[Item]:
    while True:
        gold = t.rng.choice(ENTITIES)
        said = gold if t.rng.random() < 0.5 else f"{t.prose(60)} {t.rng.choice(ENTITIES)}"
        yield sample([gold], dataset=t.rng.choice(LB1_DATASETS)), t.output(said)


def longbench_v2_items(t: Texts) -> Iterator[Item]:
    while True:
        gold, said = t.rng.choice("ABCD"), t.rng.choice("ABCD")
        text = f"{t.prose(300)}\n\n**The correct answer is ({said})**"
        yield sample([gold]), t.output(text)


def docmath_items(t: Texts) -> Iterator[Item]:
    formats: list[Callable[[float], str]] = [
        str,
        lambda v: f"{v:,}",
        lambda v: f"${v:,.2f} million",
        lambda v: f"{v}%",
        lambda v: f"approximately {v:.1f}",
        lambda v: f"x = {v}",
        lambda v: f"{v / 100:.4f}",
    ]
    while True:
        gold = t.number()
        value = gold if t.rng.random() < 0.6 else t.number()
        text = f"{t.prose(300)} Therefore, the answer is {t.rng.choice(formats)(value)}."
        yield sample([repr(gold)]), t.output(text)


def corpusqa_items(t: Texts) -> Iterator[Item]:
    while True:
        gold = f"{t.number():,}"
        said = gold if t.rng.random() < 0.5 else f"{t.number():,}"
        yield sample([gold]), t.output(f"{t.prose(400)}\nThe answer is: {said}")


def mrcr_items(t: Texts) -> Iterator[Item]:
    while True:
        prefix = "".join(t.rng.choices(string.ascii_letters + string.digits, k=10))
        gold = t.prose(t.rng.randint(300, 3_000))
        kind = t.rng.random()
        if kind < 0.45:
            said = prefix + gold
        elif kind < 0.7:
            cut = t.rng.randrange(len(gold))
            said = prefix + gold[:cut] + t.prose(40) + gold[cut + 25 :]
        elif kind < 0.9:
            said = prefix + t.prose(len(gold))
        else:
            said = gold
        yield sample([prefix + gold], prefix=prefix), t.output(said)


GENERATORS: dict[str, Callable[[Texts], Iterator[Item]]] = {
    "cover_em": short_answer_items,
    "sub_em": short_answer_items,
    "longbench_f1": longbench_f1_items,
    "longbench_v2": longbench_v2_items,
    "mrcr": mrcr_items,
    "docmath": docmath_items,
    "docmath_strict": docmath_items,
    "corpusqa": corpusqa_items,
}


def measure(metric: str, items: int, seed: int, batch: int = 2_000) -> float:
    """CPU seconds to score `items` generated items with `metric` (generation untimed)."""
    scorer = make_scorer(metric)
    generator = GENERATORS[metric](Texts(seed))
    cpu = 0.0
    done = 0
    while done < items:
        chunk = [next(generator) for _ in range(min(batch, items - done))]
        start = time.process_time()
        for task, output in chunk:
            scorer(task, output)
        cpu += time.process_time() - start
        done += len(chunk)
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument(
        "--mrcr-items", type=int, default=None, help="MRCR items (default: --items; ~0.5 ms each)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.mrcr_items is None:
        args.mrcr_items = args.items

    rates: dict[str, float] = {}
    counts: dict[str, int] = {}
    print(f"{'metric':<16}{'items':>9}{'cpu s':>9}{'items/s':>12}")
    for metric in GENERATORS:
        counts[metric] = args.mrcr_items if metric == "mrcr" else args.items
        cpu = measure(metric, counts[metric], args.seed)
        rates[metric] = counts[metric] / cpu
        print(f"{metric:<16}{counts[metric]:>9}{cpu:>9.2f}{rates[metric]:>12.0f}")
    if args.mrcr_items < args.items:
        print(f"(mrcr scored {args.mrcr_items} items instead of {args.items}: ~ms per item)")

    total = sum(n for _, n in TABLE7_MIX.values())
    cpu_per_item = sum(n / rates[metric] for metric, n in TABLE7_MIX.values()) / total
    print(f"Table-7-like mix ({total} items): {cpu_per_item * 1000:.3f} CPU s per 1000 items")
    print(
        json.dumps(
            {
                "items_per_s": {m: round(r, 1) for m, r in rates.items()},
                "items": counts,
                "mix_cpu_s_per_1000_items": round(cpu_per_item * 1000, 4),
                "mix": {bench: {"metric": m, "items": n} for bench, (m, n) in TABLE7_MIX.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
