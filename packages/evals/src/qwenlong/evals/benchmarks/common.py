"""Small pieces every benchmark loader shares: subset choice, token counts, number formatting."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

from qwenlong.core.errors import ConfigError
from qwenlong.core.records import TaskSample

TokenCounter = Callable[[str], int]
"""Counts tokens of a text in the target tokenizer (e.g. `lambda s: len(tok.encode(s))`)."""


def resolve_subset(benchmark: str, subset: str | None, allowed: Sequence[str], default: str) -> str:
    """`subset`, or `default` when None; an unknown name is a config error listing the known ones.

    Names compare case-insensitively ("128k" is "128K") because they come from YAML and the
    command line, where people type them as they remember them.
    """
    if subset is None:
        return default
    by_folded = {name.casefold(): name for name in allowed}
    if subset.casefold() in by_folded:
        return by_folded[subset.casefold()]
    close = difflib.get_close_matches(subset, list(allowed), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(
        f"unknown subset {subset!r} for benchmark {benchmark!r}{hint}; known: {', '.join(allowed)}"
    )


def fill_context_tokens(
    samples: list[TaskSample], count_tokens: TokenCounter | None
) -> list[TaskSample]:
    """Set `context_tokens` on every sample when a counter is given; returns the same list."""
    if count_tokens is not None:
        for sample in samples:
            sample.context_tokens = count_tokens(sample.context)
    return samples


def number_text(value: int | float) -> str:
    """A gold number as text the way Python prints it: `12`, `12.0`, `0.1`, `1e-05`.

    `repr` of a float is the shortest string that reads back to the same float, which is what
    the official DocMath code compares against after `float(...)`.
    """
    return repr(value)
