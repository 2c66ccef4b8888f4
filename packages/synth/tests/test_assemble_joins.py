"""Counting a context by its joins equals encoding it whole: the lemma, the sum, the guard."""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from qwenlong.core.records import Document
from qwenlong.core.tokenizer_train import PRETOKENIZE_PATTERN, synthetic_corpus
from qwenlong.evals.truncation import HFTokenCounter
from qwenlong.synth.assemble.joins import ContextCounter
from qwenlong.synth.assemble.word_ends import (
    LLAMA3_PATTERN,
    QWEN2_PATTERN,
    additive_at_word_ends,
    first_cut,
    last_cut,
    tokenizer_corpus,
)
from qwenlong.synth.interfaces import Corpus

FRAGMENTS = (
    *("word", " the", " river", "Alice", " x", "s", "Q", "'s", "'ll", "'", "’", "don't"),
    *(" ", "  ", "   ", "\n", "\n\n", "\n\n\n", "\t", "\r\n", "\u00a0", "\u3000", " \n"),
    *(".", ",", "!?", "—", "$", "(", ")", "12", "3", "2024", "3.14"),
    *("é", "e\u0301", "\u0301", "\u0308", "ﬁ", "Ω", "Å", "\u0958", "क\u093c", "ß"),
    *("中文", "。", "，", "没有空格", "👍🏽", "\u200d", "👨\u200d👩"),
    *("<think>", "</think>", "<|im_end|>", "<|endoftext|>", "<thi", "nk>"),
)
SEPARATORS = ("\n\n\n", " ", "", "\n", "'", "s", "\u0301", ". ", " \n ")


def random_text(rng: random.Random, paragraphs: list[str]) -> str:
    """Fragments chosen to sit on either side of a cut, sometimes around a real paragraph."""
    parts = [rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 12))]
    if rng.random() < 0.3:
        parts.insert(rng.randint(0, len(parts)), rng.choice(paragraphs)[: rng.randint(0, 400)])
    return "".join(parts)


@pytest.fixture(scope="module")
def paragraphs() -> list[str]:
    return list(synthetic_corpus(seed=3, n_paragraphs=60))


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_model_dir: Path) -> Any:
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def with_changes(tokenizer: Any, change: Any) -> PreTrainedTokenizerFast:
    """A copy of `tokenizer` with its serialized spec edited by `change(spec)`."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    change(spec)
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)))


def with_pattern(tokenizer: Any, pattern: str) -> PreTrainedTokenizerFast:
    def change(spec: dict[str, Any]) -> None:
        spec["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = pattern

    return with_changes(tokenizer, change)


PATTERNS = {"tiny": PRETOKENIZE_PATTERN, "qwen2": QWEN2_PATTERN, "llama3": LLAMA3_PATTERN}


def all_cuts(text: str) -> list[int]:
    cuts, start = [], 0
    while (cut := first_cut(text[start:])) is not None:
        cuts.append(start + cut)
        start += cut
    return cuts


def pieces_of(tokenizer: Any, text: str) -> list[str]:
    """The pre-tokenizer's pieces of the normalized text (the units BPE works inside)."""
    backend = tokenizer.backend_tokenizer
    return [
        p for p, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))
    ]


@pytest.mark.parametrize("name", PATTERNS)
def test_every_cut_splits_pieces_and_tokens(
    name: str, tiny_tokenizer: Any, paragraphs: list[str]
) -> None:
    """The lemma, stronger than counts: at each cut, the pieces and the token ids split too."""
    tokenizer = with_pattern(tiny_tokenizer, PATTERNS[name])
    assert additive_at_word_ends(tokenizer)
    rng = random.Random(name)
    splits = []
    for _ in range(500):
        text = random_text(rng, paragraphs) + random_text(rng, paragraphs)
        splits += [(text, cut) for cut in all_cuts(text)]
    assert len(splits) > 1000
    for text, cut in splits:
        assert pieces_of(tokenizer, text) == (
            pieces_of(tokenizer, text[:cut]) + pieces_of(tokenizer, text[cut:])
        ), (text, cut)
    ids = tokenizer(
        [t for text, cut in splits for t in (text, text[:cut], text[cut:])],
        add_special_tokens=False,
    )["input_ids"]
    for i, (text, cut) in enumerate(splits):
        assert ids[3 * i] == ids[3 * i + 1] + ids[3 * i + 2], (text, cut)


