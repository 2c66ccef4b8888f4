"""Exact token counts of joined contexts, encoding only the text around each join when it can.

A context is its pieces (documents, a cut distractor, a sample's own texts) joined by the
separator. Encoded whole, a 128K-token context costs about 0.2 s on one core, and assembly did
that once per sample, for the final length check. When the corpus's tokenizer is additive at
word ends (`assemble.word_ends`), the count follows from what is already known:

    piece i = head_i | interior_i | tail_i       (cut at its first and last word end)
    context = [head_0] interior_0 [tail_0 + sep + head_1] interior_1 [tail_1 + sep + head_2] ...
    count   = sum(count(piece_i) - count(head_i) - count(tail_i)) + sum(count([...]))

Every bracketed window and every head and tail is a few words, all encoded in one batch call;
interiors are never encoded. A piece without a cut (or whose count is not known exactly) is
taken whole into the window around it, so the sum stays exact for any text. Otherwise each
context is encoded whole, all of a batch in one call, which a fast tokenizer spreads over the
cores.
"""

from __future__ import annotations

from collections.abc import Sequence

from qwenlong.synth.assemble.word_ends import first_cut, last_cut
from qwenlong.synth.interfaces import Corpus

Counted = tuple[str, int | None]
"""A piece's text and its exact token count, or None where the count is not known exactly."""


class ContextCounter:
    """Counts contexts joined by one separator in the corpus's tokenizer."""

    def __init__(self, corpus: Corpus, separator: str) -> None:
        self.corpus = corpus
        self.separator = separator

    def count(self, contexts: Sequence[Sequence[Counted]]) -> list[int]:
        """The exact token count of each context: its non-empty pieces joined by the separator.

        Equal to `corpus.count_tokens(separator.join(texts))`; all encoding for all contexts is
        one `corpus.count_many` call.
        """
        splits = [self._split([p for p in pieces if p[0]]) for pieces in contexts]
        texts = [text for _, added, subtracted in splits for text in (*added, *subtracted)]
        counts = iter(self.corpus.count_many(texts))
        return [
            known + sum(next(counts) for _ in added) - sum(next(counts) for _ in subtracted)
            for known, added, subtracted in splits
        ]

    def _split(self, pieces: Sequence[Counted]) -> tuple[int, list[str], list[str]]:
        """(tokens known without encoding, texts whose counts add, texts whose counts subtract)."""
        if not self.corpus.additive_at_word_ends:
            return 0, [self.separator.join(text for text, _ in pieces)], []
        known, added, subtracted = 0, [], []
        window: list[str] = []  # the text since the last cut, still to be encoded
        for i, (text, tokens) in enumerate(pieces):
            if i:
                window.append(self.separator)
            first = first_cut(text) if tokens is not None else None
            if first is None or tokens is None:
                window.append(text)
                continue
            head, tail = text[:first], text[last_cut(text) or first :]
            window.append(head)
            added.append("".join(window))
            known += tokens
            subtracted += [head, tail]
            window = [tail]
        added.append("".join(window))
        return known, added, subtracted
