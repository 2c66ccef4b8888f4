"""Company annual reports (domain "professional"): narrative plus statistical tables.

A report covers a range of fiscal years. Its narrative restates some company facts and some
figures; its tables hold every metric for every year of the range, metrics as rows and years as
columns, the unit in the header's first cell ("Metric (USD million)"). Most reports use markdown
tables with digit grouping; `html_table_fraction` of them use HTML `<table>`s with plain numbers.
"""

from __future__ import annotations

import random

from qwenlong.core.records import Document
from qwenlong.core.seeding import derive_rng
from qwenlong.synth.interfaces import Triple
from qwenlong.synth.world.articles import short_form, write_fact_sentence
from qwenlong.synth.world.model import METRICS, DocTruth, Entity, FinancialRow, World
from qwenlong.synth.world.phrases import METRIC_TEMPLATES
from qwenlong.synth.world.text import Sentences, format_value, group_digits, sentence_case

REPORT_FILLERS = (
    "The board proposes to keep the dividend unchanged.",
    "Supply costs remained a concern throughout the period.",
    "We continued to invest in training for our staff.",
    "Our order book entering the new year is healthy.",
    "Currency movements had a modest effect on results.",
    "The audit committee met six times during the year.",
    "Management expects demand to stay firm in the coming year.",
    "Several long-standing customers renewed their contracts.",
    "We reduced the energy use of our main sites.",
    "Two smaller business lines were merged to simplify reporting.",
    "Investment in digital tools accelerated in the second half.",
    "Working capital discipline improved cash conversion.",
)
"""Fact-free report sentences (our wording)."""

TABLES = (
    ("Financial results", ("revenue", "operating_income", "net_income", "rd_spend")),
    ("Workforce", ("employees", "new_hires")),
)
"""Each report's tables: caption and metric rows; a table holds metrics of one unit."""

COMPANY_FACTS = ("headquarters", "founded", "founder", "industry", "parent", "ceo")
"""Company facts a report's narrative may restate."""


def report_id(world: World, company: Entity, years: list[int]) -> str:
    return f"world-{world.config.seed}-report-{company.slug}-{years[-1]}"


def year_ranges(world: World) -> list[list[int]]:
    """Fiscal years per report: all years at once, or chunks of `years_per_report`."""
    years = world.config.report_years
    size = world.config.years_per_report or len(years)
    return [years[i : i + size] for i in range(0, len(years), size)]


def _metric_word(metric: str) -> str:
    label = METRICS[metric].label
    return label if label[1:2] in ("&",) or label[1:2].isupper() else label[0].lower() + label[1:]


def _cell(row: FinancialRow, grouped: bool) -> str:
    text = format_value(row.value, METRICS[row.metric].decimals)
    return group_digits(text) if grouped else text


def _table_truth(company: Entity, row: FinancialRow, doc_id: str, evidence: str) -> Triple:
    text = format_value(row.value, METRICS[row.metric].decimals)
    return Triple(
        company.name, row.metric, f"{text} {row.unit}", doc_id, date=str(row.year),
        evidence=evidence, head_kind="organisation", tail_kind="value",
    )  # fmt: skip


def render_table(
    company: Entity, rows: dict[tuple[str, int], FinancialRow], metrics: tuple[str, ...],
    years: list[int], doc_id: str, html: bool,
) -> tuple[str, list[Triple]]:  # fmt: skip
    """One metrics-by-years table and the triples its cells state."""
    unit = METRICS[metrics[0]].unit
    header = [f"Metric ({unit})", *(str(y) for y in years)]
    triples: list[Triple] = []
    if html:
        lines = ["<table>", "<tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>"]
    else:
        lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * len(years) + "|"]
    for metric in metrics:
        cells = [METRICS[metric].label, *(_cell(rows[metric, y], not html) for y in years)]
        if html:
            line = "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
        else:
            line = "| " + " | ".join(cells) + " |"
        lines.append(line)
        triples.extend(_table_truth(company, rows[metric, y], doc_id, line) for y in years)
    if html:
        lines.append("</table>")
    return "\n".join(lines), triples


