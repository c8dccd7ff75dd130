"""`pacsaudit scan --asn-db`: results are attributed where they are emitted and stored with their
scope; a database that cannot be read fails the command before any packet is sent; the cost
figures and the ASN database can come from the TOML file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pacsaudit.assessment import cost_model, estimate_cost
from pacsaudit.config import load_settings
from pacsaudit.lab.fleet import LabMember, start_fleet_in_thread
from pacsaudit.lab.simulator import PacsPolicy

from .mmdb import write_asn_mmdb

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.90.3.1"


def _pacsaudit(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "PACSAUDIT_DB": f"sqlite:///{db}", "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, "-m", "pacsaudit", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_scan_attributes_and_stores_the_scope(tmp_path: Path) -> None:
    member = LabMember("open", "", HOST, 11112, PacsPolicy(), "", None)
    db, out = tmp_path / "history.db", tmp_path / "out.jsonl"
    asn = write_asn_mmdb(tmp_path / "asn.mmdb")
    with start_fleet_in_thread([member]):
        done = _pacsaudit(db, "scan", HOST, "-p", "11112", "-q", "-o", str(out), "--asn-db", str(asn),
                          "--no-ae-dictionary")  # fmt: skip
    assert done.returncode == 0, done.stderr
    [line] = out.read_text().splitlines()
    result = json.loads(line)
    assert result["attribution"] == {"scope": "loopback", "country": None, "asn": None, "as_org": None}
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT scope, country, asn FROM observations").fetchall() == [
            ("loopback", None, None)
        ]


def test_an_unreadable_asn_database_fails_before_scanning(tmp_path: Path) -> None:
    bad = tmp_path / "asn.mmdb"
    bad.write_bytes(b"not an mmdb")
    db = tmp_path / "history.db"
    done = _pacsaudit(db, "scan", HOST, "-p", "11112", "-q", "-o", os.devnull, "--asn-db", str(bad))
    assert done.returncode == 2
    assert "cannot read the ASN database" in done.stderr
    assert not db.exists(), "no scan was started"


def test_cost_figures_and_asn_database_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "pacsaudit.toml"
    config.write_text(
        f'cost_per_record = 150.0\ncost_per_ssn_record = 900\nasn_database = "{tmp_path / "a.mmdb"}"\n'
    )
    settings = load_settings(config)
    assert (settings.cost_per_record, settings.cost_per_ssn_record) == (150.0, 900.0)
    assert settings.asn_database == tmp_path / "a.mmdb"
    assert load_settings().asn_database is None


def test_cost_figures_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACSAUDIT_COST_PER_RECORD", "200")
    monkeypatch.setenv("PACSAUDIT_COST_PER_SSN_RECORD", "2500.5")
    settings = load_settings()
    assert (settings.cost_per_record, settings.cost_per_ssn_record) == (200.0, 2500.5)
    model = cost_model(settings.cost_per_record, settings.cost_per_ssn_record)
    assert estimate_cost(10, 1, model).amount == 9 * 200 + 2500.5
