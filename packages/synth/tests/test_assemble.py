"""Context extension with a one-word-one-token counter, so every length is worked out by hand."""

from __future__ import annotations

import json
import random
import re

import pytest

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import Document, Provenance, TaskSample
from qwenlong.synth.assemble import (
    AssemblyConfig,
    AssemblySkip,
    assemble_samples,
    cut_to_tokens,
    extend_context,
)
from qwenlong.synth.interfaces import Corpus


def words(text: str) -> int:
    """One token per whitespace-separated word; the separator "\\n\\n\\n" is 0 tokens."""
    return len(text.split())


def doc(doc_id: str, n_words: int, domain: str = "general", word: str | None = None) -> Document:
    token = word or doc_id
    return Document(id=doc_id, text=" ".join(f"{token}w{i}" for i in range(n_words)), domain=domain)


def sample(sid: str, sources: list[str], answer: str = "42", kind: str = "text") -> TaskSample:
    return TaskSample(
        id=sid,
        task_type="multihop",
        question="Which one?",
        answers=[answer],
        answer_kind=kind,
        provenance=Provenance(generator="kg", source_documents=sources),
    )


def corpus_of(docs: list[Document]) -> Corpus:
    return Corpus(docs, words)


def test_cut_to_tokens_keeps_whole_words_up_to_the_budget() -> None:
    assert cut_to_tokens("a bb ccc dddd", 2, words) == ("a bb", 2)
    assert cut_to_tokens("a bb ccc dddd", 10, words) == ("a bb ccc dddd", 4)
    assert cut_to_tokens("a bb", 0, words) == ("", 0)


def test_context_hits_the_target_and_keeps_evidence_whole() -> None:
    docs = [doc("e1", 30), doc("e2", 20)] + [doc(f"d{i}", 25) for i in range(20)]
    out = extend_context(sample("s", ["e1", "e2"]), corpus_of(docs), 200, random.Random(0))
    assert out.context_tokens == 200 == words(out.context)
    assert docs[0].text in out.context and docs[1].text in out.context
    assert out.meta["target_tokens"] == "200"
    # 50 evidence words + 150 distractor words: six whole 25-word distractors, none cut
    parts = out.context.split("\n\n\n")
    assert len(parts) == 8 and sorted(words(p) for p in parts) == [20, 25, 25, 25, 25, 25, 25, 30]


def test_evidence_positions_are_the_token_spans_of_the_sources() -> None:
    docs = [doc("e1", 30), doc("e2", 20), doc("e3", 10)] + [doc(f"d{i}", 37) for i in range(30)]
    out = extend_context(sample("s", ["e1", "e2", "e3"]), corpus_of(docs), 500, random.Random(3))
    tokens = out.context.split()
    spans = json.loads(out.meta["evidence_positions"])
    for source, (start, end) in zip(docs[:3], spans, strict=True):
        assert tokens[start:end] == source.text.split()
    chars = json.loads(out.meta["evidence_chars"])
    for source, (start, end) in zip(docs[:3], chars, strict=True):
        assert out.context[start:end] == source.text


def test_evidence_lands_in_separate_strata_of_the_context() -> None:
    """Evidence i of m sits after a distractor prefix inside stratum i (± one distractor)."""
    docs = [doc(f"e{i}", 5) for i in range(4)] + [doc(f"d{i}", 10) for i in range(100)]
    for seed in range(10):
        out = extend_context(
            sample("s", [f"e{i}" for i in range(4)]), corpus_of(docs), 420, random.Random(seed)
        )
        starts = sorted(start for start, _ in json.loads(out.meta["evidence_positions"]))
        distractor_total = 400
        for i, start in enumerate(starts):
            before = start - 5 * i  # distractor tokens ahead of the i-th evidence document
            assert distractor_total * i / 4 - 10 <= before <= distractor_total * (i + 1) / 4


