"""Word ends where a tokenizer never merges, so a long text can be counted in pieces.

A *cut* is a position p of a text with text[p - 1] an ASCII letter and text[p] a space or a
newline. For the tokenizers `additive_at_word_ends` accepts, count(x + y) == count(x) +
count(y) whenever x + y has a cut at len(x), which is what lets assembly count a 128K-token
context from its documents' cached counts and a few short texts around each join
(`assemble.joins`). Why it holds, stage by stage of a Hugging Face fast tokenizer:

- added tokens (`<think>`, `<|im_end|>`, ...) are found in the raw text first. None of the
  accepted tokens contains a space or a newline, or strips or checks its neighbours
  (lstrip/rstrip/single_word), so no match spans a cut or reaches across one.
- NFC normalization: ASCII letters, spaces and newlines are starters (never reordered) and
  none is the second half of any canonical composition, so the letter at p - 1 joins nothing
  before it, the space or newline at p joins nothing before it: NFC(x + y) == NFC(x) +
  NFC(y), and NFC(x) still ends with that letter (a test checks this over all of Unicode).
- the split regex (`PROVEN_PATTERNS`, Qwen2/Qwen3's, Llama-3's and the tiny model's): the only
  alternatives that can match a letter are the contractions (`'s`, `'ll`, ...; fixed, ending
  on a letter) and `[^\\r\\n\\p{L}\\p{N}]?\\p{L}+` (a greedy run of letters), so the piece holding
  text[p - 1] ends exactly at p, whatever comes before it or after p. The next search starts
  at p, and with no lookbehind in these patterns it reads only text[p:], exactly as it would
  on y alone. Lookahead (`\\s+(?!\\S)`) and greedy runs read at most to the end of their piece
  plus one character, so the pieces of x are the same whether y follows or not.
- byte-level mapping and BPE work inside one piece at a time (no dropout), so equal pieces
  give equal tokens.

Counting uses no special tokens (`add_special_tokens=False`), so the post-processor adds
nothing. Anything outside this shape (another normalizer or pre-tokenizer, a SentencePiece
model, another regex) is not accepted and its contexts are encoded whole. Tests check the
property against full encodes on random texts for each accepted pattern.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from qwenlong.core.records import Document
from qwenlong.core.tokenizer_train import PRETOKENIZE_PATTERN
from qwenlong.synth.interfaces import Corpus, CountBatch, CountTokens

_CUT = re.compile(r"[A-Za-z](?=[ \n])")
_CUT_CHARS = " \n"

QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
"""The split regex of the Qwen2, Qwen2.5 and Qwen3 tokenizers (their tokenizer.json)."""
LLAMA3_PATTERN = QWEN2_PATTERN.replace(r"\p{N}|", r"\p{N}{1,3}|", 1)
"""Llama-3's: Qwen's with digits grouped by up to three."""
PROVEN_PATTERNS = frozenset({QWEN2_PATTERN, LLAMA3_PATTERN, PRETOKENIZE_PATTERN})
"""Split regexes for which the module docstring's argument has been checked by hand."""


def first_cut(text: str) -> int | None:
    """The first cut of `text`, or None when it has none."""
    found = _CUT.search(text)
    return found.end() if found else None


def last_cut(text: str) -> int | None:
    """The last cut of `text`, or None. Looks at a short tail first: documents end near one."""
    span = 64
    while True:
        start = max(0, len(text) - span)
        found = list(_CUT.finditer(text, start))
        if found:
            return found[-1].end()
        if start == 0:
            return None
        span *= 16


def additive_at_word_ends(tokenizer: Any) -> bool:
    """Whether `tokenizer` (a transformers fast tokenizer) has the shape the module proves for.

    Read from its serialized backend, so the answer is about the tokenizer that counts, not
    its class or name. False for anything else, including slow tokenizers.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    spec = json.loads(backend.to_str())
    return (
        _nfc_or_none(spec.get("normalizer"))
        and _split_then_bytes(spec.get("pre_tokenizer"))
        and (spec.get("model") or {}).get("type") == "BPE"
        and not spec["model"].get("dropout")
        and all(_inert(token) for token in spec.get("added_tokens") or [])
    )


def _nfc_or_none(normalizer: dict[str, Any] | None) -> bool:
    if normalizer is None:
        return True
    if normalizer.get("type") == "Sequence":
        return all(_nfc_or_none(n) for n in normalizer.get("normalizers", []))
    return normalizer.get("type") == "NFC"


def _split_then_bytes(pre: dict[str, Any] | None) -> bool:
    """A proven split regex (isolated pieces) followed by a byte-level map that splits no more."""
    if pre is None or pre.get("type") != "Sequence" or len(pre.get("pretokenizers", [])) != 2:
        return False
    split, byte_level = pre["pretokenizers"]
    return (
        split.get("type") == "Split"
        and (split.get("pattern") or {}).get("Regex") in PROVEN_PATTERNS
        and split.get("behavior") == "Isolated"
        and not split.get("invert")
        and byte_level.get("type") == "ByteLevel"
        and not byte_level.get("add_prefix_space")
        and not byte_level.get("use_regex", True)
    )


def _inert(token: dict[str, Any]) -> bool:
    """An added token that can neither span a cut nor reach across one."""
    content = token.get("content", "")
    return not (
        any(c in content for c in _CUT_CHARS)
        or token.get("lstrip")
        or token.get("rstrip")
        or token.get("single_word")
    )


def tokenizer_corpus(documents: list[Document], counter: CountTokens, tokenizer: Any) -> Corpus:
    """A corpus that counts in `tokenizer`, as fast as the tokenizer allows.

    One text at a time with `counter`; many in one batch call (`batch_counter`, which the Rust
    tokenizer spreads over every core); finished contexts by their joins when
    `additive_at_word_ends(tokenizer)`.
    """
    return Corpus(documents, counter, batch_counter(tokenizer), additive_at_word_ends(tokenizer))


def batch_counter(tokenizer: Any) -> CountBatch:
    """Token counts of many texts in one call, equal to `HFTokenCounter.count_tokens` of each.

    The first text goes through transformers' own call, which sets the Rust tokenizer up as for
    any plain call (no truncation or padding, its special-token setting); the rest go straight
    to that tokenizer's batch encoding, without character offsets (`encode_batch_fast`: the
    same ids, a third less time). transformers would turn every encoding into Python lists and
    dicts (about 20 us a text), which for the hundreds of short texts around joins costs twice
    the encoding itself. A slow tokenizer gets transformers' batch call.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)

    def through_transformers(texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        ids = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [len(one) for one in ids]

    def through_backend(texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        first = through_transformers(texts[:1])
        return first + [
            len(e) for e in backend.encode_batch_fast(texts[1:], add_special_tokens=False)
        ]

    return through_transformers if backend is None else through_backend
