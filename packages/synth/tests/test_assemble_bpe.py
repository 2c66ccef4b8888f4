"""Context extension in a real BPE tokenizer (the tiny model's): exact lengths, one full count."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from qwenlong.core.records import Document, Provenance, TaskSample
from qwenlong.core.tokenizer_train import synthetic_corpus
from qwenlong.evals.truncation import HFTokenCounter
from qwenlong.synth.assemble import AssemblyConfig, assemble_samples
from qwenlong.synth.interfaces import Corpus


@pytest.fixture(scope="module")
def counter(tiny_model_dir: Path) -> HFTokenCounter:
    return HFTokenCounter(AutoTokenizer.from_pretrained(tiny_model_dir))


def test_contexts_are_within_two_percent_and_tokenized_whole_once(counter: HFTokenCounter) -> None:
    paragraphs = list(synthetic_corpus(seed=5, n_paragraphs=600))
    docs = [
        Document(id=f"d{i}", text="\n\n".join(paragraphs[i * 3 : i * 3 + 3]), domain="ab"[i % 2])
        for i in range(200)
    ]
    counts: list[int] = []

    def count(text: str) -> int:
        counts.append(counter.count_tokens(text))
        return counts[-1]

    corpus = Corpus(docs, count)
    longest_doc = max(corpus.tokens(d) for d in docs)
    counts.clear()
    samples = [
        TaskSample(
            id=f"s{i}",
            task_type="multihop",
            question="Where?",
            answers=["nowhere at all"],
            provenance=Provenance(source_documents=[f"d{i}", f"d{i + 50}", f"d{i + 101}"]),
        )
        for i in range(12)
    ]
    config = AssemblyConfig(target_lengths=[1500, 4000, 9000])
    result = assemble_samples(samples, corpus, config, random.Random(0))
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
