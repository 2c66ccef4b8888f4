"""Byte-identical results from faster counting, against outputs captured before the change.

`run_cases(make_corpus)` assembles the same samples over the same documents under several
configs (separators "\\n\\n\\n", " ", "" and "\\n", a tolerance tight enough to force
re-cuts and length-mismatch drops, random targets, any-domain distractors, own contexts
extended) and returns one digest per case: per kept sample the context's SHA-256, its exact
length, evidence token and character spans, document order and target; per drop its reason
and detail. `fixtures/assembly_golden.json` holds the digests of the implementation that
encoded every finished context whole, one after another (captured with
`uv run python packages/synth/tests/test_assemble_golden.py OUT.json` before joins were counted
alone), in the tiny model's BPE tokenizer and in a one-word-one-token counter.

The documents mix the generated English-like paragraphs with texts chosen to break naive join
arithmetic: no trailing punctuation, leading and trailing spaces and newlines, Chinese without
spaces, decomposed accents that NFC composes, a composition-excluded Devanagari letter,
ligatures, digits, contractions at the edges, literal added tokens (`<think>`, `<|im_end|>`),
tabs and runs of spaces, emoji sequences.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from qwenlong.core.records import Document, Provenance, TaskSample
from qwenlong.core.tokenizer_train import synthetic_corpus
from qwenlong.evals.truncation import HFTokenCounter
from qwenlong.synth.assemble import AssemblyConfig, assemble_samples
from qwenlong.synth.assemble import extend as extend_module
from qwenlong.synth.assemble.word_ends import additive_at_word_ends, tokenizer_corpus
from qwenlong.synth.interfaces import Corpus

ODD_TEXTS = (
    "Plain ending without any punctuation at all",
    " starts with a space and ends with one ",
    "\nstarts with a newline and ends with one\n",
    "中文文档没有空格。这是第二句话，还有逗号和句号。最后一句",
    "e\u0301tude cafe\u0301 and nai\u0308ve coo\u0308perate",
    "Numbers 12345 and 3.14 end with 2024",
    "tokens <think> inside </think> and <|im_end|> too<think>",
    "it's we'll they've don't and the dog's",
    "'s starts with a contraction and ends with tabs\t\t",
    "   multiple   spaces   between   words   ",
    "\ufb01nal ligature \u2126 and \u212b sign",
    "\u0301accent first then words",
    "\u0958 देवनागरी पाठ क\u093c",
    "emoji 👍🏽 family 👨\u200d👩\u200d👧 end👍",
    "ends with a letter then newline\n\n",
    "word",
)


def golden_documents() -> list[Document]:
    """240 generated documents in two domains plus every odd text, each repeated to a few lines."""
    paragraphs = list(synthetic_corpus(seed=11, n_paragraphs=720))
    docs = [
        Document(id=f"g{i}", text="\n\n".join(paragraphs[i * 3 : i * 3 + 3]), domain="ab"[i % 2])
        for i in range(240)
    ]
    for i, text in enumerate(ODD_TEXTS):
        for copy in range(3):
            body = " ".join([text.strip() or text] * (2 + 5 * copy))
            docs.append(
                Document(id=f"odd{i}-{copy}", text=text + body + text, domain="ab"[copy % 2])
            )
    return docs


def _samples(docs: list[Document], n: int, seed: int) -> list[TaskSample]:
    rng = random.Random(seed)
    ids = [d.id for d in docs]
    odd = [d.id for d in docs if d.id.startswith("odd")]
    samples = [
        TaskSample(
            id=f"s{seed}-{i}",
            task_type="multihop",
            question="Which came first?",
            answers=["Marlow Teague" if i % 3 else "12"],
            answer_kind="text" if i % 2 else "number",
            provenance=Provenance(
                generator="golden", source_documents=[rng.choice(odd), *rng.sample(ids, 2)]
            ),
        )
        for i in range(n)
    ]
    own_context = "alice: hello there\nbob: " + " ".join(ODD_TEXTS)
    samples.append(
        TaskSample(
            id=f"own{seed}",
            task_type="dialogue_memory",
            question="Repeat it.",
            answers=["x"],
            answer_kind="sequence",
            context=own_context,
        )
    )
    samples.append(
        TaskSample(
            id=f"docs{seed}",
            task_type="reading",
            question="Which?",
            answers=["x"],
            documents=[ODD_TEXTS[3], ODD_TEXTS[0], ODD_TEXTS[13]],
        )
    )
    return samples


CASES: dict[str, dict[str, Any]] = {
    "default": {"target_lengths": [1500, 5000, 12000]},
    "space_separator": {"target_lengths": [3000, 9000], "separator": " "},
    "no_separator": {"target_lengths": [2500, 7000], "separator": "", "distractor_domain": "any"},
    "newline_separator": {
        "target_lengths": [4000],
        "separator": "\n",
        "target_assignment": "random",
        "extend_own_context": True,
    },
    "tight": {"target_lengths": [2000, 6000], "tolerance": 0.0004, "max_corrections": 2},
    "tight_no_corrections": {"target_lengths": [3500], "tolerance": 0.0004, "max_corrections": 0},
}


def digest(samples: list[TaskSample], drops: list[Any]) -> dict[str, Any]:
    """What must stay byte-identical: contexts (hashed), exact lengths, spans, drops."""
    kept = [
        [
            s.id,
            hashlib.sha256(s.context.encode()).hexdigest()[:24],
            s.context_tokens,
            s.meta.get("evidence_positions"),
            s.meta.get("evidence_chars"),
            hashlib.sha256(s.meta.get("context_documents", "").encode()).hexdigest()[:24],
            s.meta.get("target_tokens"),
        ]
        for s in samples
    ]
    return {"kept": kept, "drops": [[d.sample_id, d.reason, d.detail] for d in drops]}


def run_cases(make_corpus: Callable[[list[Document]], Corpus]) -> dict[str, Any]:
    """Every case assembled over a fresh corpus from `make_corpus`; digests by case name."""
    out: dict[str, Any] = {}
    for seed, (name, fields) in enumerate(CASES.items()):
        docs = golden_documents()
        corpus = make_corpus(docs)
        result = assemble_samples(
            _samples(docs, 16, seed), corpus, AssemblyConfig(**fields), random.Random(seed)
        )
        out[name] = digest(result.samples, result.drops)
    return out


FIXTURE = Path(__file__).parent / "fixtures" / "assembly_golden.json"


def _words(text: str) -> int:
    return len(text.split())


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_contexts_encoded_whole_are_unchanged(tokenizer: Any) -> None:
    """The plain corpus (one text at a time, no joins) takes the old path: same bytes."""
    counter = HFTokenCounter(tokenizer)
    golden = json.loads(FIXTURE.read_text())
    assert run_cases(lambda docs: Corpus(docs, counter)) == golden["bpe"]
    assert run_cases(lambda docs: Corpus(docs, _words)) == golden["words"]


def test_contexts_counted_by_joins_in_batches_are_unchanged(tokenizer: Any) -> None:
    counter = HFTokenCounter(tokenizer)
    assert additive_at_word_ends(tokenizer)  # else this would test the whole-encode path again
    golden = json.loads(FIXTURE.read_text())
    assert run_cases(lambda docs: tokenizer_corpus(docs, counter, tokenizer)) == golden["bpe"]
    additive_words = run_cases(lambda docs: Corpus(docs, _words, additive_at_word_ends=True))
    assert additive_words == golden["words"]


def test_batch_size_does_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """One sample per counting call, as before batching: the same bytes."""
    monkeypatch.setattr(extend_module, "BATCH_TOKENS", 1)
    golden = json.loads(FIXTURE.read_text())
    assert (
        run_cases(lambda docs: Corpus(docs, _words, additive_at_word_ends=True)) == golden["words"]
    )


if __name__ == "__main__":
    import sys
    import tempfile

    from qwenlong.core.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        counter = HFTokenCounter(AutoTokenizer.from_pretrained(build_tiny_model(Path(tmp) / "m")))
    golden = {
        "bpe": run_cases(lambda docs: Corpus(docs, counter)),
        "words": run_cases(lambda docs: Corpus(docs, lambda text: len(text.split()))),
    }
    Path(sys.argv[1]).write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