def test_last_distractor_is_cut_at_token_level() -> None:
    docs = [doc("e", 10)] + [doc(f"d{i}", 40) for i in range(5)]
    out = extend_context(sample("s", ["e"]), corpus_of(docs), 75, random.Random(1))
    assert out.context_tokens == 75
    assert sorted(words(p) for p in out.context.split("\n\n\n")) == [10, 25, 40]


def test_a_context_off_by_merges_across_separators_is_recut() -> None:
    """A counter that adds 2 tokens at each document boundary but 0 for the separator alone."""
    counts: list[int] = []

    def merging(text: str) -> int:
        counts.append(words(text) + 2 * len(re.findall(r"\S\n\n\n\S", text)))
        return counts[-1]

    docs = [doc("e", 10)] + [doc(f"d{i}", 100) for i in range(3)]
    config = AssemblyConfig(tolerance=0.01)
    out = extend_context(sample("s", ["e"]), Corpus(docs, merging), 300, random.Random(0), config)
    # planned 10 + 100 + 100 + 90 = 300, counted 306 (3 boundaries); last distractor re-cut to 84
    assert out.context_tokens == 300 == merging(out.context)
    assert sorted(words(p) for p in out.context.split("\n\n\n")) == [10, 84, 100, 100]
    with pytest.raises(AssemblySkip) as info:
        extend_context(
            sample("s", ["e"]),
            Corpus(docs, merging),
            300,
            random.Random(0),
            AssemblyConfig(tolerance=0.01, max_corrections=0),
        )
    assert info.value.reason == "length_mismatch"


def test_same_domain_distractors_come_first() -> None:
    docs = [doc("e", 10, "finance")]
    docs += [doc(f"f{i}", 10, "finance") for i in range(3)]
    docs += [doc(f"g{i}", 10, "general") for i in range(10)]
    out = extend_context(sample("s", ["e"]), corpus_of(docs), 40, random.Random(0))
    assert json.loads(out.meta["context_documents"]).count("e") == 1
    assert {d for d in json.loads(out.meta["context_documents"]) if d != "e"} == {"f0", "f1", "f2"}
    longer = extend_context(sample("s", ["e"]), corpus_of(docs), 60, random.Random(0))
    used = set(json.loads(longer.meta["context_documents"]))
    assert {"f0", "f1", "f2"} <= used and len(used & {f"g{i}" for i in range(10)}) == 2


def test_documents_naming_a_text_answer_are_never_distractors() -> None:
    docs = [doc("e", 10)] + [doc(f"d{i}", 10) for i in range(6)]
    docs[3] = Document(id="d2", text="the Zanzibar Works mill " * 3)
    corpus = corpus_of(docs)
    for seed in range(5):
        out = extend_context(sample("s", ["e"], "zanzibar works"), corpus, 60, random.Random(seed))
        assert "d2" not in json.loads(out.meta["context_documents"])
    # a short answer or a number is not guarded: d2 is needed to reach 70 tokens
    out = extend_context(sample("s", ["e"], "mill", "number"), corpus, 70, random.Random(0))
    assert "d2" in json.loads(out.meta["context_documents"])


def test_evidence_longer_than_the_target_is_skipped() -> None:
    docs = [doc("e", 300)] + [doc(f"d{i}", 10) for i in range(5)]
    with pytest.raises(AssemblySkip) as info:
        extend_context(sample("s", ["e"]), corpus_of(docs), 200, random.Random(0))
    assert info.value.reason == "too_long"


def test_a_corpus_too_small_for_the_target_is_skipped() -> None:
    docs = [doc("e", 10)] + [doc(f"d{i}", 10) for i in range(3)]
    with pytest.raises(AssemblySkip) as info:
        extend_context(sample("s", ["e"]), corpus_of(docs), 100, random.Random(0))
    assert info.value.reason == "short_corpus"


