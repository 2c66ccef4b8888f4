"""What each source type gave: documents, triples, questions, kept, and why others gave none."""

from __future__ import annotations

from pathlib import Path

from qwenlong.core.records import Document, Provenance, TaskSample
from qwenlong.synth.corpus.ingest import SkippedDoc
from qwenlong.synth.report import write_report
from qwenlong.synth.source_yield import SourceYield, source_type, yield_by_source


def doc(doc_id: str, kind: str | None) -> Document:
    if kind is None:
        return Document(doc_id, "text", source="fictional-world:3")
    return Document(doc_id, "text", source=f"{doc_id}.{kind}", meta={"source_type": kind})


def question(qid: str, *docs: str) -> TaskSample:
    return TaskSample(
        qid, "multihop", "q?", ["a"], provenance=Provenance(source_documents=list(docs))
    )


DOCS = [doc("w1", None), doc("w2", None), doc("w3", None), doc("p1", "pdf"), doc("t1", "txt")]
SKIPPED = [
    SkippedDoc("scan.pdf", "pdf", "no text layer"),
    SkippedDoc("blank.txt", "txt", "no text"),
]
TRIPLES = {"w1": 4, "w2": 0, "w3": 2, "p1": 3}  # t1 was never extracted
CANDIDATES = [
    question("q1", "w1", "p1", "w1"),  # one question, two types; a repeated id counts once
    question("q2", "w1"),
    question("q3", "p1"),
    question("q4", "elsewhere"),  # not in the corpus: counts for no type
    question("q5"),  # rests on no document (dialogue)
]
KEPT = [CANDIDATES[0], CANDIDATES[1]]


def test_counts_per_type_and_reasons_for_documents_that_gave_none() -> None:
    table = yield_by_source(DOCS, SKIPPED, TRIPLES, CANDIDATES, KEPT)
    assert list(table) == ["fictional", "pdf", "txt"]
    fictional, pdf, txt = table.values()
    assert (fictional.documents, fictional.triples, fictional.questions, fictional.kept) == (
        3, 6, 2, 2,
    )  # fmt: skip
    # w2: no triples and no question; w3: triples, but no generator used it
    assert fictional.none == {"no triples extracted": 1, "no question drew on it": 1}
    assert (pdf.documents, pdf.skipped, pdf.triples, pdf.questions, pdf.kept) == (1, 1, 3, 2, 1)
    assert pdf.none == {"no text layer": 1}  # p1 gave a kept question
    assert (txt.documents, txt.skipped, txt.triples, txt.questions) == (1, 1, None, 0)
    assert txt.none == {
        "no question drew on it": 1,
        "no text": 1,
    }  # never extracted: not "no triples"


def test_all_questions_dropped_is_its_own_reason() -> None:
    table = yield_by_source(DOCS[3:4], [], {}, CANDIDATES, [])
    assert table["pdf"].none == {"all its questions dropped": 1}


def test_source_type_falls_back_to_fictional_then_other() -> None:
    assert [source_type(d) for d in DOCS[:1] + DOCS[3:]] == ["fictional", "pdf", "txt"]
    assert source_type(Document("x", "t", source="somewhere")) == "other"


def test_report_section_lists_each_type(tmp_path: Path) -> None:
    sources = {"html": SourceYield(documents=2), "pdf": SourceYield(1, 1, 3, 2, 1)}
    sources["pdf"].none.update({"no text layer": 1, "all its questions dropped": 2})
    text = write_report(tmp_path, [], [], {}, sources=sources).read_text()
    assert "| source type | documents | skipped | triples | questions | kept | gave none |" in text
    assert "| html | 2 | 0 | - | 0 | 0 | - |" in text
    assert "| pdf | 1 | 1 | 3 | 2 | 1 | 2 all its questions dropped; 1 no text layer |" in text
