"""The CLI's history commands on both backends, against real scans of a simulated lab."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacsaudit.lab.fleet import LabMember, ThreadedFleet, start_fleet_in_thread
from pacsaudit.lab.simulator import PacsPolicy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fleet() -> Iterator[ThreadedFleet]:
    members = [
        LabMember(name=f"m{i}", description="", host=f"127.91.0.{i}", port=11112,
                  behaviour=PacsPolicy(), expected="", expected_status=None)
        for i in (1, 2, 3)
    ]  # fmt: skip
    with start_fleet_in_thread(members) as running:
        yield running


def _pacsaudit(url: str, *args: str) -> str:
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "PACSAUDIT_DB": url, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "pacsaudit", *args], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _finished(listing: str) -> list[int]:
    """Ids of the finished scans in `pacsaudit scans` table rows."""
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in listing.splitlines() if "│" in line]
    return sorted(int(row[0]) for row in rows if row and row[0].isdigit() and row[-1] == "finished")


@pytest.mark.usefixtures("fleet")
def test_scan_scans_export_and_diff_on_each_backend(url: str) -> None:
    before = _finished(_pacsaudit(url, "scans"))
    _pacsaudit(url, "scan", "127.91.0.1-4", "-p", "11112", "-q", "-o", os.devnull)
    _pacsaudit(url, "scan", "127.91.0.1-4", "-p", "11112", "-q", "-o", os.devnull)
    ids = _finished(_pacsaudit(url, "scans"))
    assert len(ids) == len(before) + 2
    exported = [json.loads(line) for line in _pacsaudit(url, "export", str(ids[-1])).splitlines()]
    assert sorted(r["ip"] for r in exported) == ["127.91.0.1", "127.91.0.2", "127.91.0.3"]
    diff = json.loads(_pacsaudit(url, "diff", str(ids[-2]), str(ids[-1]), "--format", "json"))
    assert (diff["new"], diff["gone"]) == ([], [])
