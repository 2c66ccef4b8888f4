"""The LLM triple extractor with scripted chat models: valid, retried, failed, batched."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from qwenlong.core.errors import BackendError
from qwenlong.core.records import Conversation, Document
from qwenlong.core.testing import ScriptedChatModel as ScriptedModel
from qwenlong.synth.kg.config import LLMExtractConfig
from qwenlong.synth.kg.llm_extract import (
    InvalidReply,
    LLMTripleExtractor,
    parse_facts,
    split_document,
)

Script = Callable[[Conversation], str]


ADA = Document("doc-ada", "Ada Park was born in Lyon. She works for Acme Labs since 1991.")
ACME = Document("doc-acme", "Acme Labs is headquartered in Oslo.")

FACTS = {
    "doc-ada": [
        {"head": "Ada Park", "relation": "born in", "tail": "Lyon", "head_kind": "person",
         "tail_kind": "place"},
        {"head": "Ada Park", "relation": "employer", "tail": "Acme Labs", "date": "1991",
         "tail_kind": "organization"},
    ],
    "doc-acme": [{"head": "Acme Labs", "relation": "headquartered in", "tail": "Oslo"}],
}  # fmt: skip


def truthful(conversation: Conversation) -> str:
    """Replies with the facts of whichever document's text the prompt holds."""
    prompt = conversation[0]["content"]
    doc = "doc-ada" if "Ada Park was born" in prompt else "doc-acme"
    return json.dumps(FACTS[doc])


def test_valid_json_becomes_triples_with_evidence_and_kinds() -> None:
    model = ScriptedModel(truthful)
    extractor = LLMTripleExtractor(model)
    ada, acme = extractor.extract([ADA, ACME])
    assert [(t.head, t.relation, t.tail, t.date) for t in ada] == [
        ("Ada Park", "born in", "Lyon", None),
        ("Ada Park", "employer", "Acme Labs", "1991"),
    ]
    assert ada[0].evidence == "Ada Park was born in Lyon."
    assert ada[1].tail_kind == "organisation"  # spelling normalised
    assert ada[0].doc_id == "doc-ada" and acme[0].doc_id == "doc-acme"
    assert [(t.head, t.tail) for t in acme] == [("Acme Labs", "Oslo")]
    assert len(model.calls) == 1 and len(model.calls[0]) == 2  # one batched call
    s = extractor.stats
    assert (s.calls, s.requests, s.retries, s.failures, s.facts) == (1, 2, 0, 0, 3)


def test_invalid_then_valid_is_retried_with_the_error_fed_back() -> None:
    def script(conversation: Conversation) -> str:
        if len(conversation) == 1 and "Ada Park" in conversation[0]["content"]:
            return (
                '[{"head": "Ada Park", "relation": "born in", "tail": "Lyon", "date": "May 1961"}]'
            )
        return truthful(conversation)

    model = ScriptedModel(script)
    extractor = LLMTripleExtractor(model)
    ada, acme = extractor.extract([ADA, ACME])
    assert len(ada) == 2 and len(acme) == 1
    assert [len(c) for c in model.calls] == [2, 1]  # only the bad piece goes again
    retry = model.calls[1][0]
    assert [m["role"] for m in retry] == ["user", "assistant", "user"]
    assert "May 1961" in retry[1]["content"]
    assert "is not 'YYYY', 'YYYY-MM' or 'YYYY-MM-DD'" in retry[2]["content"]
    s = extractor.stats
    assert (s.calls, s.requests, s.retries, s.failures) == (2, 3, 1, 0)


def test_always_invalid_counts_a_failure_and_logs_without_crashing() -> None:
    def script(conversation: Conversation) -> str:
        return (
            "Sorry, no JSON here."
            if "Ada Park" in conversation[0]["content"]
            else truthful(conversation)
        )

    logged: list[str] = []
    extractor = LLMTripleExtractor(
        ScriptedModel(script), LLMExtractConfig(max_retries=2), logged.append
    )
    ada, acme = extractor.extract([ADA, ACME])
    assert ada == [] and len(acme) == 1
    s = extractor.stats
    assert (s.calls, s.requests, s.retries, s.failures) == (3, 4, 2, 1)
    assert len(logged) == 1 and "doc-ada" in logged[0] and "no JSON list found" in logged[0]


