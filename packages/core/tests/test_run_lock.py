"""RUN/.lock: one run per folder; a live owner is named, a dead one's lock is taken over."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwenlong.core.errors import ConfigError
from qwenlong.core.run_lock import LOCK_NAME, RunLock, ensure_run_folder


def _write_lock(folder: Path, pid: int, host: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname()}) + "\n")
    return path


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of another process that stays alive for the test."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_names_this_process_and_is_removed_on_exit(tmp_path: Path) -> None:
    with RunLock(tmp_path / "run") as lock:
        owner = json.loads(lock.path.read_text())
        assert owner == {"pid": os.getpid(), "host": socket.gethostname()}
    assert not (tmp_path / "run" / LOCK_NAME).exists()
    lock.release()  # twice is harmless


def test_a_live_owner_is_refused_by_pid(tmp_path: Path, live_pid: int) -> None:
    path = _write_lock(tmp_path, live_pid)
    with pytest.raises(ConfigError) as info:
        RunLock(tmp_path).acquire()
    message = str(info.value)
    assert f"another run (pid {live_pid}) is writing here" in message and "\n" not in message
    assert json.loads(path.read_text())["pid"] == live_pid  # left alone


def test_a_dead_owner_is_taken_over_with_a_warning(
    tmp_path: Path, dead_pid: int, caplog: pytest.LogCaptureFixture
) -> None:
    _write_lock(tmp_path, dead_pid)
    with caplog.at_level(logging.WARNING), RunLock(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert f"taking over the lock of pid {dead_pid}" in caplog.text


def test_another_host_cannot_be_checked_so_it_is_refused(tmp_path: Path, dead_pid: int) -> None:
    _write_lock(tmp_path, dead_pid, host="elsewhere")
    with pytest.raises(ConfigError, match=rf"another run \(pid {dead_pid} on elsewhere\)"):
        RunLock(tmp_path).acquire()


def test_this_pid_is_stale_unless_this_process_holds_the_lock(tmp_path: Path) -> None:
    _write_lock(tmp_path, os.getpid())  # left by an earlier process with the same pid
    refused = pytest.raises(ConfigError, match="this process already runs in this folder")
    with RunLock(tmp_path), refused:
        RunLock(tmp_path).acquire()


def test_an_unreadable_lock_is_refused(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text("")
    with pytest.raises(ConfigError, match=r"another run holds the lock .*unreadable"):
        RunLock(tmp_path).acquire()


def test_of_runs_started_together_exactly_one_gets_the_lock(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from qwenlong.core.errors import ConfigError
        from qwenlong.core.run_lock import RunLock
        sys.stdin.readline()  # start together
        try:
            RunLock({str(tmp_path / "run")!r}).acquire()
        except ConfigError:
            print("refused")
        else:
            print("won")
            time.sleep(1)
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    for proc in procs:
        proc.stdin.write("go\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
    outcomes = sorted(proc.communicate(timeout=60)[0].strip() for proc in procs)
    assert outcomes == ["refused", "refused", "refused", "won"]


def test_a_file_or_a_file_parent_is_not_a_run_folder(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ConfigError, match=rf"{afile}: is a file, not a folder"):
        ensure_run_folder(afile)
    with pytest.raises(ConfigError, match="a parent of this path is a file"):
        ensure_run_folder(afile / "run")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through any permission")
def test_an_unwritable_folder_is_one_line(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(ConfigError, match="not writable"):
            ensure_run_folder(locked)
        with pytest.raises(ConfigError, match="cannot create the folder"):
            ensure_run_folder(locked / "run")
    finally:
        locked.chmod(0o700)
