"""LLM schema extraction from prose: JSON parsing, retries, failures, grounding checks."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from qwenlong.core.records import Conversation, Document
from qwenlong.core.testing import ScriptedChatModel as ScriptedModel
from qwenlong.synth.numerical.config import ProseSchemaConfig
from qwenlong.synth.numerical.prose_schema import (
    ProseSchemaExtractor,
    parse_rows,
    printed_numbers,
    split_chunks,
)
from qwenlong.synth.numerical.units import UnitSpec

ROW = {"entity": "Acme", "year": 2021, "metric": "revenue", "value": 4.2, "unit": "USD billion"}


@pytest.mark.parametrize(
    "reply",
    [
        json.dumps([ROW]),
        "Here you go:\n```json\n" + json.dumps([ROW]) + "\n```\nDone.",
        "<think>Let me list [them]</think>" + json.dumps([ROW]),
        json.dumps({"rows": [ROW]}),
        json.dumps(ROW),
        json.dumps([{**ROW, "value": "4.2", "source": "para 2"}]),
    ],
)
def test_parse_rows_accepts_common_reply_shapes(reply: str) -> None:
    (row,) = parse_rows(reply)
    assert (row.entity, row.year, row.metric, row.value, row.unit) == (
        "Acme",
        2021,
        "revenue",
        4.2,
        "USD billion",
    )


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("no figures here", "no JSON array found"),
        ('[{"entity": "Acme",}]', "invalid JSON"),
        (json.dumps([{**ROW, "year": "last year"}]), "row field 0.year"),
        (json.dumps([{**ROW, "value": "4,2 bn"}]), "row field 0.value"),
        (json.dumps([{k: v for k, v in ROW.items() if k != "metric"}]), "row field 0.metric"),
    ],
)
def test_parse_rows_errors_name_the_problem(reply: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rows(reply)


def test_printed_numbers_include_scaled_values() -> None:
    numbers = printed_numbers("Revenue rose to 4.2 billion in 2021; a loss of (1,234.5) and 7%.")
    assert numbers == {
        Decimal("4.2"),
        Decimal("4200000000"),
        Decimal("2021"),
        Decimal("1234.5"),
        Decimal("7"),
    }


def test_split_chunks_keeps_paragraphs_whole() -> None:
    text = "\n\n".join(["a" * 40, "b" * 40, "c" * 100, "d" * 10])
    chunks = split_chunks(text, 90)
    assert chunks == ["a" * 40 + "\n\n" + "b" * 40, "c" * 100, "d" * 10]
    assert split_chunks("", 90) == []


DOC = Document(
    id="p1",
    title="Acme Corp annual review",
    text=(
        "In 2021, Acme Corp's revenue rose to 4.2 billion dollars.\n\n"
        "The company employed 1,250 people at the end of 2022."
    ),
)


def test_extractor_keeps_grounded_rows_and_rejects_the_rest() -> None:
    rows = [
        ROW | {"entity": "Acme Corp", "unit": "USD billion"},
        {
            "entity": "Acme Corp",
            "year": 2022,
            "metric": "Headcount",
            "value": 1250,
            "unit": "people",
        },
        {"entity": "Borealis", "year": 2021, "metric": "revenue", "value": 4.2, "unit": ""},
        {"entity": "Acme Corp", "year": 2020, "metric": "revenue", "value": 4.2, "unit": ""},
        {"entity": "Acme Corp", "year": 2021, "metric": "revenue", "value": 4.3, "unit": ""},
        {"entity": "Acme Corp", "year": 2021, "metric": "(USD)", "value": 4.2, "unit": ""},
    ]
    model = ScriptedModel(lambda conversation: json.dumps(rows))
    extractor = ProseSchemaExtractor(model, ProseSchemaConfig(), seed=1, log=lambda line: None)
    (facts,) = extractor.extract([DOC])
    assert [(f.entity, f.year, f.metric, f.value, f.unit, f.where) for f in facts] == [
        ("Acme Corp", 2021, "revenue", Decimal("4.2"), UnitSpec("USD", Decimal(10**9)), "prose"),
        ("Acme Corp", 2022, "employees", Decimal("1250"), UnitSpec(label="persons"), "prose"),
    ]
    assert extractor.stats.rows == 2
    assert extractor.stats.rejected == {
        "entity not in text": 1,
        "year not in text": 1,
        "value not in text": 1,
        "empty metric": 1,
    }
    assert "Acme Corp's revenue rose" in model.calls[0][0][0]["content"]


def test_extractor_retries_with_the_error_then_counts_failures() -> None:
    def reply(conversation: Conversation) -> str:
        if "employed" in conversation[0]["content"]:  # the second chunk never gets valid JSON
            return "I cannot do that."
        return "oops [" if len(conversation) == 1 else json.dumps([ROW | {"entity": "Acme Corp"}])

    logged: list[str] = []
    model = ScriptedModel(reply)
    config = ProseSchemaConfig(chunk_chars=60, max_retries=2)
    extractor = ProseSchemaExtractor(model, config, log=logged.append)
    (facts,) = extractor.extract([DOC])
    assert [(f.year, f.value) for f in facts] == [(2021, Decimal("4.2"))]
    assert [len(call) for call in model.calls] == [2, 2, 1]  # batched; retries only the failures
    retry = model.calls[1][0]
    assert [m["role"] for m in retry] == ["user", "assistant", "user"]
    assert "invalid JSON" in retry[2]["content"]
    stats = extractor.stats
    assert (stats.chunks, stats.failed_chunks, stats.retries) == (2, 1, 3)
    assert logged == ["prose schema: document p1: no valid rows (no JSON array found)"]


def test_no_retries_means_one_call() -> None:
    model = ScriptedModel(lambda conversation: "nothing")
    extractor = ProseSchemaExtractor(model, ProseSchemaConfig(max_retries=0), log=lambda _: None)
    assert extractor.extract([DOC]) == [[]]
    assert len(model.calls) == 1 and extractor.stats.failed_chunks == 1
