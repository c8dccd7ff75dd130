"""No loss, no duplicates: `kill -9` or Ctrl-C in the middle of a stored scan, then `--resume`.

A real `pacsaudit scan` process scans a fleet of 200 simulated PACS at a limited rate, storing
into SQLite; it is killed mid-scan, resumed, and the stored scan must hold every endpoint
exactly once, with the work redone bounded by what was in flight.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacsaudit.lab.fleet import ThreadedFleet, many_members, start_fleet_in_thread
from pacsaudit.lab.simulator import PacsPolicy
from pacsaudit.storage import ScanState, ScanStore

ROOT = Path(__file__).resolve().parents[2]
FLEET = 200
CONCURRENCY = 8


@pytest.fixture(scope="module")
def fleet() -> Iterator[ThreadedFleet]:
    with start_fleet_in_thread(many_members(PacsPolicy(), FLEET, base="127.89.0.1")) as running:
        yield running


def _associations(fleet: ThreadedFleet) -> int:
    return sum(int(server.associations) for _, server in fleet.servers)


def _pacsaudit(db: str, *args: str) -> subprocess.Popen[bytes]:
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "PACSAUDIT_DB": db}
    return subprocess.Popen(
        [sys.executable, "-m", "pacsaudit", "scan", *args, "-q", "-o", os.devnull],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def _stored(db: str, scan_id: int = 1) -> int:
    """Results stored so far (0 before the scan exists)."""
    with ScanStore.open(db) as store:
        if store.scan(scan_id) is None:
            return 0
        return sum(1 for _ in store.observations(scan_id))


def _interrupt_then_resume(
    fleet: ThreadedFleet, tmp_path: Path, sig: signal.Signals, *extra: str, stored_first: int = 40
) -> tuple[int, int]:
    db = f"sqlite:///{tmp_path / 'history.db'}"
    before = _associations(fleet)
    # The store made (and its modules loaded here) before the scan starts: on a cold machine
    # the first look took long enough for the whole scan to finish before the signal.
    assert _stored(db) == 0
    scan = _pacsaudit(db, "127.89.0.1-200", "-p", "11112", "--rate", "40", "--concurrency", str(CONCURRENCY),
                      "--no-ae-dictionary", *extra)  # fmt: skip
    deadline = time.monotonic() + 30
    while _stored(db) < stored_first and time.monotonic() < deadline and scan.poll() is None:
        time.sleep(0.1)
    assert scan.poll() is None, "the scan ended before it could be interrupted"
    scan.send_signal(sig)
    _, stderr = scan.communicate(timeout=30)
    with ScanStore.open(db) as store:
        record = store.scan(1)
        assert record is not None
        interrupted_state, mark = record.state, record.low_water_mark
        assert 0 < mark < FLEET
    if sig is signal.SIGINT:
        assert scan.returncode == 130, stderr
        assert interrupted_state is ScanState.INTERRUPTED
    resumed = _pacsaudit(db, "--resume", "1")
    _, stderr = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, stderr.decode(errors="replace")
    with ScanStore.open(db) as store:
        record = store.scan(1)
        assert record is not None and record.state is ScanState.FINISHED
        endpoints = [(r.ip, r.port) for r in store.observations(1)]
    assert len(endpoints) == len(set(endpoints)) == FLEET, "every endpoint exactly once"
    assert set(endpoints) == {(f"127.89.0.{i}", 11112) for i in range(1, FLEET + 1)}
    return _associations(fleet) - before, mark


def test_kill_9_then_resume_loses_and_duplicates_nothing(fleet: ThreadedFleet, tmp_path: Path) -> None:
    associations, mark = _interrupt_then_resume(fleet, tmp_path, signal.SIGKILL)
    # Redone: what was in flight or not yet flushed (at most ~1 s of results at 40/s) when killed.
    assert FLEET <= associations <= FLEET + CONCURRENCY + 45, (associations, mark)


def test_ctrl_c_marks_the_scan_interrupted_and_resume_finishes_it(
    fleet: ThreadedFleet, tmp_path: Path
) -> None:
    associations, _ = _interrupt_then_resume(fleet, tmp_path, signal.SIGINT)
    assert FLEET <= associations <= FLEET + CONCURRENCY, (
        "Ctrl-C flushes what was done: only in-flight work is redone"
    )


def test_kill_9_of_a_two_process_scan_then_resume(fleet: ThreadedFleet, tmp_path: Path) -> None:
    """Each worker stores its own results; the coordinator keeps the lowest of their marks."""
    associations, mark = _interrupt_then_resume(
        fleet, tmp_path, signal.SIGKILL, "--workers", "2", stored_first=120
    )
    assert FLEET <= associations <= FLEET + CONCURRENCY + 60, (associations, mark)
