"""A killed driver's local Ray: bound to loopback, and its leftovers killed by the next run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qwenlong.rl import ray_leftovers

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


@pytest.fixture
def records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private record folder, so the test never acts on the user's real records."""
    folder = tmp_path / "records"
    monkeypatch.setattr(ray_leftovers, "records_dir", lambda: folder)
    return folder


def holder(path: Path) -> subprocess.Popen[bytes]:
    """A stand-in for a Ray agent: a process in its own session holding `path` open."""
    code = "import sys, time; f = open(sys.argv[1], 'a'); print('open', flush=True); time.sleep(60)"
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, start_new_session=True
    )
    assert process.stdout is not None and process.stdout.readline() == b"open\n"
    return process


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def write_record(folder: Path, driver: int, started: int, session: Path) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{driver}-{started}.json"
    entry = {"driver_pid": driver, "driver_start": started, "session_dir": str(session)}
    path.write_text(json.dumps(entry))
    return path


def test_leftovers_of_a_dead_driver_are_killed_and_a_live_drivers_are_not(
    records: Path, tmp_path: Path
) -> None:
    dead_session, live_session = tmp_path / "session_1", tmp_path / "session_2"
    similar = tmp_path / "session_12"  # shares a prefix with the dead session's folder
    for session in (dead_session, live_session, similar):
        (session / "logs").mkdir(parents=True)
    orphan = holder(dead_session / "logs" / "dashboard_agent.out")
    neighbour = holder(live_session / "logs" / "raylet.out")
    unrelated = holder(similar / "logs" / "raylet.out")
    try:
        dead = write_record(records, dead_pid(), 12345, dead_session)
        me = os.getpid()
        live = write_record(records, me, ray_leftovers.start_time(me) or 0, live_session)
        assert ray_leftovers.session_processes(dead_session) == [orphan.pid]

        assert ray_leftovers.reap_leftovers() == [orphan.pid]

        assert orphan.wait(5) == -signal.SIGKILL
        assert neighbour.poll() is None and unrelated.poll() is None
        assert not dead.exists() and live.exists()
        assert ray_leftovers.reap_leftovers() == []
    finally:
        for process in (orphan, neighbour, unrelated):
            if process.poll() is None:
                process.kill()
                process.wait()


def test_a_reused_pid_does_not_count_as_the_driver(records: Path, tmp_path: Path) -> None:
    session = tmp_path / "session_x"
    (session / "logs").mkdir(parents=True)
    orphan = holder(session / "logs" / "worker.out")
    try:
        write_record(
            records, os.getpid(), (ray_leftovers.start_time(os.getpid()) or 0) + 1, session
        )
        assert ray_leftovers.reap_leftovers() == [orphan.pid]
        assert orphan.wait(5) == -signal.SIGKILL
    finally:
        if orphan.poll() is None:
            orphan.kill()


def test_record_and_forget(records: Path, tmp_path: Path) -> None:
    path = ray_leftovers.record(tmp_path / "session_y")
    assert path is not None and path.parent == records
    entry = json.loads(path.read_text())
    assert entry["driver_pid"] == os.getpid()
    assert entry["driver_start"] == ray_leftovers.start_time(os.getpid())
    assert oct(records.stat().st_mode & 0o777) == "0o700"
    ray_leftovers.forget(path)
    assert not path.exists()


DRIVER = """
import os, sys, time
from pathlib import Path
import ray
from qwenlong.rl import ray_leftovers
from qwenlong.rl.config import RayConfig
from qwenlong.rl.ray_session import ray_session

ray_leftovers.records_dir = lambda: Path(sys.argv[1])
with ray_session(RayConfig(num_cpus=1)):
    worker = ray.get(ray.remote(lambda: os.getpid()).remote())
    session = ray._private.worker._global_node.get_session_dir_path()
    print(session, worker, flush=True)
    time.sleep(120)
"""


def listening_addresses(pids: list[int]) -> set[str]:
    psutil = pytest.importorskip("psutil")
    found = set()
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections(kind="inet")
        except psutil.Error:
            continue
        found |= {c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN}
    return found


@pytest.mark.slow
def test_a_sigkilled_drivers_ray_listens_on_loopback_and_is_reaped(records: Path) -> None:
    """A real local Ray started by `ray_session`: every port it opens is on loopback; after
    a SIGKILL of its driver, the next run's `reap_leftovers` leaves none of its processes."""
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(records)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert driver.stdout is not None
        session, worker = driver.stdout.readline().split()
        processes = ray_leftovers.session_processes(session)
        assert int(worker) in processes and len(processes) >= 4
        addresses = listening_addresses([driver.pid, *processes])
        assert addresses and addresses <= {"127.0.0.1", "::ffff:127.0.0.1"}, addresses
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    time.sleep(1)  # what dies with the driver has died by now
    left = ray_leftovers.session_processes(session)
    killed = ray_leftovers.reap_leftovers()
    assert set(left) <= set(killed)
    assert ray_leftovers.session_processes(session) == []
    assert list(records.glob("*.json")) == []
