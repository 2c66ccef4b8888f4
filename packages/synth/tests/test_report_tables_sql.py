"""Generator B over a corpus of the report-table fixtures, answers re-derived from the gold.

The fixture tables (fixtures/report_tables/, see test_report_tables) are read as a corpus:
HTML reader, markdown grids, the long table in DuckDB, SQL templates. The truth is the gold
facts of every table read as metrics by periods, put in the long table's unit per metric;
every sample resting only on such documents must have the answer the independent evaluator of
test_numerical_generator computes from that truth, and every long-table row they give must
equal the gold. (A table read by another layout, such as segment rows under a "Segment"
header, names other entities; samples reading it are counted, not checked.)
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
from decimal import Decimal
from pathlib import Path

import pytest

from qwenlong.core.records import Document
from qwenlong.synth.corpus import html_text
from qwenlong.synth.extract.fact_score import gold_unit
from qwenlong.synth.extract.units import parse_unit
from qwenlong.synth.interfaces import Corpus, GenerationContext
from qwenlong.synth.numerical import CorpusNumericalGenerator, NumericalConfig
from qwenlong.synth.numerical.align import document_entity, read_table
from qwenlong.synth.numerical.factdb import run_query
from qwenlong.synth.numerical.tables import extract_tables
from qwenlong.synth.numerical.units import canonical_metric, entity_key

FIXTURES = Path(__file__).parent / "fixtures" / "report_tables"


def _load_recompute():
    """The independent evaluator of test_numerical_generator, loaded from its file: tests run
    with --import-mode=importlib, so test modules are not importable by name."""
    path = Path(__file__).with_name("test_numerical_generator.py")
    spec = importlib.util.spec_from_file_location("_numerical_generator_tests", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.recompute


recompute = _load_recompute()
PERIOD = re.compile(r"\d{4}(?:-\d{2}-\d{2})?")

Key = tuple[str, str, int]


class _Absent:
    """A year an entity does not report: compares false both ways, as SQL skips the row."""

    def __gt__(self, other: object) -> bool:
        return False

    def __lt__(self, other: object) -> bool:
        return False


class Truth(dict):
    def __missing__(self, key: Key) -> _Absent:
        return _Absent()


def _corpus() -> list[Document]:
    docs = []
    for page in sorted(FIXTURES.glob("*.html")):
        text, title = html_text(page.read_text(encoding="utf-8"))
        docs.append(Document(id=page.stem, text=text, title=title, domain="professional"))
    return docs


def _metric_docs(docs: list[Document]) -> set[str]:
    """Documents whose every read table is metrics by periods of the document's entity."""
    keep = set()
    for doc in docs:
        layouts = {read_table(t, document_entity(doc))[0] for t in extract_tables(doc)}
        if layouts <= {"metric_by_year", None}:
            keep.add(doc.id)
    return keep


def _truth(docs: list[Document], keep: set[str], units: dict[str, str], names: dict[str, str]):
    """(metric, entity, year) -> gold value in the long table's unit; keys whose documents
    disagree are left out, as `metric_values` leaves them out."""
    seen: dict[Key, set[Decimal]] = {}
    for doc in docs:
        if doc.id not in keep:
            continue
        entity = names.get(entity_key(document_entity(doc)))
        for line in (FIXTURES / f"{doc.id}.facts.jsonl").read_text().splitlines():
            row, column, value, unit, scale = json.loads(line)
            metric = canonical_metric(row)
            target = parse_unit(units.get(metric, "")) or parse_unit("number")
            spec = gold_unit(unit, scale)
            if not PERIOD.fullmatch(column) or entity is None or metric not in units:
                continue
            if target is None or spec is None or spec.dimension != target.dimension:
                continue
            exact = Decimal(value) * spec.scale / target.scale
            seen.setdefault((metric, entity, int(column[:4])), set()).add(exact)
    return Truth({key: values.pop() for key, values in seen.items() if len(values) == 1})


@pytest.fixture(scope="module")
def run():
    docs = _corpus()
    generator = CorpusNumericalGenerator(NumericalConfig(num_samples=60))
    ctx = GenerationContext(random.Random(0), log=lambda line: None)
    samples = list(generator.generate(Corpus(docs, lambda t: len(t.split())), ctx))
    table = generator.table
    assert table is not None
    keep = _metric_docs(docs)
    names = {entity_key(e): e for (_, e, _) in table.catalog.values}
    truth = _truth(docs, keep, table.alignment.units, names)
    return docs, keep, samples, table, truth


def test_long_table_rows_from_metric_tables_equal_the_gold(run) -> None:
    _, keep, _, table, truth = run
    rows = run_query(table.conn, "SELECT metric, entity, year, value, doc_id FROM facts")
    checked = [(m, e, y, v) for m, e, y, v, doc in rows if doc in keep]
    assert len(checked) > 300
    for metric, entity, year, value in checked:
        key = (metric, entity, year)
        assert key in truth, f"long-table row not in the gold: {key} = {value}"
        assert Decimal(repr(value)) == truth[key].normalize() or value == float(truth[key]), key


def test_every_answer_matches_the_recomputation_from_the_gold(run) -> None:
    _, keep, samples, _, truth = run
    checkable = [s for s in samples if set(s.provenance.source_documents) <= keep]
    print(f"{len(samples)} samples, {len(checkable)} resting on metric tables only")
    assert len(samples) >= 50 and len(checkable) >= 40
    for sample in checkable:
        expected = recompute(sample.meta["template"], json.loads(sample.meta["query"]), truth)
        if sample.answer_kind == "number":
            assert Decimal(sample.answers[0]) == Decimal(expected), sample.provenance.sql
        else:
            assert sample.answers == [expected], sample.provenance.sql
