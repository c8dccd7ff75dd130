"""`pacsaudit diff` over two real scans of a lab whose membership changes between them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pacsaudit.lab.fleet import LabMember, start_fleet_in_thread
from pacsaudit.lab.simulator import PacsPolicy

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT.parent / "shared" / "tools" / "check-contract.py"
OPEN = PacsPolicy()
CHECKED = PacsPolicy(called_aets=frozenset({"ARCHIVE"}))


def _members(policies: dict[int, PacsPolicy]) -> list[LabMember]:
    return [
        LabMember(
            name=f"m{last}",
            description="",
            host=f"127.90.0.{last}",
            port=11112,
            behaviour=policy,
            expected="",
            expected_status=None,
        )
        for last, policy in policies.items()
    ]


def _pacsaudit(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "PACSAUDIT_DB": f"sqlite:///{db}", "COLUMNS": "160"}
    done = subprocess.run(
        [sys.executable, "-m", "pacsaudit", *args], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    return done


def _scan(db: Path, policies: dict[int, PacsPolicy], targets: str) -> None:
    with start_fleet_in_thread(_members(policies)):
        _pacsaudit(db, "scan", targets, "-p", "11112", "-q", "-o", os.devnull, "--no-ae-dictionary",
                   "--called-ae", "ARCHIVE")  # fmt: skip


def test_diff_of_a_changing_lab(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    # Scan 1: five systems. Scan 2: .5 is gone, .7 is new, .2 now checks the called AE title.
    _scan(db, {1: OPEN, 2: OPEN, 3: OPEN, 4: CHECKED, 5: OPEN}, "127.90.0.1-8")
    _scan(db, {1: OPEN, 2: CHECKED, 3: OPEN, 4: CHECKED, 7: OPEN}, "127.90.0.1-8")
    # Scan 3 covers only .1-.3: what it did not look at is "not rescanned", never "gone".
    _scan(db, {1: OPEN, 2: CHECKED, 3: OPEN}, "127.90.0.1-3")

    listing = _pacsaudit(db, "scans").stdout
    assert "finished" in listing and " 3 " in listing

    out = tmp_path / "diff.json"
    _pacsaudit(db, "diff", "1", "2", "--format", "json", "-o", str(out))
    doc = json.loads(out.read_text())
    assert [(s["ip"], s["port"]) for s in doc["new"]] == [("127.90.0.7", 11112)]
    assert [(s["ip"], s["port"]) for s in doc["gone"]] == [("127.90.0.5", 11112)]
    (changed,) = doc["changed"]
    assert changed["ip"] == "127.90.0.2"
    kinds = {c["kind"] for c in changed["changes"]}
    assert "closed-to-strangers" in kinds or "called-ae-check-added" in kinds, kinds
    checked = subprocess.run(
        [sys.executable, str(CONTRACT), "diff", str(out)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout

    narrow = json.loads(_pacsaudit(db, "diff", "2", "3", "--format", "json").stdout)
    assert narrow["gone"] == []
    assert {s["ip"] for s in narrow["not_rescanned"]} == {"127.90.0.4", "127.90.0.7"}

    markdown = _pacsaudit(db, "diff", "1", "2", "--format", "md").stdout
    assert "127.90.0.7" in markdown and "127.90.0.5" in markdown
    table = _pacsaudit(db, "diff", "1", "2").stdout
    assert "127.90.0.2" in table


def test_import_export_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    _scan(db, {1: OPEN, 2: CHECKED}, "127.90.0.1-2")
    exported = tmp_path / "scan1.jsonl"
    _pacsaudit(db, "export", "1", "-o", str(exported))
    lines = exported.read_text().splitlines()
    assert len(lines) == 2
    other = tmp_path / "other.db"
    report = _pacsaudit(other, "import", str(exported)).stderr
    assert "imported 2 results as scan 1" in report
    again = tmp_path / "again.jsonl"
    _pacsaudit(other, "export", "1", "-o", str(again))
    assert again.read_text().splitlines() == lines
