"""Files that are either complete or absent: written aside, then renamed over the target.

A resumed run trusts what it finds on disk (a stage's ids, a generator's info file, trimmed
metrics), so a kill mid-write must never leave a half-written file under the real name. The
rename is atomic on POSIX file systems; the aside file is `NAME.partial` in the same folder
(the same file system), overwritten by the next attempt.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


@contextmanager
def atomic_writer(path: str | Path) -> Iterator[TextIO]:
    """A text handle whose content replaces `path` only when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        yield handle
    partial.replace(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """`path.write_text(text)`, complete or not at all."""
    with atomic_writer(path) as handle:
        handle.write(text)
    return Path(path)
