"""The kill-and-resume harness of tests/test_kill_resume_*.py: run a job, SIGKILL a copy of it
part-way, rerun it, and compare the two run folders file by file (the same relative paths,
dotfiles included, and the same bytes, with only the named differences removed)."""

from __future__ import annotations

import fnmatch
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwenlong.app.cli import main
from qwenlong.core.run_lock import LOCK_NAME

KILL_DEADLINE_S = 240.0
"""How long a killed run may take to get part-way (the slowest, train, needs about 10 s)."""


# --------------------------------------------------------------------------- comparing folders


@dataclass(frozen=True)
class Differs:
    """Why a file of a resumed run may differ from the uninterrupted run's, and what is compared
    instead of its bytes: `compare(data)` of both files, or nothing when `compare` is None."""

    reason: str
    compare: Callable[[bytes], object] | None


def assert_same_files(
    straight: Path, resumed: Path, differs: Mapping[str, Differs] | None = None
) -> None:
    """`straight` and `resumed` hold the same relative paths with the same bytes, except the
    files matching a pattern (fnmatch, relative path) of `differs`, compared its way instead.

    Every pattern must match a file, so the list of exceptions cannot outlive the difference it
    names; neither folder may be empty or hold a run lock.
    """
    differs = differs or {}
    a, b = _files(straight), _files(resumed)
    assert a, f"{straight} holds no files"
    missing, extra = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
    assert not missing and not extra, (
        f"only in the uninterrupted run: {missing}; only in the resumed run: {extra}"
    )
    assert LOCK_NAME not in a, f"{straight}/{LOCK_NAME} left behind by a finished run"
    unmatched = [p for p in differs if not fnmatch.filter(a, p)]
    assert not unmatched, f"patterns of files said to differ match no file: {unmatched}"
    for name in sorted(a):
        rule = next((d for p, d in differs.items() if fnmatch.fnmatchcase(name, p)), None)
        if rule is None:
            assert a[name] == b[name], f"{name} differs between the uninterrupted and resumed runs"
        elif rule.compare is not None:
            assert rule.compare(a[name]) == rule.compare(b[name]), f"{name} ({rule.reason})"


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def jsonl_without(*keys: str, replace: Mapping[str, str] | None = None) -> Callable[[bytes], Any]:
    """The records of a JSONL (or JSON) file with `keys` dropped at any depth (a key ending in
    "*" drops every key with that prefix), after replacing each text `replace` names."""

    def compare(data: bytes) -> Any:
        text = text_replacing(replace or {})(data)
        return [_drop(json.loads(line), keys) for line in text.splitlines() if line.strip()]

    return compare


def text_replacing(replace: Mapping[str, str]) -> Callable[[bytes], str]:
    """The file's text with each text `replace` names replaced (a folder's own path)."""

    def compare(data: bytes) -> str:
        text = data.decode()
        for old, new in replace.items():
            text = text.replace(old, new)
        return text

    return compare


def json_without(*keys: str, replace: Mapping[str, str] | None = None) -> Callable[[bytes], Any]:
    """`jsonl_without` for a file holding one (indented) JSON value."""
    one = jsonl_without(*keys, replace=replace)
    return lambda data: one(json.dumps(json.loads(data)).encode())


def _drop(value: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _drop(v, keys) for k, v in value.items() if not _matches(k, keys)}
    if isinstance(value, list):
        return [_drop(v, keys) for v in value]
    return value


def _matches(key: str, keys: tuple[str, ...]) -> bool:
    return any(key.startswith(k[:-1]) if k.endswith("*") else key == k for k in keys)


# --------------------------------------------------------------------------- running and killing


def _env() -> dict[str, str]:
    return {**os.environ, "QWENLONG_PROGRESS": "0", "OMP_NUM_THREADS": "1"}


def run_straight(*args: str | Path) -> None:
    """`qwenlong ARGS` to completion in this process (no interpreter start, no model reload)."""
    main([str(a) for a in args])


def run_killed(
    args: list[str | Path], part_way: Callable[[], bool] | None, log: Path, prelude: str = ""
) -> None:
    """`qwenlong ARGS` in a subprocess, SIGKILLed as soon as `part_way()` holds (polled every
    10 ms). `prelude` is Python run before the CLI in that process; with `part_way` None it is
    the prelude that makes the process SIGKILL itself, at a moment polling cannot catch."""
    code = f"{prelude}\nimport sys\nfrom qwenlong.app.cli import main\nmain(sys.argv[1:])"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *map(str, args)],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        deadline, gave_up = time.monotonic() + KILL_DEADLINE_S, False
        while proc.poll() is None:
            if part_way is not None and part_way():
                proc.send_signal(signal.SIGKILL)
                break
            if time.monotonic() > deadline:
                proc.kill()
                gave_up = True
                break
            time.sleep(0.01)
        code_at_end = proc.wait()
    tail = log.read_text()[-3000:]
    assert not gave_up, f"the run got nowhere in {KILL_DEADLINE_S:.0f} s:\n{tail}"
    assert code_at_end == -signal.SIGKILL, (
        f"the run ended (exit {code_at_end}) without being killed part-way:\n{tail}"
    )


def die_on_truncating(name: str) -> str:
    """A prelude for `run_killed`: the process SIGKILLs itself as soon as it has opened for
    writing (so truncated) a file whose name starts with `name` (`name.partial` included), as a
    kill in the middle of that write would leave it."""
    return f"""
import os, pathlib, signal
open_path = pathlib.Path.open
def open_then_die(self, mode="r", *args, **kwargs):
    handle = open_path(self, mode, *args, **kwargs)
    if "w" in mode and self.name.startswith({name!r}):
        os.kill(os.getpid(), signal.SIGKILL)
    return handle
pathlib.Path.open = open_then_die
"""


def lines_with(path: Path, text: str) -> int:
    return path.read_text().count(text) if path.exists() else 0
