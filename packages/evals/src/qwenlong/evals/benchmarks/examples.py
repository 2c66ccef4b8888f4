"""Small example files for every benchmark, in each benchmark's real published schema.

Tests, the end-to-end eval test and README demos need benchmark files without downloading
gigabytes. `write_examples` writes a handful of questions per benchmark, laid out exactly as the
published data is (same file names, same columns, same container), so the loaders read them
through the same code path as the real sets. The contexts are short synthetic documents about
invented towns, people and companies, made here, and every gold answer is stated in its context,
so a capable model can answer them and a scorer can be checked end to end.

Output is a pure function of `seed` and `n`.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qwenlong.core.errors import ConfigError
from qwenlong.core.registry import Registry
from qwenlong.evals.benchmarks import corpusqa, docmath, longbench_v1

_SYLLABLES = ("var", "nol", "tes", "mir", "ka", "do", "ren", "sal", "bri", "ot", "lum", "pa", "zer")
_FORMATS = ("poem", "riddle", "short story", "blog post")
_TOPICS = ("tapirs", "lanterns", "glaciers", "copper mines", "owls", "harbours")
_WORDS = ("quiet", "river", "stone", "bright", "winter", "market", "signal", "amber", "field")


@dataclass(frozen=True)
class Fact:
    """One statement of the synthetic world, with the question it answers."""

    sentence: str
    question: str
    answer: str


def _name(rng: random.Random, parts: int = 2) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(parts)).capitalize()


def _author(rng: random.Random) -> str:
    return f"{_name(rng)} {_name(rng)}"


_FACT_KINDS: tuple[tuple[str, str, Callable[[random.Random], str]], ...] = (
    (
        "The town of {s} was founded in {v}.",
        "In which year was the town of {s} founded?",
        lambda rng: str(rng.randint(1500, 1990)),
    ),
    (
        "The {s} river is {v} kilometres long.",
        "How many kilometres long is the {s} river?",
        lambda rng: str(rng.randint(12, 900)),
    ),
    ("{s} was born in the town of {v}.", "In which town was {s} born?", _name),
    ("The novel {s} was written by {v}.", "Who wrote the novel {s}?", _author),
)
"""(sentence, question, value maker): each states its answer verbatim in the sentence."""


def _fact(rng: random.Random) -> Fact:
    sentence, question, make_value = rng.choice(_FACT_KINDS)
    subject, value = _name(rng, 3), make_value(rng)
    return Fact(sentence.format(s=subject, v=value), question.format(s=subject), value)


def _two_hop(rng: random.Random) -> tuple[str, str, str, str, str]:
    """(book, author, first sentence, second sentence, town): who wrote it, where they were born."""
    book, author, town = _name(rng, 3), _author(rng), _name(rng)
    return (
        book,
        author,
        f"The novel {book} was written by {author}.",
        f"{author} was born in the town of {town}.",
        town,
    )


def _filler(rng: random.Random, k: int) -> str:
    return " ".join(_fact(rng).sentence for _ in range(k))


def _hex(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))


def _write_json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


Writer = Callable[[Path, random.Random, int], Path]
WRITERS: Registry[Writer] = Registry("benchmark example writer")


@WRITERS.register("docmath")
def _docmath(root: Path, rng: random.Random, n: int) -> Path:
    """Hub layout: data/{subset}_testmini-00000-of-00001.parquet, a revenue table per question."""
    for index, subset in enumerate(docmath.SUBSETS):
        rows = []
        for j in range(index, max(n, len(docmath.SUBSETS)), len(docmath.SUBSETS)):
            company, years = _name(rng, 3), range(2019, 2023)
            revenue = {year: round(rng.uniform(10, 999), 1) for year in years}
            table = "| Year | Revenue (USD millions) |\n|---|---|\n" + "\n".join(
                f"| {year} | {value!r} |" for year, value in revenue.items()
            )
            year = rng.choice(list(years))
            rows.append(
                {
                    "question_id": f"{subset}-testmini-{j}",
                    "source": "synthetic",
                    "original_question_id": "",
                    "question": f"What was the revenue of {company} in {year}, in USD millions?",
                    "paragraphs": [
                        f"{company} annual report. {_filler(rng, 3)}",
                        table,
                        f"Figures are audited. {_filler(rng, 2)}",
                    ],
                    "table_evidence": [1],
                    "paragraph_evidence": [0],
                    "python_solution": f"def solution():\n    revenue = {revenue[year]!r}\n"
                    "    return revenue",
                    "ground_truth": revenue[year],
                }
            )
        _write_parquet(root / "data" / f"{subset}_testmini-00000-of-00001.parquet", rows)
    return root


@WRITERS.register("longbench_v2")
def _longbench_v2(root: Path, rng: random.Random, n: int) -> Path:
    """data.json: four choices, the right one stated in the context."""
    records = []
    for j in range(n):
        fact = _fact(rng)
        wrong: set[str] = set()
        while len(wrong) < 3:
            other = _fact(rng).answer
            if other != fact.answer and other.isdigit() == fact.answer.isdigit():
                wrong.add(other)
        choices = [fact.answer, *sorted(wrong)]
        rng.shuffle(choices)
        records.append(
            {
                "_id": _hex(rng, 24),
                "domain": "Single-Document QA",
                "sub_domain": "Synthetic",
                "difficulty": ("easy", "hard")[j % 2],
                "length": ("short", "medium", "long")[j % 3],
                "question": fact.question,
                **{f"choice_{letter}": text for letter, text in zip("ABCD", choices, strict=True)},
                "answer": "ABCD"[choices.index(fact.answer)],
                "context": f"{_filler(rng, 4)} {fact.sentence} {_filler(rng, 4)}",
            }
        )
    _write_json(root / "data.json", records)
    return root


@WRITERS.register("frames")
def _frames(root: Path, rng: random.Random, n: int) -> Path:
    """test.tsv as published, plus wiki_pages.jsonl holding the linked pages."""
    header = [
        "",
        "Prompt",
        "Answer",
        *(f"wikipedia_link_{i}" for i in range(1, 11)),
        "wikipedia_link_11+",
        "reasoning_types",
        "wiki_links",
    ]
    table, pages = [], []
    for j in range(n):
        book, author, first, second, town = _two_hop(rng)
        links = [
            f"https://en.wikipedia.org/wiki/{title.replace(' ', '_')}" for title in (book, author)
        ]
        pages += [
            {"url": links[0], "title": book, "text": f"{_filler(rng, 2)} {first}"},
            {"url": links[1], "title": author, "text": f"{second} {_filler(rng, 2)}"},
        ]
        prompt = f"In which town was the author of the novel {book} born?"
        table.append([str(j), prompt, town, *links, *[""] * 9, "Multiple constraints", str(links)])
    root.mkdir(parents=True, exist_ok=True)
    with (root / "test.tsv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(header)
        writer.writerows(table)
    _write_jsonl(root / "wiki_pages.jsonl", pages)
    return root


def _mrcr_row(rng: random.Random, needles: int) -> dict:
    fmt, topic = rng.choice(_FORMATS), rng.choice(_TOPICS)
    asks = [(fmt, topic)] * needles + [
        (rng.choice(_FORMATS), rng.choice([t for t in _TOPICS if t != topic])) for _ in range(4)
    ]
    rng.shuffle(asks)
    messages, needle_positions = [], []
    for ask_fmt, ask_topic in asks:
        messages.append({"role": "user", "content": f"write a {ask_fmt} about {ask_topic}"})
        words = " ".join(rng.choice(_WORDS) for _ in range(12))
        if (ask_fmt, ask_topic) == (fmt, topic):
            needle_positions.append(len(messages))
        messages.append({"role": "assistant", "content": f"A {ask_fmt} on {ask_topic}: {words}."})
    which = rng.randrange(needles)
    prefix = "".join(rng.choice("abcdefghijkLMNOPQ0123456789") for _ in range(10))
    ordinal = ("1st", "2nd", "3rd", "4th")[which]
    messages.append(
        {
            "role": "user",
            "content": f"Prepend {prefix} to the {ordinal} (1 indexed) "
            f"{fmt} about {topic}. Do not include any other text in your response.",
        }
    )
    return {
        "prompt": json.dumps(messages, ensure_ascii=False),
        "answer": prefix + messages[needle_positions[which]]["content"],
        "random_string_to_prepend": prefix,
        "n_needles": needles,
        "desired_msg_index": needle_positions[which],
        "total_messages": len(messages),
        "n_chars": sum(len(m["content"]) for m in messages),
        "date_added": "04-12-2025",
    }


@WRITERS.register("mrcr")
def _mrcr(root: Path, rng: random.Random, n: int) -> Path:
    """{2,4}needle/{n}needle_0.parquet: chats where the asked-for writing appears verbatim."""
    for needles, count in ((2, (n + 1) // 2), (4, n // 2)):
        if count:
            rows = [_mrcr_row(rng, needles) for _ in range(count)]
            _write_parquet(root / f"{needles}needle" / f"{needles}needle_0.parquet", rows)
    return root


@WRITERS.register("corpusqa")
def _corpusqa(root: Path, rng: random.Random, n: int) -> Path:
    """128k_4domains.jsonl: company reports; numeric, list and empty-list golds."""
    rows = []
    for j in range(n):
        domain = corpusqa.DOMAINS[j % len(corpusqa.DOMAINS)]
        revenue = {_name(rng, 3): round(rng.uniform(5, 500), 1) for _ in range(3)}
        docs = [
            f"Annual report of {name}. Revenue for the year: {value!r} million. {_filler(rng, 2)}"
            for name, value in revenue.items()
        ]
        target = rng.choice(list(revenue))
        questions: list[tuple[str, object]] = [
            (f"What revenue, in millions, did {target} report?", revenue[target]),
            (
                "Which companies reported revenue above 100 million?",
                sorted(name for name, value in revenue.items() if value > 100),
            ),
            ("Which companies reported revenue above 1000 million?", []),
        ]
        question, answer = questions[j % len(questions)]
        user = (
            "Read the documents and answer the question.\n\n"
            + "\n".join(f"# Document {k}:\n{doc}" for k, doc in enumerate(docs, start=1))
            + f"\n\n# Question:\n{question}\n\nOutput requirements:\n- When reports disagree, "
            "trust the latest one.\n- Finish with 'The answer is: <answer>'."
        )
        rows.append(
            {
                "id": f"{domain}_{j}",
                "prompt": [
                    {"role": "system", "content": "You analyse document collections."},
                    {"role": "user", "content": user},
                ],
                "question": question,
                "answer": answer,
                "set": "128k",
                "domain": domain,
                "doc_files": [f"{name}.pdf" for name in revenue],
                "type": "",
            }
        )
    _write_jsonl(root / corpusqa.file_name("128K"), rows)
    return root


@WRITERS.register("longbench_v1_qa")
def _longbench_v1(root: Path, rng: random.Random, n: int) -> Path:
    """data/{dataset}.jsonl as extracted from data.zip: passages for multi-hop, a story otherwise."""
    names = longbench_v1.DATASETS
    for index, dataset in enumerate(names):
        rows = []
        for _ in range(index, max(n, len(names)), len(names)):
            if longbench_v1.TASK_TYPES[dataset] == "multihop":
                book, author, first, second, town = _two_hop(rng)
                passages = [(book, first), (_name(rng, 3), _filler(rng, 3)), (author, second)]
                context = "\n".join(
                    f"Passage {k}:\n{title}\n{text} {_filler(rng, 2)}"
                    for k, (title, text) in enumerate(passages, start=1)
                )
                question, answers = f"Where was the author of the novel {book} born?", [town]
            else:
                fact = _fact(rng)
                context = f"{_filler(rng, 5)} {fact.sentence} {_filler(rng, 5)}"
                question, answers = fact.question, [fact.answer]
            rows.append(
                {
                    "input": question,
                    "context": context,
                    "answers": answers,
                    "length": len(" ".join([question, context, *answers]).split()),
                    "dataset": dataset,
                    "language": "en",
                    "all_classes": None,
                    "_id": _hex(rng, 48),
                }
            )
        _write_jsonl(root / "data" / f"{dataset}.jsonl", rows)
    return root


def write_examples(out_dir: Path, seed: int = 0, n: int = 6) -> dict[str, Path]:
    """Write about `n` questions per benchmark under `out_dir`; benchmark name -> loader path.

    Benchmarks split into parts (DocMath subsets, LongBench datasets) get at least one question
    per part, so a default "all" load finds every file it expects.
    """
    if n < 1:
        raise ConfigError(f"write_examples: n must be at least 1, got {n}")
    return {
        name: WRITERS.get(name)(out_dir / name, random.Random(f"{seed}:{name}"), n)
        for name in WRITERS.names()
    }
