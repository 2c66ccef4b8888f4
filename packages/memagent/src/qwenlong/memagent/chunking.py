"""Cut a document into sections of at most N target-model tokens, streaming.

The agent exists for inputs of millions of tokens (CorpusQA 4M), so a document is never
tokenized whole: text arrives as pieces (file blocks or slices of a string), a buffer holds
about one chunk's worth plus one block, and only the buffer is tokenized. Each chunk ends at a
token boundary found in the buffer's offsets, at least `GUARD_TOKENS` before the buffer's end
(the last tokens of a buffer can still merge with text not yet read), and is then re-tokenized
alone and shortened until it fits: a chunk's own token count never exceeds the budget, and the
chunks of a document concatenate to exactly the document.
"""

from __future__ import annotations

import codecs
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.evals.truncation import HFTokenCounter, as_token_counter
from qwenlong.memagent.interfaces import Chunk, DocumentReader

GUARD_TOKENS = 16
"""Tokens left between a cut and the end of the buffer while more text may follow. Byte-level
BPE merges only within a pre-token (a word, a number, a whitespace run), so a cut this far from
the buffer's end is where tokenizing the whole document would have put a boundary too, unless
a single pre-token is longer than the guard. Our choice."""

DEFAULT_BLOCK_CHARS = 65536
"""Characters per piece when slicing strings or reading files (MemAgentConfig.read_chars)."""

MIN_CHUNK_TOKENS = 8
"""Smallest budget accepted: one character can take up to 4 byte-level tokens, and a chunk
must always hold at least one character to make progress."""


def iter_text(text: str, block_chars: int = DEFAULT_BLOCK_CHARS) -> Iterator[str]:
    """`text` in consecutive slices of `block_chars` characters."""
    for start in range(0, len(text), block_chars):
        yield text[start : start + block_chars]


def iter_file(path: str | Path, block_chars: int = DEFAULT_BLOCK_CHARS) -> Iterator[str]:
    """A UTF-8 text file in blocks of about `block_chars` characters, without reading it whole.

    Undecodable bytes fail with the file and the byte offset where decoding broke.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"document file not found: {path}")
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as handle:
        while True:
            raw = handle.read(block_chars)
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as err:
                raise DatasetError(f"{path}: not UTF-8 text (byte {offset + err.start})") from None
            offset += len(raw)
            if text:
                yield text
            if not raw:
                return


def text_reader(text: str, block_chars: int = DEFAULT_BLOCK_CHARS) -> DocumentReader:
    """A `DocumentReader` over a string already in memory."""
    return lambda: iter_text(text, block_chars)


def file_reader(path: str | Path, block_chars: int = DEFAULT_BLOCK_CHARS) -> DocumentReader:
    """A `DocumentReader` that streams a file each time it is called."""
    return lambda: iter_file(path, block_chars)


def iter_chunks(
    pieces: str | Iterable[str],
    tokenizer: Any,
    chunk_tokens: int,
    block_chars: int = DEFAULT_BLOCK_CHARS,
) -> Iterator[Chunk]:
    """Sections of at most `chunk_tokens` tokens each, in order, concatenating to the input.

    `pieces` is the document as consecutive text pieces (or one string, sliced here); a piece
    longer than `block_chars` is sliced too, so the buffer never takes a whole document at
    once. `tokenizer` is the target model's fast HF tokenizer (or an `HFTokenCounter`).
    """
    if chunk_tokens < MIN_CHUNK_TOKENS:
        raise ConfigError(f"chunk_tokens is {chunk_tokens}, must be at least {MIN_CHUNK_TOKENS}")
    counter = _offset_counter(tokenizer)
    blocks = _reslice(
        iter_text(pieces, block_chars) if isinstance(pieces, str) else pieces, block_chars
    )
    buffer = ""
    exhausted = False
    chars_per_token = 4.0  # first guess; measured on every chunk cut
    index = start_token = 0
    while True:
        want = math.ceil((chunk_tokens + GUARD_TOKENS) * chars_per_token) + 64
        while not exhausted and len(buffer) < want:
            block = next(blocks, None)
            if block is None:
                exhausted = True
            else:
                buffer += block
        if not buffer:
            return
        window = buffer[:want]  # tokenize about one chunk, not the whole buffered block
        more = not exhausted or len(window) < len(buffer)
        encoded = counter.encode(window)
        n = len(encoded.ids)
        if not more and n <= chunk_tokens:
            yield Chunk(index, buffer, counter.count_tokens(buffer), start_token)
            return
        if more and n <= chunk_tokens + GUARD_TOKENS:
            # Too few tokens for a safe cut: look further, sized by what this window showed.
            chars_per_token = max(chars_per_token, len(window) / max(n, 1)) * 1.25
            continue
        text, n_tokens = _fit(counter, window, encoded.offsets, chunk_tokens)
        yield Chunk(index, text, n_tokens, start_token)
        buffer = buffer[len(text) :]
        chars_per_token = len(text) / max(n_tokens, 1) * 1.1
        index += 1
        start_token += n_tokens


def count_tokens_upto(
    pieces: str | Iterable[str],
    tokenizer: Any,
    limit: int,
    block_tokens: int = 8192,
    block_chars: int = DEFAULT_BLOCK_CHARS,
) -> int | None:
    """Tokens of the document, or None as soon as the count passes `limit`.

    Streams the document in chunks of `block_tokens`, so deciding that a 4M-token document is
    over a 256K budget reads only the first 256K tokens. The count is the sum over chunks, which
    can differ from a whole-document tokenization by a token or so per chunk boundary.
    """
    total = 0
    for chunk in iter_chunks(pieces, tokenizer, max(block_tokens, MIN_CHUNK_TOKENS), block_chars):
        total += chunk.n_tokens
        if total > limit:
            return None
    return total


def _offset_counter(tokenizer: Any) -> HFTokenCounter:
    counter = as_token_counter(tokenizer)
    if not getattr(counter.tokenizer, "is_fast", False):
        raise ConfigError(
            f"chunking needs a fast tokenizer (character offsets); got "
            f"{type(counter.tokenizer).__name__}"
        )
    return counter


def _reslice(pieces: Iterable[str], block_chars: int) -> Iterator[str]:
    """Pieces no longer than `block_chars`, so one huge piece cannot flood the buffer."""
    for piece in pieces:
        if len(piece) <= block_chars:
            yield piece
        else:
            yield from iter_text(piece, block_chars)


def _fit(
    counter: HFTokenCounter,
    buffer: str,
    offsets: list[tuple[int, int]] | None,
    chunk_tokens: int,
) -> tuple[str, int]:
    """The longest prefix of `buffer` ending at a token boundary that re-tokenizes to at most
    `chunk_tokens` tokens, with its count.

    Starts at the end of token `chunk_tokens` and backs off by the overshoot: re-tokenizing a
    prefix alone can give a different count than it had inside the buffer, when the cut falls
    inside a word or a multi-byte character.
    """
    assert offsets is not None  # _offset_counter guarantees a fast tokenizer
    keep = chunk_tokens
    while True:
        end = offsets[max(keep, 1) - 1][1]
        text = buffer[: max(end, 1)]  # at least one character, so the stream always advances
        n_tokens = counter.count_tokens(text)
        if n_tokens <= chunk_tokens or keep <= 1:
            return text, n_tokens
        keep -= n_tokens - chunk_tokens