def metric_sentence(
    company: Entity, row: FinancialRow, doc_id: str, rng: random.Random, spoken: bool = False
) -> tuple[str, Triple]:
    """A sentence stating one financial figure, and its triple ("<value> <unit>", dated).

    `spoken` keeps to templates that start with the company's name (see dialogues).
    """
    family = "money" if row.unit == "USD million" else "persons"
    templates = METRIC_TEMPLATES[family]
    if spoken:
        templates = tuple(t for t in templates if t.startswith("{s}"))
    template = rng.choice(templates)
    subject = rng.choice((company.name, short_form(company)))
    text = format_value(row.value, METRICS[row.metric].decimals)
    sentence = sentence_case(
        template.format(
            s=subject, sp=f"{subject}'s", metric=_metric_word(row.metric),
            value=group_digits(text), year=row.year,
        )
    )  # fmt: skip
    truth = Triple(
        subject, row.metric, f"{text} {row.unit}", doc_id, date=str(row.year),
        evidence=sentence, head_kind="organisation", tail_kind="value",
    )  # fmt: skip
    return sentence, truth


def _change_sentence(metric: str, now: FinancialRow, before: FinancialRow) -> str | None:
    """A derived remark ("Revenue rose 8.3% compared with 2022."); states no triple."""
    if before.value <= 0:
        return None
    change = (now.value - before.value) / before.value * 100
    verb = "rose" if change >= 0 else "fell"
    label = sentence_case(_metric_word(metric))
    return f"{label} {verb} {abs(change):.1f}% compared with {before.year}."


def write_report(world: World, company: Entity, years: list[int]) -> tuple[Document, DocTruth]:
    """The annual report of `company` for the fiscal years `years`, with its ground truth."""
    doc_id = report_id(world, company, years)
    rng = derive_rng(world.config.seed, "report", company.id, years[-1])
    rows = {(r.metric, r.year): r for r in world.financials_of(company.id)}
    span = f"{years[0]}-{years[-1]}" if len(years) > 1 else str(years[0])
    letter = Sentences()
    facts = [
        f for f in world.facts_about(company.id)
        if f.relation in COMPANY_FACTS and (f.date is None or int(f.date) <= years[-1])
    ]  # fmt: skip
    rng.shuffle(facts)
    for i, fact in enumerate(facts[: rng.randint(min(2, len(facts)), len(facts))]):
        letter.add(*write_fact_sentence(world, company, [fact], doc_id, rng, first=i == 0))
    for metric in rng.sample(list(METRICS), 3):
        sentence, triple = metric_sentence(company, rows[metric, years[-1]], doc_id, rng)
        letter.add(sentence, [triple])
        if len(years) > 1 and (
            change := _change_sentence(metric, rows[metric, years[-1]], rows[metric, years[-2]])
        ):
            letter.add(change)
    history = Sentences()
    for year in years[:-1]:
        metric = rng.choice(list(METRICS))
        sentence, triple = metric_sentence(company, rows[metric, year], doc_id, rng)
        history.add(sentence, [triple])
        history.add(rng.choice(REPORT_FILLERS))
    html = rng.random() < world.config.html_table_fraction
    parts = [
        f"# {company.name}: Annual Report {span}",
        "## Letter to shareholders",
        " ".join(letter.lines),
    ]
    if history.lines:
        parts += ["## Review of earlier years", " ".join(history.lines)]
    parts.append("## Key figures")
    table_truth: list[Triple] = []
    for n, (caption, metrics) in enumerate(TABLES, start=1):
        table, cells = render_table(company, rows, metrics, years, doc_id, html)
        parts += [f"Table {n}: {caption} of {company.name}", table]
        table_truth.extend(cells)
    parts += ["## Outlook", " ".join(rng.sample(REPORT_FILLERS, 3))]
    doc = Document(
        id=doc_id,
        text="\n\n".join(parts),
        domain="professional",
        title=f"{company.name} Annual Report {span}",
        source=f"fictional-world:{world.config.seed}",
        meta={
            "subject": company.name,
            "entity": company.id,
            "doc_kind": "annual_report",
            "years": span,
        },
    )
    return doc, DocTruth(prose=letter.triples + history.triples, table=table_truth)