def test_cut_off_replies_are_told_to_list_fewer_facts() -> None:
    model = ScriptedModel(lambda c: '[{"head": "Ada Park", "relation": "born in"', finish="length")
    extractor = LLMTripleExtractor(model, LLMExtractConfig(max_retries=1))
    assert extractor.extract([ADA]) == [[]]
    assert "list fewer facts" in model.calls[1][0][-1]["content"]


def test_ungrounded_facts_are_dropped_unless_grounding_is_off() -> None:
    invented = json.dumps(
        [
            {"head": "Ada Park", "relation": "spouse", "tail": "Bo Lind"},
            {"head": "Ada Park", "relation": "born", "tail": "1961-05-02", "tail_kind": "value"},
        ]
    )
    extractor = LLMTripleExtractor(ScriptedModel(lambda c: invented))
    [triples] = extractor.extract([ADA])
    assert [t.tail for t in triples] == ["1961-05-02"]  # values are not looked up in the text
    assert extractor.stats.ungrounded == 1
    loose = LLMTripleExtractor(
        ScriptedModel(lambda c: invented), LLMExtractConfig(require_grounding=False)
    )
    assert len(loose.extract([ADA])[0]) == 2


def test_parse_facts_reads_past_reasoning_fences_and_preambles() -> None:
    reply = 'thinking...</think>Here you go:\n```json\n[{"head": "A", "relation": "r", "tail": "B"}]\n```'
    [fact] = parse_facts(reply)
    assert (fact.head, fact.relation, fact.tail, fact.date) == ("A", "r", "B", None)
    assert parse_facts("[]") == []
    with pytest.raises(InvalidReply, match=r"item 0\.tail"):
        parse_facts('[{"head": "A", "relation": "r"}]')
    with pytest.raises(InvalidReply, match="kind 'robot'"):
        parse_facts('[{"head": "A", "relation": "r", "tail": "B", "head_kind": "robot"}]')


def test_long_documents_are_split_and_every_piece_is_asked_in_one_batch() -> None:
    paragraphs = [f"Person {i} works for Company {i}." for i in range(30)]
    long_doc = Document("doc-long", "\n\n".join(paragraphs))
    pieces = split_document(long_doc.text, 200)
    assert all(len(p) <= 200 for p in pieces) and len(pieces) > 1
    assert "\n\n".join(pieces) == long_doc.text  # nothing lost, nothing reordered

    def script(conversation: Conversation) -> str:
        text = conversation[0]["content"].split("Text:\n", 1)[1]
        facts = [
            {"head": f"Person {i}", "relation": "works for", "tail": f"Company {i}"}
            for i in range(30)
            if f"Person {i} works" in text
        ]
        return json.dumps(facts)

    model = ScriptedModel(script)
    extractor = LLMTripleExtractor(model, LLMExtractConfig(max_piece_chars=200))
    [triples] = extractor.extract([long_doc])
    assert [t.head for t in triples] == [f"Person {i}" for i in range(30)]
    assert len(model.calls) == 1 and len(model.calls[0]) == len(pieces)


def test_oversized_sentences_are_cut_at_words() -> None:
    text = "word " * 100
    pieces = split_document(text, 230)
    assert all(len(p) <= 230 for p in pieces)
    assert " ".join(pieces).split() == text.split()


def test_a_model_returning_too_few_replies_is_a_backend_error() -> None:
    class Short(ScriptedModel):
        def generate(self, conversations, sampling):
            return []

    with pytest.raises(BackendError, match="returned 0 replies for 1 pieces"):
        LLMTripleExtractor(Short(truthful)).extract([ADA])
