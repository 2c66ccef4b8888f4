"""Chunking: token-exact sections, exact concatenation, and a memory bound on big files."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.tokenizer_train import synthetic_corpus
from qwenlong.memagent.chunking import count_tokens_upto, iter_chunks, iter_file, iter_text


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def prose() -> str:
    return "".join(synthetic_corpus(3, 120))


def _count(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize("chunk_tokens", [16, 100, 1000])
def test_chunks_are_token_exact_and_concatenate_to_the_document(tokenizer, prose, chunk_tokens):
    chunks = list(iter_chunks(prose, tokenizer, chunk_tokens, block_chars=2000))
    assert "".join(c.text for c in chunks) == prose
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.n_tokens == _count(tokenizer, chunk.text)
    # prose cuts between words: every chunk but the last is exactly full, and nothing is lost
    assert {c.n_tokens for c in chunks[:-1]} == {chunk_tokens}
    assert 0 < chunks[-1].n_tokens <= chunk_tokens
    assert sum(c.n_tokens for c in chunks) == _count(tokenizer, prose)
    starts = [c.start_token for c in chunks]
    assert starts == [sum(c.n_tokens for c in chunks[:i]) for i in range(len(chunks))]


def test_pieces_and_a_whole_string_give_the_same_chunks(tokenizer, prose):
    whole = list(iter_chunks(prose, tokenizer, 200))
    pieces = list(iter_chunks(iter_text(prose, 333), tokenizer, 200))
    assert whole == pieces


def test_multibyte_text_never_exceeds_the_budget(tokenizer):
    text = "é😀漢" * 700 + " word" * 50
    chunks = list(iter_chunks(text, tokenizer, 8, block_chars=97))
    assert "".join(c.text for c in chunks) == text
    assert all(0 < c.n_tokens <= 8 for c in chunks)


def test_short_and_empty_documents(tokenizer):
    [only] = list(iter_chunks("A short note.", tokenizer, 64))
    assert only.text == "A short note." and only.n_tokens == _count(tokenizer, "A short note.")
    assert list(iter_chunks("", tokenizer, 64)) == []
    assert list(iter_chunks(iter([]), tokenizer, 64)) == []


def test_too_small_a_budget_is_a_config_error(tokenizer):
    with pytest.raises(ConfigError, match="chunk_tokens is 4, must be at least 8"):
        next(iter_chunks("text", tokenizer, 4))


class SpyTokenizer:
    """Passes calls to a real tokenizer and records the longest text it had to tokenize."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.is_fast = True
        self.longest = 0
        self.total_chars = 0

    def __call__(self, text, **kwargs):
        self.longest = max(self.longest, len(text))
        self.total_chars += len(text)
        return self.inner(text, **kwargs)


def test_a_big_file_is_streamed_within_a_chunk_plus_one_block(tokenizer, tmp_path):
    path = tmp_path / "big.txt"
    paragraph = "".join(synthetic_corpus(5, 60))
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(60):
            handle.write(paragraph)
    size = path.stat().st_size
    spy = SpyTokenizer(tokenizer)
    chunk_tokens, block = 500, 4096
    tracemalloc.start()
    try:
        n_chunks = chars = 0
        for chunk in iter_chunks(iter_file(path, block), spy, chunk_tokens, block):
            n_chunks += 1
            chars += len(chunk.text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert chars == len(path.read_text(encoding="utf-8"))
    assert n_chunks > 20
    # the buffer holds about one chunk (~3 chars per token here) plus one block, never the file
    assert spy.longest < 2 * chunk_tokens * 4 + block < size / 100
    # Python-side peak: the buffer, one window's ids and offsets; the 1 MB file never is
    assert peak < 400_000 < size
    # each character is tokenized a small, bounded number of times (no quadratic re-reading)
    assert spy.total_chars < 4 * size


def test_count_tokens_upto_stops_early(tokenizer, prose):
    total = _count(tokenizer, prose)
    assert count_tokens_upto(prose, tokenizer, total) == total
    assert count_tokens_upto(prose, tokenizer, total - 1) is None
    spy = SpyTokenizer(tokenizer)
    assert count_tokens_upto(prose * 50, spy, 100, block_tokens=64) is None
    assert spy.total_chars < len(prose)  # stopped long before the end of the 50 copies


def test_iter_file_reports_bad_utf8_with_its_byte_offset(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"abc" * 10 + b"\xff" + b"tail")
    with pytest.raises(DatasetError, match=r"bad.txt: not UTF-8 text \(byte 30\)"):
        list(iter_file(path, 8))
    with pytest.raises(DatasetError, match="document file not found"):
        list(iter_file(tmp_path / "missing.txt"))


def test_iter_file_keeps_multibyte_characters_split_across_blocks(tmp_path):
    path = tmp_path / "u.txt"
    text = "añ😀b" * 100
    path.write_text(text, encoding="utf-8")
    assert "".join(iter_file(path, 3)) == text
