"""Context extension in the tiny model's BPE tokenizer: exact lengths, and how much is encoded."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from qwenlong.core.records import Document, Provenance, TaskSample
from qwenlong.core.tokenizer_train import synthetic_corpus
from qwenlong.evals.truncation import HFTokenCounter
from qwenlong.synth.assemble import AssemblyConfig, assemble_samples, tokenizer_corpus
from qwenlong.synth.interfaces import Corpus


@pytest.fixture(scope="module")
def counter(tiny_model_dir: Path) -> HFTokenCounter:
    return HFTokenCounter(AutoTokenizer.from_pretrained(tiny_model_dir))


def documents() -> list[Document]:
    paragraphs = list(synthetic_corpus(seed=5, n_paragraphs=600))
    return [
        Document(id=f"d{i}", text="\n\n".join(paragraphs[i * 3 : i * 3 + 3]), domain="ab"[i % 2])
        for i in range(200)
    ]


def samples() -> list[TaskSample]:
    return [
        TaskSample(
            id=f"s{i}",
            task_type="multihop",
            question="Where?",
            answers=["nowhere at all"],
            provenance=Provenance(source_documents=[f"d{i}", f"d{i + 50}", f"d{i + 101}"]),
        )
        for i in range(12)
    ]


def test_contexts_are_within_two_percent_and_tokenized_whole_once(counter: HFTokenCounter) -> None:
    docs = documents()
    counts: list[int] = []

    def count(text: str) -> int:
        counts.append(counter.count_tokens(text))
        return counts[-1]

    corpus = Corpus(docs, count)
    longest_doc = max(corpus.tokens(d) for d in docs)
    counts.clear()
    config = AssemblyConfig(target_lengths=[1500, 4000, 9000])
    result = assemble_samples(samples(), corpus, config, random.Random(0))
    assert len(result.samples) == 12 and not result.drops
    # Cuts count prefixes of one document; only the final check counts more than a document.
    assert len([n for n in counts if n > longest_doc]) == 12
    for out in result.samples:
        target = int(out.meta["target_tokens"])
        exact = counter.count_tokens(out.context)
        assert out.context_tokens == exact
        assert abs(exact - target) <= 0.02 * target
        for doc_id, (start, end) in zip(
            out.provenance.source_documents, json.loads(out.meta["evidence_positions"]), strict=True
        ):
            offset = out.context.index(corpus.by_id[doc_id].text)
            assert abs(counter.count_tokens(out.context[:offset]) - start) <= 0.01 * target
            assert end - start == corpus.tokens(corpus.by_id[doc_id])


def test_counted_by_joins_no_text_longer_than_a_document_is_encoded(
    counter: HFTokenCounter,
) -> None:
    """The pipeline's corpus: exact lengths from cached counts and the text around the joins."""
    docs = documents()
    corpus = tokenizer_corpus(docs, counter, counter.tokenizer)
    assert corpus.additive_at_word_ends and corpus.count_batch is not None
    encoded: list[str] = []
    batch = corpus.count_batch
    corpus.count_batch = lambda texts: encoded.extend(texts) or batch(texts)
    config = AssemblyConfig(target_lengths=[1500, 4000, 9000])
    result = assemble_samples(samples(), corpus, config, random.Random(0))
    assert len(result.samples) == 12 and not result.drops
    assert max(map(len, encoded)) < max(len(d.text) for d in docs)
    assert sum(map(len, encoded)) < 0.1 * sum(len(s.context) for s in result.samples)
    for out in result.samples:
        assert out.context_tokens == counter.count_tokens(out.context)