@pytest.mark.parametrize("name", PATTERNS)
def test_joined_contexts_count_as_encoded_whole(
    name: str, tiny_tokenizer: Any, paragraphs: list[str]
) -> None:
    tokenizer = with_pattern(tiny_tokenizer, PATTERNS[name])
    counter = HFTokenCounter(tokenizer)
    corpus = tokenizer_corpus([], counter, tokenizer)
    rng = random.Random(f"contexts-{name}")
    for separator in SEPARATORS:
        contexts = []
        for _ in range(150):
            texts = [random_text(rng, paragraphs) for _ in range(rng.randint(1, 8))]
            counts = corpus.count_many(texts)
            # now and then a piece whose count is unknown: it must be encoded with its window
            contexts.append(
                [(t, None if rng.random() < 0.1 else n) for t, n in zip(texts, counts, strict=True)]
            )
        counted = ContextCounter(corpus, separator).count(contexts)
        whole = [counter.count_tokens(separator.join(t for t, _ in c if t)) for c in contexts]
        assert counted == whole, separator


def test_documents_are_counted_without_encoding_their_interiors(
    tiny_tokenizer: Any, paragraphs: list[str]
) -> None:
    counter = HFTokenCounter(tokenizer := tiny_tokenizer)
    docs = ["\n\n".join(paragraphs[i : i + 4]) for i in range(0, 40, 4)]
    encoded: list[str] = []
    plain = tokenizer_corpus([], counter, tokenizer)
    spy = Corpus([], counter, lambda texts: encoded.extend(texts) or plain.count_many(texts), True)
    pieces = [(d, n) for d, n in zip(docs, plain.count_many(docs), strict=True)]
    (total,) = ContextCounter(spy, "\n\n\n").count([pieces])
    assert total == counter.count_tokens("\n\n\n".join(docs))
    assert sum(map(len, encoded)) < 0.05 * sum(map(len, docs))


def test_without_the_property_contexts_are_encoded_whole(paragraphs: list[str]) -> None:
    encoded: list[str] = []

    def chars(text: str) -> int:
        encoded.append(text)
        return len(text) // 3  # not additive: a join can change the count

    pieces = [(p, chars(p)) for p in paragraphs[:3]]
    encoded.clear()
    (total,) = ContextCounter(Corpus([], chars), " ").count([pieces])
    assert total == len(" ".join(paragraphs[:3])) // 3 and encoded == [" ".join(paragraphs[:3])]


def test_cuts_are_ascii_letters_before_a_space_or_newline() -> None:
    assert first_cut("ab cd\nef") == 2 and last_cut("ab cd\nef") == 5
    assert first_cut("中文 no more") == 5 and last_cut("end.") is None
    assert first_cut("é 1 ß\u00a0x\ty.") is None  # non-ASCII letters, digits, other spaces
    assert first_cut("") is None and last_cut("") is None
    long = "a b" + "." * 5000  # the only cut is far from the end
    assert last_cut(long) == 1


def test_no_composition_joins_a_letter_space_or_newline_to_what_precedes() -> None:
    """What the NFC step of the proof rests on, over every code point."""
    protected = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ \n")
    assert all(unicodedata.combining(c) == 0 for c in protected)
    for code in range(0x110000):
        fields = unicodedata.decomposition(chr(code)).split()
        if len(fields) == 2 and not fields[0].startswith("<"):
            assert chr(int(fields[1], 16)) not in protected, hex(code)


def spec_change(path: str, value: Any) -> Any:
    def change(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = spec
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value

    return change


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("normalizer", {"type": "NFKC"}),
        ("normalizer", {"type": "Lowercase"}),
        ("pre_tokenizer.pretokenizers.0.pattern.Regex", r"\S+\s*"),
        ("pre_tokenizer.pretokenizers.0.behavior", "MergedWithNext"),
        ("pre_tokenizer.pretokenizers.1.add_prefix_space", True),
        ("pre_tokenizer.pretokenizers.1.use_regex", True),
        ("pre_tokenizer", {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always"}),
        ("model.dropout", 0.1),
        ("added_tokens.3.content", "new line\n"),
        ("added_tokens.3.lstrip", True),
        ("added_tokens.4.single_word", True),
    ],
)
def test_tokenizers_outside_the_proof_are_not_trusted(
    tiny_tokenizer: Any, path: str, value: Any
) -> None:
    assert additive_at_word_ends(tiny_tokenizer)
    assert not additive_at_word_ends(with_changes(tiny_tokenizer, spec_change(path, value)))


def test_a_slow_tokenizer_is_not_trusted() -> None:
    assert not additive_at_word_ends(object())


def test_batch_counts_match_one_at_a_time(tiny_model_dir: Path, paragraphs: list[str]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)  # its own: this test alters it
    counter = HFTokenCounter(tokenizer)
    corpus = tokenizer_corpus([Document("d", "x")], counter, tokenizer)
    texts = [*paragraphs[:20], "", "<think> a", " \n"]
    assert corpus.count_many(texts) == [counter.count_tokens(t) for t in texts]
    assert corpus.count_many([]) == []
    # a call elsewhere that leaves the Rust tokenizer truncating must not cut these counts
    tokenizer(paragraphs[0], truncation=True, max_length=5)
    assert tokenizer.backend_tokenizer.truncation is not None
    assert corpus.count_many(texts) == [counter.count_tokens(t) for t in texts]
