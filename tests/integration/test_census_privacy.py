"""Privacy by construction: a census of archives whose patients the test knows leaves no trace of them.

Every byte pacsaudit writes (the result file, the scan-history database, standard output,
standard error with the summary, every `pacsaudit report` format and CSV table made from the
stored scan, and every `pacsaudit notify` notice) is searched for every patient name, name
component, PatientID, OtherPatientID, birth date and accession number the synthetic archive
holds: zero hits. The census runs over DICOM (C-FIND) and over HTTP (Orthanc's DICOMweb QIDO-RS,
which reads the same identifiers to count their shapes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from archives import GeneratedArchive, loaded_orthanc
from servers import LOOPBACK, RunningServer, orthanc_binary, orthanc_dicomweb_plugin

from pacsaudit.lab.testdata import find_identifying_values
from scanning import missing_software

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _census_bytes(server: RunningServer, tmp_path: Path, *extra: str, target: str | None = None) -> bytes:
    out = tmp_path / "census.jsonl"
    db = tmp_path / "history.db"
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200", "PACSAUDIT_DB": f"sqlite:///{db}"}
    done = subprocess.run(
        [sys.executable, "-m", "pacsaudit", "scan", target or f"{server.host}:{server.port}", "--census",
         "--all", "--query-pause", "0", "-o", str(out), *extra],
        capture_output=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    written = out.read_bytes()
    assert b'"counts"' in written and b'"studies"' in written, "the census ran"
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("history.db*"))
    assert b"counts" in stored, "the scan history holds the census too"
    return (
        written
        + stored
        + done.stdout
        + done.stderr
        + _report_bytes(tmp_path, env)
        + _notice_bytes(tmp_path, env)
    )


REPORTS = (
    ("--format", "md"), ("--format", "json"), ("--format", "csv"), ("--format", "csv", "--table", "systems"),
    ("--format", "csv", "--table", "worst"), ("--format", "csv", "--table", "owners"),
    ("--format", "csv", "--table", "products"), ("--format", "csv", "--table", "findings"),
    ("--format", "defectdojo"), ("-o", "census.html"),
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


def _notice_bytes(tmp_path: Path, env: dict[str, str]) -> bytes:
    """`pacsaudit notify` on the stored scan: its streams and every notice it writes."""
    owners = tmp_path / "owners"
    done = subprocess.run(
        [sys.executable, "-m", "pacsaudit", "notify", "1", "-o", str(owners)],
        capture_output=True, timeout=120, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    notices = sorted(owners.iterdir())
    assert len(notices) >= 2, "the open archive (loopback) has a notice beside the index"
    return done.stdout + done.stderr + b"".join(p.read_bytes() for p in notices)


class _StatisticsHidden(BaseHTTPRequestHandler):
    """A loopback reverse proxy to Orthanc's HTTP port that hides `/statistics` (as a proxy exposing
    only the APIs would): the HTTP census then pages through QIDO-RS, reading PatientIDs."""

    upstream = ""

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0].rstrip("/") == "/statistics":
            self._answer(404, {}, b"")
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization")}
        request = urllib.request.Request(self.upstream + self.path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                self._answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            self._answer(error.code, dict(error.headers), error.read())

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() in ("content-type", "www-authenticate"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a proxy log would print request paths."""


@pytest.fixture(scope="module")
def orthanc_qido_only(
    tmp_path_factory: pytest.TempPathFactory, small_archive: GeneratedArchive
) -> Iterator[tuple[RunningServer, int]]:
    """Orthanc with the DICOMweb plugin holding the small archive, and the port of a proxy that hides
    its `/statistics`."""
    if orthanc_binary() is None:
        missing_software("Orthanc is not installed")
    plugin = orthanc_dicomweb_plugin()
    if plugin is None:
        missing_software("the Orthanc DICOMweb plugin (Debian orthanc-dicomweb) is not installed")
    tmp = tmp_path_factory.mktemp("orthanc-qido-privacy")
    with loaded_orthanc(
        tmp, small_archive.files, always_allow_find=False, extra_config={"Plugins": [str(plugin)]}
    ) as server:
        handler = type("Proxy", (_StatisticsHidden,), {"upstream": f"http://{LOOPBACK}:{server.http_port}"})
        proxy = ThreadingHTTPServer((LOOPBACK, 0), handler)
        thread = threading.Thread(target=proxy.serve_forever, daemon=True)
        thread.start()
        try:
            yield server, proxy.server_address[1]
        finally:
            proxy.shutdown()
            proxy.server_close()
            thread.join(timeout=10)


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


def test_http_census_output_holds_no_patient_data(
    orthanc_qido_only: tuple[RunningServer, int], small_archive: GeneratedArchive, tmp_path: Path
) -> None:
    server, proxy_port = orthanc_qido_only
    everything = _census_bytes(
        server, tmp_path, "-p", str(proxy_port), "--web-ports", str(proxy_port), target=LOOPBACK
    )
    results = [json.loads(line) for line in (tmp_path / "census.jsonl").read_text().splitlines() if line]
    http = [r["http"] for r in results if r.get("http") and r["http"].get("counts")]
    assert http and http[0]["counts_source"] == "qido-rs", "the census went through QIDO-RS"
    assert http[0]["counts"]["patients"] == small_archive.truth.patients
    assert http[0]["sensitive"]["ssn_shaped"] == small_archive.truth.ssn_shaped_patients, "IDs were read"
    assert find_identifying_values(everything, small_archive.truth.identifying_values) == set()


def test_the_search_would_find_a_leak(small_archive: GeneratedArchive) -> None:
    """The search itself works: a planted value is found (so zero hits above means something)."""
    planted = sorted(small_archive.truth.identifying_values)[:3]
    assert find_identifying_values(("x " + " ".join(planted) + " y").encode(), planted) == set(planted)
