"""`difflib.SequenceMatcher(None, a, b).ratio()` for strings: the same value, about 3x faster.

MRCR's official grade is that ratio on texts of hundreds to thousands of characters, and in
pure-Python difflib it costs milliseconds per pair, far more than every other metric together.
This module runs difflib's own algorithm (CPython Lib/difflib.py: `__chain_b`,
`find_longest_match`, `get_matching_blocks`) specialised to the grader's arguments, so every
tie is broken the same way and the result is the same float:

- no junk function, autojunk on: when `b` has 200+ characters, a character occurring more than
  len(b) // 100 + 1 times is "popular" and is not indexed;
- the longest-match scan visits only the positions of `a` whose character is indexed in `b`.
  difflib visits every position, but at any other position its run table becomes empty; we
  reproduce that by clearing the table whenever the visited positions are not consecutive;
- candidate positions in `b` below the window are skipped by bisection instead of one by one;
- a match is extended over equal characters 32 at a time (slice comparison), then one by one;
- only the total size of the matching blocks is kept, which is all `ratio` needs; blocks are
  still found in difflib's order, each from its own window, so the total is identical;
- equal strings return 1.0 at once: difflib's first match on equal strings always extends over
  the whole string (extension ignores popularity), giving 2n / 2n = 1.0.

Measured on 300-3,000-character prose pairs: about 1 ms instead of 3 ms per pair. The tests
compare against `difflib` on 1,500 random pairs (small alphabets for ties and popular
characters, lengths around the 200 threshold, equal and empty strings).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

_CHUNK = 32
"""Characters compared at once while extending a match (slice equality runs in C)."""


def _positions(text: str, char: str) -> list[int]:
    """Ascending positions of `char` in `text` (str.find runs in C)."""
    found = []
    at = text.find(char)
    while at >= 0:
        found.append(at)
        at = text.find(char, at + 1)
    return found


def _index_b(b: str) -> dict[str, list[int]]:
    """difflib's `b2j` with autojunk: character -> ascending positions, popular ones dropped."""
    counts = Counter(b)
    limit = len(b) // 100 + 1 if len(b) >= 200 else len(b)
    return {char: _positions(b, char) for char, count in counts.items() if count <= limit}


def _longest_match(
    a: str,
    b: str,
    b2j: dict[str, list[int]],
    anchors: list[int],
    window: tuple[int, int, int, int],
) -> tuple[int, int, int]:
    """difflib's `find_longest_match(alo, ahi, blo, bhi)` for a junk-free matcher."""
    alo, ahi, blo, bhi = window
    besti, bestj, bestsize = alo, blo, 0
    runs: dict[int, int] = {}
    previous = -2
    for i in anchors[bisect_left(anchors, alo) : bisect_left(anchors, ahi)]:
        if i != previous + 1:
            runs = {}  # difflib passed a position with no indexed character: runs reset
        previous = i
        positions = b2j[a[i]]
        new_runs: dict[int, int] = {}
        run_before = runs.get
        for j in positions[bisect_left(positions, blo) :]:
            if j >= bhi:
                break
            k = new_runs[j] = run_before(j - 1, 0) + 1
            if k > bestsize:
                besti, bestj, bestsize = i - k + 1, j - k + 1, k
        runs = new_runs
    # Extend over equal characters, popular ones included, in chunks and then one by one.
    while (
        besti - _CHUNK >= alo
        and bestj - _CHUNK >= blo
        and a[besti - _CHUNK : besti] == b[bestj - _CHUNK : bestj]
    ):
        besti, bestj, bestsize = besti - _CHUNK, bestj - _CHUNK, bestsize + _CHUNK
    while besti > alo and bestj > blo and a[besti - 1] == b[bestj - 1]:
        besti, bestj, bestsize = besti - 1, bestj - 1, bestsize + 1
    end_a, end_b = besti + bestsize, bestj + bestsize
    while (
        end_a + _CHUNK <= ahi
        and end_b + _CHUNK <= bhi
        and a[end_a : end_a + _CHUNK] == b[end_b : end_b + _CHUNK]
    ):
        end_a, end_b = end_a + _CHUNK, end_b + _CHUNK
    while end_a < ahi and end_b < bhi and a[end_a] == b[end_b]:
        end_a, end_b = end_a + 1, end_b + 1
    bestsize = end_a - besti
    return besti, bestj, bestsize


def matched_characters(a: str, b: str) -> int:
    """Total size of difflib's matching blocks between `a` and `b` (autojunk on, no junk)."""
    if a == b:
        return len(a)
    b2j = _index_b(b)
    anchors = sorted(i for char in b2j.keys() & set(a) for i in _positions(a, char))
    total = 0
    queue = [(0, len(a), 0, len(b))]
    while queue:
        alo, ahi, blo, bhi = window = queue.pop()
        i, j, k = _longest_match(a, b, b2j, anchors, window)
        if k:
            total += k
            if alo < i and blo < j:
                queue.append((alo, i, blo, j))
            if i + k < ahi and j + k < bhi:
                queue.append((i + k, ahi, j + k, bhi))
    return total


def sequence_ratio(a: str, b: str) -> float:
    """Exactly `difflib.SequenceMatcher(None, a, b).ratio()`: 2 * matches / (len(a) + len(b))."""
    length = len(a) + len(b)
    if length == 0:
        return 1.0
    return 2.0 * matched_characters(a, b) / length
