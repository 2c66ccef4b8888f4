"""Leftovers of a local Ray whose driver was killed: recorded at start, killed by the next run.

A local Ray started by `ray.init()` runs gcs_server, raylet and their helpers as children of
the driver, and most die with it. The raylet's own children do not: after a SIGKILL of
`qwenlong train`, Ray 2.60's dashboard agent and runtime-env agent notice the raylet is gone,
then hang trying to report it to the dead GCS, and a worker sometimes stays too, each holding
memory and ports for good. Nothing of the dead driver is left to stop them, so the next run does.

`record` notes each local Ray this user starts: the driver's pid and start time (a pid alone
could be reused) and the Ray session folder, in a per-user folder under the temp directory.
`reap_leftovers`, called before a run starts its own Ray, takes every record whose driver is
gone and kills the processes of that session. They are found by what they cannot hide: an
open file under the session folder (their logs) or the folder in their command line; the
agents and workers rename themselves `ray::...`, so names are no use. Records of live drivers
(a concurrent run) are left alone. Linux only (/proc); elsewhere both are no-ops.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

PROC = Path("/proc")


def records_dir() -> Path:
    """This user's record folder (created private on first use)."""
    return Path(tempfile.gettempdir()) / f"qwenlong-ray-{os.getuid()}"


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when there is no such
    process. Compared with the recorded one, it tells a reused pid from the driver."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may itself contain spaces and parentheses.
    return int(stat.rsplit(")", 1)[1].split()[19])


def record(session_dir: str | Path) -> Path | None:
    """Note that this process started a local Ray with `session_dir`; returns the record
    (None where /proc is missing). Remove it with `forget` after a clean shutdown."""
    started = start_time(os.getpid())
    if started is None:
        return None
    folder = records_dir()
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{os.getpid()}-{started}.json"
    entry = {"driver_pid": os.getpid(), "driver_start": started, "session_dir": str(session_dir)}
    path.write_text(json.dumps(entry), encoding="utf-8")
    return path


def forget(path: Path | None) -> None:
    """Drop a record once its Ray has been shut down."""
    if path is not None:
        path.unlink(missing_ok=True)


def session_processes(session_dir: str | Path) -> list[int]:
    """This user's processes (other than this one) with an open file under `session_dir` or
    the folder in their command line."""
    folder = str(session_dir).rstrip("/")
    found = []
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to read
            if entry.stat().st_uid == os.getuid() and _belongs(entry, folder):
                found.append(int(entry.name))
    return found


def _belongs(process: Path, folder: str) -> bool:
    """Whether `process` names `folder` (or a path in it) in its arguments or holds a file
    open under it."""
    arguments = (process / "cmdline").read_bytes()
    key = folder.encode()
    if key + b"/" in arguments or key + b"\0" in arguments:
        return True
    for fd in (process / "fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            if os.readlink(fd).startswith(folder + "/"):
                return True
    return False


def reap_leftovers(wait_s: float = 5.0) -> list[int]:
    """Kill the processes of every recorded Ray session whose driver is gone; return their
    pids. Each such record is removed; records of live drivers stay."""
    folder = records_dir()
    if not folder.is_dir():
        return []
    killed: list[int] = []
    for path in sorted(folder.glob("*.json")):
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            driver, started = int(entry["driver_pid"]), int(entry["driver_start"])
            session = str(entry["session_dir"])
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # unreadable: nothing to act on
            continue
        if start_time(driver) == started:
            continue  # its driver still runs
        pids = session_processes(session)
        for pid in pids:
            with contextlib.suppress(OSError):  # exited meanwhile
                os.kill(pid, signal.SIGKILL)
        _wait_gone(pids, wait_s)
        if pids:
            log.warning(
                "killed %d Ray processes left by driver %d (%s): %s",
                len(pids),
                driver,
                session,
                " ".join(map(str, pids)),
            )
        killed += pids
        path.unlink(missing_ok=True)
    return killed


def _wait_gone(pids: list[int], wait_s: float) -> None:
    """Wait until the killed processes have exited (zombies count as gone)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if all(_gone(pid) for pid in pids):
            return
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    try:
        state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")
