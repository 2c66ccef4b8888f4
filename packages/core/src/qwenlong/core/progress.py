"""Progress bars for the project's long loops, silent where nobody is watching.

Bars are drawn (with rich) only when stderr is a terminal and QWENLONG_PROGRESS is not "0", so
CI logs and redirected output stay clean: when off, nothing at all is written. A bar opened
while another is on screen becomes a second row of the same display (rich allows only one live
display at a time), so library code can use `track` without knowing who called it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sized
from contextlib import contextmanager
from typing import Protocol, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

ENV_VAR = "QWENLONG_PROGRESS"
"""Set to "0" to turn every progress bar off, terminal or not."""

_live: list[Progress] = []
"""The display currently on screen, if any (a stack of at most one)."""


class Advance(Protocol):
    """Moves a bar forward by `n` items."""

    def __call__(self, n: int = 1) -> None: ...


def progress_enabled() -> bool:
    """Whether bars are drawn: stderr is a terminal and QWENLONG_PROGRESS is not "0"."""
    return os.environ.get(ENV_VAR, "1") != "0" and sys.stderr.isatty()


def _skip(n: int = 1) -> None:
    """The `Advance` of a bar that is off."""


@contextmanager
def progress_bar(total: int | None, description: str = "") -> Iterator[Advance]:
    """A bar for `total` items (None: unknown, shows a count); yields `advance(n=1)`."""
    if not progress_enabled():
        yield _skip
        return
    if _live:
        progress = _live[-1]
        task = progress.add_task(description, total=total)
        try:
            yield lambda n=1: progress.advance(task, n)
        finally:
            progress.remove_task(task)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        _live.append(progress)
        try:
            task = progress.add_task(description, total=total)
            yield lambda n=1: progress.advance(task, n)
        finally:
            _live.pop()


def track(iterable: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
    """Yield the items of `iterable`, advancing a bar after each; `total` defaults to its len()."""
    if total is None and isinstance(iterable, Sized):
        total = len(iterable)
    with progress_bar(total, description) as advance:
        for item in iterable:
            yield item
            advance()
