"""`pacsaudit report` as a user runs it: on the fixed stored scans, and on a real scan of a lab."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pacsaudit.lab.fleet import LabMember, start_fleet_in_thread
from pacsaudit.lab.simulator import PacsPolicy, SimStudy
from pacsaudit.lab.testdata import find_identifying_values

from .report_data import make_store

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"


def _pacsaudit(
    db: Path, *args: str, ok: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "PACSAUDIT_DB": f"sqlite:///{db}", "COLUMNS": "160"}
    done = subprocess.run(
        [sys.executable, "-m", "pacsaudit", *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=cwd, check=False,
    )  # fmt: skip
    if ok:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report-cli") / "history.db"
    make_store(path).close()
    return path


def test_markdown_on_stdout_by_default_and_as_the_api_makes_it(db: Path) -> None:
    done = _pacsaudit(db, "report", "2")
    assert done.stdout == (GOLDEN / "census-scan2.md").read_text(encoding="utf-8")
    assert done.stderr == "", "no progress bar when stderr is not a terminal"


def test_the_format_follows_the_output_suffix(db: Path, tmp_path: Path) -> None:
    _pacsaudit(db, "report", "2", "--diff", "1", "-o", str(tmp_path / "census.json"))
    assert (tmp_path / "census.json").read_text() == (GOLDEN / "census-scan2-diff1.json").read_text()
    _pacsaudit(db, "report", "2", "-o", str(tmp_path / "census.html"))
    assert (tmp_path / "census.html").read_text().startswith("<!DOCTYPE html>")
    _pacsaudit(db, "report", "2", "--table", "systems", "-o", str(tmp_path / "systems.csv"))
    assert (tmp_path / "systems.csv").read_text() == (GOLDEN / "systems.csv").read_text()


def test_defectdojo_generic_findings(db: Path) -> None:
    doc = json.loads(_pacsaudit(db, "report", "2", "--format", "defectdojo").stdout)
    findings = doc["findings"]
    assert findings and all({"title", "severity", "description"} <= set(f) for f in findings)
    assert {f["severity"] for f in findings} <= {"Critical", "High", "Medium", "Low", "Info"}
    assert any("192.0.2.10:8042" in f.get("endpoints", []) for f in findings)


def test_cost_figures_from_the_command_line(db: Path) -> None:
    text = _pacsaudit(db, "report", "2", "--cost-per-record", "10", "--cost-per-ssn-record", "20").stdout
    assert "x USD 10.00" in text and "x USD 20.00" in text
    assert "per\\_record = 10 (configured); per\\_ssn\\_record = 20 (configured)" in text


def test_cost_figures_from_the_environment(db: Path) -> None:
    env = os.environ | {"PACSAUDIT_COST_PER_RECORD": "7"}
    done = subprocess.run(
        [sys.executable, "-m", "pacsaudit", "report", "2", "--db", f"sqlite:///{db}"],
        capture_output=True, text=True, timeout=120, env=env | {"PYTHONPATH": str(ROOT / "src")}, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "x USD 7.00" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "9"], "no scan 9"),
        (["report", "2", "--diff", "9"], "no scan 9"),
        (["report", "2", "-o", "census.pdf"], "--format"),
        (["report", "2", "--format", "xml"], "unknown format 'xml': html, md, csv, json, defectdojo"),
        (["report", "2", "--format", "csv", "--table", "everything"], "unknown CSV table 'everything'"),
        (["report", "2", "--asn-db", "missing.mmdb"], "missing.mmdb"),
        (["report", "2", "--cost-per-record", "-5"], "cost_per_record"),
    ],
)
def test_mistakes_are_one_line_errors_and_write_nothing(
    db: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    done = _pacsaudit(db, *args, ok=False, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


# --- a real scan of a simulated archive ----------------------------------------------------------

STUDIES = (
    SimStudy("2.25.7001", "123-45-6789", "20190412", ("CT",), 2, 40, "Zorvik General", "MRN7731", "19610203"),
    SimStudy("2.25.7002", "4567890123", "20210102", ("MR",), 1, 12, None, "", "19720911"),
    SimStudy("2.25.7003", "MRN0049217", "", ("US",), 1, 9, "Quendal Clinic", "", ""),
)
IDENTIFYING = {
    value
    for s in STUDIES
    for value in (s.patient_id, s.other_patient_ids, s.patient_birth_date, s.study_date, s.institution)
    if value
}


def test_every_format_of_a_real_lab_census_counts_it_and_holds_no_patient_data(tmp_path: Path) -> None:
    # Given a stored census of two simulated archives on loopback (one open, one checking titles)
    db = tmp_path / "history.db"
    members = [
        LabMember("open", "", "127.91.0.1", 11112, PacsPolicy(studies=STUDIES), "", None),
        LabMember(
            "checked", "", "127.91.0.2", 11112, PacsPolicy(called_aets=frozenset({"ARCHIVE"})), "", None
        ),
    ]
    with start_fleet_in_thread(members):
        _pacsaudit(db, "scan", "127.91.0.1-2", "-p", "11112", "-q", "-o", os.devnull, "--census",
                   "--query-pause", "0", "--no-ae-dictionary")  # fmt: skip
    # When every format is made
    outputs: dict[str, str] = {}
    for name, args in {
        "md": ["--format", "md"],
        "json": ["--format", "json"],
        "html": ["-o", str(tmp_path / "census.html")],
        "countries": ["--format", "csv"],
        "systems": ["--format", "csv", "--table", "systems"],
        "worst": ["--format", "csv", "--table", "worst"],
        "defectdojo": ["--format", "defectdojo"],
    }.items():
        done = _pacsaudit(db, "report", "1", *args)
        outputs[name] = done.stdout + done.stderr
    outputs["html"] += (tmp_path / "census.html").read_text(encoding="utf-8")
    # Then the census is right, and no patient value reached any of them
    census = json.loads(outputs["json"])
    assert census["totals"]["hosts_found"] == 2 and census["totals"]["systems"] == 1
    assert (census["totals"]["studies"], census["totals"]["patients"]) == (3, 3)
    assert census["totals"]["instances"] == 40 + 12 + 9 and census["totals"]["ssn_shaped"] == 1
    assert census["by_country"][0]["key"] == "(loopback)"
    assert census["modalities"] == {"CT": 1, "MR": 1, "US": 1}
    assert census["study_years"] == {"per_year": {"2019": 1, "2021": 1}, "undated": 1}
    everything = "\n".join(outputs.values()).encode()
    assert find_identifying_values(everything, IDENTIFYING) == set()
    assert find_identifying_values(b"x 4567890123 y", IDENTIFYING) == {"4567890123"}, "the search works"
