"""One run at a time per run folder: RUN/.lock names the process that writes there.

Two commands writing one folder at once corrupt it without an error: both append the same
triples, both write every prediction, and each resumes from a state the other is changing. The
lock file is created with O_CREAT | O_EXCL, which the OS grants to exactly one process, and
holds `{"pid": ..., "host": ...}` so a refusal can say who holds it.

A process killed with SIGKILL never removes its lock. A lock whose pid no longer runs on this
host is therefore taken over, with a warning; one held from another host cannot be checked and
is refused, as is one naming this very process if this process holds it (a run opened twice).
A lock naming this process's pid but not held by it was left by an earlier process that had the
same pid (containers reuse low pids) and is stale too.

Taking over a stale lock removes it only if it still names the dead owner read a moment before,
then creates it again with O_EXCL, so of two runs that find the same stale lock one wins and the
other is refused; the window between that check and the removal is microseconds, not closed.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import Any

from qwenlong.core.errors import ConfigError

LOCK_NAME = ".lock"
"""The lock's file name inside the run folder."""

log = logging.getLogger(__name__)

_HELD: set[Path] = set()
"""Lock files this process holds (resolved), to tell its own lock from a stale one of its pid."""


def ensure_run_folder(folder: Path) -> Path:
    """Create `folder` (and its parents) if needed, or fail in one line saying why it cannot
    hold a run: it is a file, a parent is a file, or it cannot be created or written."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: is a file, not a folder; choose another --out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(
            f"{folder}: a parent of this path is a file; choose another --out"
        ) from None
    except OSError as err:
        raise ConfigError(f"{folder}: cannot create the folder ({err.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{folder}: the folder is not writable; choose another --out")
    return folder


class RunLock:
    """RUN/.lock held from `acquire` (or entering the `with`) to `release` (or leaving it)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._owner: dict[str, Any] | None = None

    def acquire(self) -> None:
        """Create the lock, taking over a stale one; `ConfigError` if a live run holds it."""
        ensure_run_folder(self.folder)
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(3):  # a stale lock costs one retry; a racing run wins, then is live
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = _read_owner(self.path)
                if owner is None or not self._stale(owner, me):
                    raise ConfigError(_held_message(self.folder, self.path, owner, me)) from None
                log.warning(
                    "%s: taking over the lock of pid %s, which is no longer running",
                    self.folder,
                    owner["pid"],
                )
                if _read_owner(self.path) == owner:
                    self.path.unlink(missing_ok=True)
                continue
            except OSError as err:
                raise ConfigError(f"{self.folder}: cannot write here ({err.strerror})") from None
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(me) + "\n")
            self._owner = me
            _HELD.add(self.path.resolve())
            return
        raise ConfigError(_held_message(self.folder, self.path, _read_owner(self.path), me))

    def release(self) -> None:
        """Remove the lock if this process still holds it; safe to call twice."""
        if self._owner is None:
            return
        if _read_owner(self.path) == self._owner:
            self.path.unlink(missing_ok=True)
        _HELD.discard(self.path.resolve())
        self._owner = None

    def _stale(self, owner: dict[str, Any], me: dict[str, Any]) -> bool:
        if owner["host"] != me["host"]:
            return False  # another machine's pid cannot be checked from here
        if owner["pid"] == me["pid"]:
            return self.path.resolve() not in _HELD
        return not _pid_alive(owner["pid"])

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_owner(path: Path) -> dict[str, Any] | None:
    """The lock's {"pid", "host"}, or None when it is gone, empty or not ours to read."""
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
        return None
    if not isinstance(owner.get("host"), str):
        return None
    return owner


def _pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0 checks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def _held_message(
    folder: Path, path: Path, owner: dict[str, Any] | None, me: dict[str, Any]
) -> str:
    if owner is None:
        return (
            f"{folder}: another run holds the lock ({path} is unreadable); "
            f"remove {path} if no run is writing there"
        )
    if owner["pid"] == me["pid"] and owner["host"] == me["host"]:
        return f"{folder}: this process already runs in this folder"
    where = "" if owner["host"] == me["host"] else f" on {owner['host']}"
    return (
        f"{folder}: another run (pid {owner['pid']}{where}) is writing here; wait for it or "
        f"choose another --out (remove {path} only if that process is gone)"
    )
