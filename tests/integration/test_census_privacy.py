"""Privacy by construction: a census of archives whose patients the test knows leaves no trace of them.

Every byte pacsaudit writes (the result file, the scan-history database, standard output,
standard error with the summary, and every `pacsaudit report` format made from the stored scan)
is searched for every patient name, name component, PatientID, OtherPatientID, birth date and
accession number the synthetic archive holds: zero hits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from archives import GeneratedArchive
from servers import RunningServer

from pacsaudit.lab.testdata import find_identifying_values

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _census_bytes(server: RunningServer, tmp_path: Path, *extra: str) -> bytes:
    out = tmp_path / "census.jsonl"
    db = tmp_path / "history.db"
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200", "PACSAUDIT_DB": f"sqlite:///{db}"}
    done = subprocess.run(
        [sys.executable, "-m", "pacsaudit", "scan", f"{server.host}:{server.port}", "--census", "--all",
         "--query-pause", "0", "-o", str(out), *extra],
        capture_output=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    written = out.read_bytes()
    assert b'"counts"' in written and b'"studies"' in written, "the census ran"
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("history.db*"))
    assert b"counts" in stored, "the scan history holds the census too"
    return written + stored + done.stdout + done.stderr + _report_bytes(tmp_path, env)


REPORTS = (
    ("--format", "md"), ("--format", "json"), ("--format", "csv"), ("--format", "csv", "--table", "systems"),
    ("--format", "csv", "--table", "worst"), ("--format", "defectdojo"), ("-o", "census.html"),
)  # fmt: skip


def _report_bytes(tmp_path: Path, env: dict[str, str]) -> bytes:
    """Every `pacsaudit report` format of the stored census, standard streams and files included."""
    out = b""
    for args in REPORTS:
        done = subprocess.run(
            [sys.executable, "-m", "pacsaudit", "report", "1", *args],
            capture_output=True, timeout=120, env=env, cwd=tmp_path, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        out += done.stdout + done.stderr
    html = (tmp_path / "census.html").read_bytes()
    assert b"Accessible studies" in html and b"chart-map" in html, "the reports were made"
    return out + html


@pytest.mark.parametrize("server_fixture", ["orthanc_open_loaded", "dcmqrscp_loaded"])
def test_census_output_holds_no_patient_data(
    server_fixture: str, small_archive: GeneratedArchive, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server: RunningServer = request.getfixturevalue(server_fixture)
    everything = _census_bytes(server, tmp_path)
    assert len(small_archive.truth.identifying_values) > 100, "the test knows what to look for"
    assert find_identifying_values(everything, small_archive.truth.identifying_values) == set()


def test_capped_census_output_holds_no_patient_data(
    orthanc_capped_loaded: RunningServer, capped_archive: GeneratedArchive, tmp_path: Path
) -> None:
    everything = _census_bytes(orthanc_capped_loaded, tmp_path, "--max-queries", "40")
    assert find_identifying_values(everything, capped_archive.truth.identifying_values) == set()


def test_the_search_would_find_a_leak(small_archive: GeneratedArchive) -> None:
    """The search itself works: a planted value is found (so zero hits above means something)."""
    planted = sorted(small_archive.truth.identifying_values)[:3]
    assert find_identifying_values(("x " + " ".join(planted) + " y").encode(), planted) == set(planted)
