"""Generator B end to end: every answer re-derived by SQL on a fresh table and in plain Python.

Two corpora: a hand-built one whose reports vary the table format (markdown, HTML with a header
block, year rows, thousands separators, accounting negatives, a report in USD thousand, a
restated figure, a table too small to count, a prose-only report), and the fictional world of
`qwenlong.synth.world`. In both the ground truth is known without the generator: the dict the
hand-built reports were printed from, and `World.financials`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal

import pytest

from qwenlong.core.errors import ConfigError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation, Document, TaskSample
from qwenlong.evals.task_metrics import scorer_for
from qwenlong.synth.interfaces import Corpus, GenerationContext
from qwenlong.synth.numerical import CorpusNumericalGenerator, NumericalConfig, build_corpus_table
from qwenlong.synth.numerical.factdb import run_query
from qwenlong.synth.numerical.generator import sample_id
from qwenlong.synth.numerical.questions import format_number
from qwenlong.synth.world import WorldConfig, build_world

Truth = dict[tuple[str, str, int], Decimal]

COMPANIES = [
    "Acme Corp",
    "Borealis Ltd",
    "Cobalt Mining",
    "Delta Foods",
    "Evergreen Energy",
    "Fjord Shipping",
]
YEARS = list(range(2018, 2024))
SPANS = [YEARS[:3], YEARS[2:]]  # two reports per company, both printing 2020
RESTATED = ("revenue", "Delta Foods", 2020)


def _truth() -> Truth:
    rng = random.Random(7)
    truth: Truth = {}
    for company in COMPANIES:
        revenue = Decimal(rng.randint(2000, 9000)) / 10
        staff = rng.randint(200, 5000)
        for year in YEARS:
            revenue = (revenue * Decimal(rng.randint(85, 125)) / 100).quantize(Decimal("0.1"))
            staff = max(50, staff + rng.randint(-300, 400))
            truth[("revenue", company, year)] = revenue
            truth[("net income", company, year)] = Decimal(rng.randint(-300, 900)) / 10
            truth[("employees", company, year)] = Decimal(staff)
    return truth


def _money(value: Decimal, scale: int = 1) -> str:
    scaled = value * scale
    text = f"{abs(scaled):,.{1 if scale == 1 else 0}f}"
    return f"({text})" if scaled < 0 else text


def _markdown_report(company: str, years: list[int], truth: Truth, restate: bool) -> str:
    def row(label: str, metric: str) -> str:
        cells = [_money(truth[(metric, company, y)]) for y in years]
        if restate and metric == "revenue":
            cells[0] = _money(truth[(metric, company, years[0])] + 1)
        return f"| {label} | " + " | ".join(cells) + " |"

    head = "| Metric | " + " | ".join(map(str, years)) + " |\n|---|" + "---:|" * len(years)
    staff = " | ".join(f"{truth[('employees', company, y)]:,}" for y in years)
    return (
        f"# {company}: Annual Report {years[0]}-{years[-1]}\n\nOur year in review.\n\n"
        f"## Key figures\n\nTable 1: Results (USD million)\n\n{head}\n"
        f"{row('Revenues', 'revenue')}\n{row('Net income', 'net income')}\n\n"
        f"Table 2: Workforce\n\n| Metric (persons) | {' | '.join(map(str, years))} |\n"
        f"|---|{'---|' * len(years)}\n| Headcount | {staff} |\n"
    )


def _html_report(company: str, years: list[int], truth: Truth, scale: int) -> str:
    unit = "USD million" if scale == 1 else "USD thousand"
    cells = "".join(f"<th>FY{y}</th>" for y in years)
    body = ""
    for label, metric in (("Net sales", "revenue"), ("Net profit", "net income")):
        tds = "".join(f"<td>{_money(truth[(metric, company, y)], scale)}</td>" for y in years)
        body += f"<tr><th>{label}</th>{tds}</tr>"
    staff = "".join(f"<td>{truth[('employees', company, y)]}</td>" for y in years)
    return (
        f"<h1>{company} annual report</h1><p>Results were mixed.</p>"
        f"<table><caption>Income statement ({unit})</caption><thead>"
        f"<tr><th>Item</th>{cells}</tr></thead><tbody>{body}</tbody></table>"
        f"<h2>People</h2><table><tr><th>Item</th>{cells}</tr>"
        f"<tr><td>Employees (persons)</td>{staff}</tr></table>"
    )


def _year_rows_report(company: str, years: list[int], truth: Truth) -> str:
    lines = [
        f"# {company} report {years[-1]}",
        "",
        "| Year | Revenue (USD m) | Net income (USD m) | Employees |",
        "|---|---|---|---|",
    ]
    for y in years:
        r, n, e = (truth[(m, company, y)] for m in ("revenue", "net income", "employees"))
        lines.append(f"| {y} | {_money(r)} | {_money(n)} | {e} |")
    return "\n".join(lines)


def synthetic_corpus() -> tuple[list[Document], Truth, dict[str, tuple[str, list[int]]]]:
    """Reports printed from the truth, plus documents generator B must ignore."""
    truth = _truth()
    docs: list[Document] = []
    plan: dict[str, tuple[str, list[int]]] = {}
    for i, company in enumerate(COMPANIES):
        for part, years in enumerate(SPANS):
            if i % 3 == 0:
                text = _markdown_report(company, years, truth, (company, part) == (RESTATED[1], 1))
            elif i % 3 == 1:
                text = _html_report(company, years, truth, scale=1000 if part else 1)
            else:
                text = _year_rows_report(company, years, truth)
            doc_id = f"{company.split()[0].lower()}-{years[-1]}"
            docs.append(Document(id=doc_id, text=text, title="", domain="professional"))
            plan[doc_id] = (company, years)
    docs.append(Document(id="ghost", text="| Metric | 2021 |\n|---|---|\n| Revenue | 5 |\n"))
    docs.append(Document(id="essay", text="# Essay\n\nNo figures worth a table, only 3 words."))
    docs.append(
        Document(
            id="hollow",
            title="Hollow Partners annual review",
            text="In 2022, Hollow Partners reported revenue of USD 55.5 million.",
        )
    )
    return docs, truth, plan


def world_corpus() -> tuple[list[Document], Truth, dict[str, tuple[str, list[int]]]]:
    world = build_world(WorldConfig(seed=3, years_per_report=3))
    names = {
        "operating_income": "operating income",
        "net_income": "net income",
        "rd_spend": "r&d spending",
        "new_hires": "new hires",
    }
    truth = {
        (names.get(r.metric, r.metric), world.entity(r.company).name, r.year): Decimal(
            repr(r.value)
        )
        for r in world.financials
    }
    plan = {}
    for doc in world.documents:
        if doc.meta.get("doc_kind") == "annual_report":
            first, _, last = doc.meta["years"].partition("-")
            plan[doc.id] = (doc.meta["subject"], list(range(int(first), int(last or first) + 1)))
    return world.documents, truth, plan


CORPORA: dict[str, Callable[[], tuple[list[Document], Truth, dict]]] = {
    "synthetic": synthetic_corpus,
    "world": world_corpus,
}


def _run(docs: list[Document], seed: int = 0, **overrides) -> tuple[list[TaskSample], object]:
    config = NumericalConfig(num_samples=overrides.pop("num_samples", 120), **overrides)
    generator = CorpusNumericalGenerator(config)
    ctx = GenerationContext(random.Random(seed), log=lambda line: None)
    return list(generator.generate(Corpus(docs, lambda t: len(t.split())), ctx)), generator


@pytest.fixture(scope="module", params=sorted(CORPORA))
def run(request):
    docs, truth, plan = CORPORA[request.param]()
    samples, generator = _run(docs)
    return docs, truth, plan, samples, generator


# --- an independent evaluator: the template semantics in plain Python over the truth --------


def _round(value: Decimal, decimals: int = 2) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def recompute(template: str, s: dict, truth: Truth) -> str:
    metric, group = s["metric"], s["entities"]
    years = s["years"]
    first, last = years[0], years[-1]

    def v(entity: str, year: int, name: str = metric) -> Decimal:
        return truth[(name, entity, year)]

    def ranked(key: Callable[[str], Decimal], direction: str, k: int = 1) -> str:
        ordered = sorted(group, key=key, reverse=direction == "highest")
        return ordered[k - 1]

    def total(year: int) -> Decimal:
        return sum(v(e, year) for e in group)

    def listed(names: list[str]) -> str:
        return ", ".join(sorted(names)) or "none"

    aggregate = {"sum": sum, "avg": lambda xs: sum(xs) / len(xs), "max": max, "min": min}
    t = Decimal(s["threshold"]) if s["threshold"] else Decimal(0)
    later = sorted({y for (m, _, y) in truth if m == metric and y > first})
    passes = (lambda x: x > t) if s["direction"] == "above" else (lambda x: x < t)
    number = {
        "year_difference": lambda: v(group[0], last) - v(group[0], first),
        "entity_years": lambda: aggregate[s["aggregate"]](
            [v(group[0], y) for y in range(first, last + 1)]
        ),
        "group_aggregate": lambda: aggregate[s["aggregate"]]([v(e, first) for e in group]),
        "entity_ratio": lambda: v(group[0], first) / v(group[1], first),
        "metric_share": lambda: 100 * v(group[0], first) / v(group[0], first, s["other_metric"]),
        "group_change": lambda: 100 * (total(last) - total(first)) / total(first),
    }
    if template in number:
        return str(_round(number[template]()))
    entity = {
        "top_entity": lambda: ranked(lambda e: v(e, first), s["direction"]),
        "kth_ranking": lambda: ranked(lambda e: v(e, first), s["direction"], s["k"]),
        "growth_ranking": lambda: ranked(
            lambda e: (v(e, last) - v(e, first)) / v(e, first), s["direction"]
        ),
        "filter_any_after": lambda: listed(
            [e for e in group if any(passes(v(e, y)) for y in later)]
        ),
        "filter_every_between": lambda: listed(
            [e for e in group if all(passes(v(e, y)) for y in range(first, last + 1))]
        ),
    }
    return entity[template]()


def test_every_answer_matches_the_python_recomputation(run) -> None:
    _, truth, _, samples, _ = run
    assert len(samples) >= 60
    for sample in samples:
        expected = recompute(sample.meta["template"], json.loads(sample.meta["query"]), truth)
        if sample.answer_kind == "number":
            assert Decimal(sample.answers[0]) == Decimal(expected), sample.provenance.sql
        else:
            assert sample.answers == [expected], sample.provenance.sql


def test_every_stored_sql_reruns_on_a_freshly_built_table(run) -> None:
    docs, _, _, samples, _ = run
    config = NumericalConfig()
    ctx = GenerationContext(random.Random(99), log=lambda line: None)
    fresh = build_corpus_table(Corpus(docs, lambda t: len(t.split())), config, ctx)
    for sample in samples:
        rows = run_query(fresh.conn, sample.provenance.sql)
        if sample.answer_kind == "number":
            assert sample.answers == [format_number(rows[0][0], config.decimals)]
        elif sample.meta["template"].startswith("filter_"):
            assert sample.answers == [", ".join(sorted(r[0] for r in rows)) or "none"]
        else:
            assert sample.answers == [rows[0][0]]


def test_source_documents_are_the_reports_printing_the_rows_read(run) -> None:
    _, truth, plan, samples, _ = run
    for sample in samples:
        s = json.loads(sample.meta["query"])
        first, last = s["years"][0], s["years"][-1]
        needed = {
            "filter_any_after": {y for (_, _, y) in truth if y > first},
            "filter_every_between": set(range(first, last + 1)),
            "entity_years": set(range(first, last + 1)),
        }.get(sample.meta["template"], set(s["years"]))
        expected = {
            doc
            for doc, (company, years) in plan.items()
            if company in s["entities"] and needed & set(years)
        }
        assert set(sample.provenance.source_documents) == expected, sample.provenance.sql


def test_samples_follow_the_candidate_conventions(run) -> None:
    _, _, _, samples, generator = run
    for sample in samples:
        assert sample.task_type == "numerical" and sample.context == ""
        assert sample.provenance.generator == "corpus_numerical"
        assert sample.id == sample_id(sample.provenance.sql)
        level = sample.meta["level"]
        assert sample.difficulty == {"easy": 1.0, "medium": 2.0, "hard": 3.0}[level]
        is_number = sample.answer_kind == "number"
        assert is_number == (
            sample.meta["template"]
            in {
                "year_difference",
                "entity_years",
                "group_aggregate",
                "entity_ratio",
                "metric_share",
                "group_change",
            }
        )
        assert sample.question.endswith("?") and sample.instruction.startswith("Answer with")
        assert sample.meta["question_source"] == "template"
        assert sample.provenance.reasoning_chain[-1].startswith("SQL result: ")
    assert len({s.id for s in samples}) == len(samples)
    assert {s.meta["level"] for s in samples} == {"easy", "medium", "hard"}
    assert len({s.meta["template"] for s in samples}) == 11
    empties = [s for s in samples if s.meta["empty_result"] == "true"]
    assert empties and all(s.answers == ["none"] for s in empties)
    assert generator.report.empty_results == len(empties)
    assert generator.mode == "tables=rule; prose=skipped: no LLM; questions=template"


def test_rule_answers_score_full_marks_with_the_evals_scorers(run) -> None:
    samples = run[3]
    for sample in samples:
        scorer = scorer_for(sample)
        right = f"<think>...</think>Therefore, the answer is {sample.answers[0]}"
        assert scorer(sample, right).value == 1.0, sample.answers
        assert scorer(sample, "Therefore, the answer is 98765.4321 Zyx").value == 0.0


def test_generation_is_deterministic_for_a_seed() -> None:
    docs = synthetic_corpus()[0]
    first, _ = _run(docs, seed=5, num_samples=40)
    again, _ = _run(docs, seed=5, num_samples=40)
    other, _ = _run(docs, seed=6, num_samples=40)
    assert first == again
    assert {s.id for s in first} != {s.id for s in other}


def test_synthetic_table_matches_the_truth_it_was_printed_from() -> None:
    docs, truth, _ = synthetic_corpus()
    _, generator = _run(docs, num_samples=1)
    table = generator.table
    expected = {key: float(value) for key, value in truth.items() if key != RESTATED}
    assert table.catalog.values == expected
    assert table.catalog.conflicts == 1
    assert table.catalog.units == {
        "employees": "persons",
        "net income": "USD million",
        "revenue": "USD million",
    }
    stats = generator.report.extraction
    assert (stats.documents, stats.statistical_documents) == (15, 12)
    assert stats.layouts == {"metric_by_year": 16, "year_rows": 4}
    assert sum(table.alignment.rescaled.values()) == 2 * 2 * 4  # 2 companies x 2 metrics x 4 years
    assert not table.alignment.dropped


class ScriptedModel:
    """Prose figures for the Hollow Partners review; every paraphrase request gets `reword`."""

    name = "scripted"

    def __init__(self, reword: Callable[[str], str]) -> None:
        self.reword = reword
        self.calls: list[int] = []

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        self.calls.append(len(conversations))
        replies = []
        for conversation in conversations:
            content = conversation[-1]["content"]
            if "Question: " in content:
                replies.append(self.reword(content.split("Question: ", 1)[1].split("\n")[0]))
            elif "Hollow Partners" in content:
                row = {
                    "entity": "Hollow Partners",
                    "year": 2022,
                    "metric": "revenue",
                    "value": 55.5,
                    "unit": "USD million",
                }
                replies.append(json.dumps([row]))
            else:
                replies.append("[]")
        return [[Completion(text)] for text in replies]

    def close(self) -> None:
        pass


def test_llm_paths_prose_rows_and_checked_paraphrases() -> None:
    docs, _, _ = synthetic_corpus()
    model = ScriptedModel(lambda q: "Please answer: " + q if "2021" in q else "What is it?")
    generator = CorpusNumericalGenerator(NumericalConfig(num_samples=40))
    ctx = GenerationContext(random.Random(1), llm=model, log=lambda line: None)
    samples = list(generator.generate(Corpus(docs, lambda t: len(t.split())), ctx))
    assert generator.mode == "tables=rule; prose=llm; questions=template + llm paraphrase"
    assert generator.table.catalog.values[("revenue", "Hollow Partners", 2022)] == 55.5
    assert generator.report.extraction.prose.documents == 3  # ghost, essay, hollow
    reworded = [s for s in samples if s.meta["question_source"] == "llm"]
    kept = [s for s in samples if s.meta["question_source"] == "template"]
    assert reworded and kept
    assert all(s.question.startswith("Please answer: ") and "2021" in s.question for s in reworded)
    stats = generator.report.paraphrase
    assert stats.accepted == len(reworded)
    assert stats.rejected == {"dropped a protected term": len(kept)}
    assert model.calls[-1] == len(samples)  # one batched paraphrase call


def test_corpus_without_tables_gives_no_samples() -> None:
    docs = [Document(id="a", text="Just prose about 2021 and 5 things.")]
    samples, generator = _run(docs)
    assert samples == [] and generator.report.facts == 0


def test_template_config_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="unknown numerical SQL template 'top_entty'"):
        CorpusNumericalGenerator(NumericalConfig(templates=("top_entty",)))
    with pytest.raises(ConfigError, match="no template of a level with positive weight"):
        CorpusNumericalGenerator(
            NumericalConfig(templates=("top_entity",), level_weights={"easy": 0, "hard": 1})
        )