def test_unknown_source_names_sample_and_document() -> None:
    with pytest.raises(DatasetError, match="sample s: source document 'nope' is not in the corpus"):
        extend_context(sample("s", ["nope"]), corpus_of([doc("e", 5)]), 50, random.Random(0))


def test_dialogue_with_its_own_context_passes_through_unless_configured() -> None:
    dialogue = TaskSample(
        id="dlg",
        task_type="dialogue_memory",
        question="Repeat the second poem.",
        answers=["x"],
        answer_kind="sequence",
        context="alice: hi bob: hello " * 5,
    )
    docs = [doc(f"d{i}", 10) for i in range(10)]
    same = extend_context(dialogue, corpus_of(docs), 80, random.Random(0))
    assert same.context == dialogue.context and same.context_tokens == 20
    grown = extend_context(
        dialogue, corpus_of(docs), 80, random.Random(0), AssemblyConfig(extend_own_context=True)
    )
    assert grown.context_tokens == 80 and dialogue.context.strip() in grown.context
    ((start, end),) = json.loads(grown.meta["evidence_positions"])
    assert end - start == 20


def test_own_documents_become_separate_evidence_pieces() -> None:
    own = TaskSample(
        id="own",
        task_type="reading",
        question="Which?",
        answers=["x"],
        documents=["alpha beta gamma", "delta epsilon"],
    )
    docs = [doc(f"d{i}", 10) for i in range(10)]
    same = extend_context(own, corpus_of(docs), 50, random.Random(0))
    # counted as the prompt renders it: 5 words plus the "Document 1:" and "Document 2:" headings
    assert same.documents == own.documents and same.context_tokens == 9
    grown = extend_context(
        own, corpus_of(docs), 45, random.Random(0), AssemblyConfig(extend_own_context=True)
    )
    tokens = grown.context.split()
    spans = json.loads(grown.meta["evidence_positions"])
    assert [tokens[a:b] for a, b in spans] == [["alpha", "beta", "gamma"], ["delta", "epsilon"]]
    chars = json.loads(grown.meta["evidence_chars"])
    assert [grown.context[a:b] for a, b in chars] == own.documents
    assert grown.documents == [] and grown.context_tokens == 45


def test_batch_assigns_targets_round_robin_and_records_skips() -> None:
    docs = [doc(f"e{i}", 10) for i in range(5)] + [doc(f"d{i}", 10) for i in range(40)]
    samples = [sample(f"s{i}", [f"e{i}"]) for i in range(4)] + [sample("bad", ["e4"])]
    samples[-1].provenance.source_documents.extend(f"d{i}" for i in range(12))
    config = AssemblyConfig(target_lengths=[50, 100])
    result = assemble_samples(samples, corpus_of(docs), config, random.Random(0))
    assert [s.context_tokens for s in result.samples] == [50, 100, 50, 100]
    assert [(d.sample_id, d.reason, d.stage) for d in result.drops] == [
        ("bad", "too_long", "assemble")
    ]


def test_a_sample_gets_the_same_context_whatever_else_is_in_the_batch() -> None:
    docs = [doc(f"e{i}", 10) for i in range(3)] + [doc(f"d{i}", 10) for i in range(40)]
    a, b = sample("a", ["e0"]), sample("b", ["e1", "e2"])
    config = AssemblyConfig(target_lengths=[120], target_assignment="random")
    first = assemble_samples([a, b], corpus_of(docs), config, random.Random(7)).samples
    second = assemble_samples([b, a], corpus_of(docs), config, random.Random(7)).samples
    assert first[0].context == second[1].context and first[1].context == second[0].context
    other = assemble_samples([a], corpus_of(docs), config, random.Random(8)).samples
    assert other[0].context != first[0].context


def test_disabled_assembly_passes_samples_through() -> None:
    samples = [sample("s", ["e"])]
    result = assemble_samples(
        samples, corpus_of([doc("e", 5)]), AssemblyConfig(enabled=False), random.Random(0)
    )
    assert result.samples == samples and result.mode == "skipped (disabled)"
