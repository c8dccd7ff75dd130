"""Owner notices: grouping by network owner, content, file names, and `pacsaudit notify` on a stored scan."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from pydantic import BaseModel

from assessment.markdown_render import HOSTILE_VERSION, rendered
from assessment.mmdb import write_asn_mmdb
from assessment.results import PUBLIC_NL, open_archive, refusing_archive, web_front_end
from pacsaudit.assessment import Finding, findings_for
from pacsaudit.model import Attribution, EndpointResult
from pacsaudit.reports.notify import INDEX_NAME, ExposedEndpoint, notice_file_name, write_owner_notices

ROOT = Path(__file__).resolve().parents[2]


def _results() -> list[EndpointResult]:
    return [
        open_archive("193.0.6.139", 104, attribution=PUBLIC_NL, ssn=4),
        web_front_end("193.0.6.140", 8042),  # same owner (AS64500)
        open_archive("8.8.8.8", 4242, attribution=Attribution(scope="public", country="US")),
        open_archive("10.20.0.5", 104, attribution=Attribution(scope="private")),
        open_archive("1.0.16.1", 11112, attribution=None),  # stored before attribution: JP by registry
        refusing_archive("127.0.0.1", 11112),  # info only: nobody is notified
    ]


def test_one_notice_per_owner_and_an_index(tmp_path: Path) -> None:
    paths = write_owner_notices(_results(), tmp_path, scan_label="scan 17")
    names = [p.name for p in paths]
    assert names == [
        "AS64500-Example-Hospital-Network.md",
        "country-JP.md",
        "country-US.md",
        "private.md",
        INDEX_NAME,
    ]
    assert all(p.parent == tmp_path for p in paths)
    index = (tmp_path / INDEX_NAME).read_text()
    assert "4 network owner(s)" in index
    assert (
        "| AS64500 Example Hospital Network | NL | 2 | critical | [AS64500-Example-Hospital-Network.md]"
        in index
    )
    assert "loopback" not in index


def test_a_notice_lists_endpoints_findings_and_remediation(tmp_path: Path) -> None:
    write_owner_notices(_results(), tmp_path, scan_label="scan 17")
    notice = (tmp_path / "AS64500-Example-Hospital-Network.md").read_text()
    assert notice.startswith("# Exposed medical-image systems: AS64500 Example Hospital Network")
    assert "scan 17" in notice and "no patient data" in notice
    assert "- Exposed endpoints: 2" in notice and "- Highest risk: critical" in notice
    assert "| 193.0.6.139:104 | DCMTK-based 3.6.7 | critical |" in notice
    assert "| 193.0.6.140:8042 | Orthanc 1.12.10 | critical |" in notice
    assert "### CRITICAL: Identifiers shaped like US Social Security numbers" in notice
    assert "- ssn_shaped: 4" in notice
    assert "PACS-WEB-STUDIES-LISTABLE" in notice and "PACS-VULN-ORTHANC-2026-5437" in notice
    assert "**Remediation:** Stop using SSNs" in notice
    assert "negotiated" in notice  # C-MOVE / C-STORE evidence is said to be negotiation only
    # endpoints most severe first, findings most severe first within each
    assert notice.index("## 193.0.6.139:104") < notice.index("### HIGH: DICOM service accepts")


def test_results_without_attribution_get_the_as_from_a_given_attributor(tmp_path: Path) -> None:
    from pacsaudit.assessment import Attributor

    stored_without_as = open_archive(
        "193.0.6.139", 104, attribution=Attribution(scope="public", country="NL")
    )
    never_attributed = open_archive("2001:67c:2e8::2", 104, attribution=None)
    with Attributor(write_asn_mmdb(tmp_path / "asn.mmdb")) as attributor:
        paths = write_owner_notices(
            [stored_without_as, never_attributed], tmp_path / "out", attributor=attributor
        )
    assert [p.name for p in paths] == ["AS3333-RIPE-NCC.md", INDEX_NAME]
    notice = paths[0].read_text()
    assert r"\[2001:67c:2e8::2\]:104" in notice and "193.0.6.139:104" in notice
    assert "- Autonomous system: AS3333 RIPE NCC" in notice


def test_a_result_stored_without_attribution_is_judged_once_attributed(tmp_path: Path) -> None:
    paths = write_owner_notices([open_archive("193.0.6.139", 104, attribution=None)], tmp_path)
    assert [p.name for p in paths] == ["country-NL.md", INDEX_NAME]
    assert "PACS-DICOM-NO-TLS" in paths[0].read_text(), "a public address: no TLS on the internet"


def test_nothing_exposed_writes_only_an_empty_index(tmp_path: Path) -> None:
    paths = write_owner_notices([refusing_archive()], tmp_path)
    assert [p.name for p in paths] == [INDEX_NAME]
    assert "0 network owner(s)" in paths[0].read_text()


def test_peer_chosen_text_stays_inert(tmp_path: Path) -> None:
    hostile = open_archive(product="<script>x</script>|\n# Owned", version="3.6.6")
    paths = write_owner_notices([hostile], tmp_path)
    text = paths[0].read_text()
    assert "<script>" not in text and "\n# Owned" not in text
    assert r"\<script\>" in text
    assert "<script>" not in rendered(text), "escaped, not HTML"


def test_links_and_images_a_peer_plants_stay_dead(tmp_path: Path) -> None:
    # Given an Orthanc whose /system answers a Version with a link and a tracking image, behind an
    # AS whose organisation name (the user's ASN database) carries a link too
    web = web_front_end(version=HOSTILE_VERSION)
    web.attribution = Attribution(
        scope="public", country="NL", asn=64500, as_org="Evil [org](https://evil.example/o)"
    )
    paths = write_owner_notices([web], tmp_path)
    # Then neither the notice nor the index holds a link (but the index's to the notice), an image
    # or a bare URL a renderer would link
    for path in paths:
        html = rendered(path.read_text())
        links = re.findall(r"<a [^>]*>", html)
        assert links == ([f'<a href="{paths[0].name}">'] if path.name == INDEX_NAME else []), html
        assert "<img" not in html and "https://evil" not in path.read_text()
    notice = paths[0].read_text()
    assert "https[:]//evil.example" in notice, "the URL is still there for the reader, defanged"


def test_file_names_are_portable() -> None:
    assert notice_file_name("AS64500 Example Org, Inc. / ../../etc") == "AS64500-Example-Org-Inc-etc.md"
    assert notice_file_name("country DE") == "country-DE.md"
    assert notice_file_name("é") == "unknown.md"
    assert len(notice_file_name("AS1 " + "x" * 500)) <= 83


def _pacsaudit(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "PACSAUDIT_DB": f"sqlite:///{db}", "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, "-m", "pacsaudit", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_notify_command_on_a_stored_scan(tmp_path: Path) -> None:
    # Given a stored scan (imported from JSON Lines, some results without attribution)
    lines = tmp_path / "results.jsonl"
    lines.write_text("".join(r.model_dump_json() + "\n" for r in _results()))
    db = tmp_path / "history.db"
    imported = _pacsaudit(db, "import", str(lines))
    assert imported.returncode == 0, imported.stderr
    # When the owners are notified, with an ASN database
    asn = write_asn_mmdb(tmp_path / "asn.mmdb")
    out = tmp_path / "owners"
    done = _pacsaudit(db, "notify", "1", "-o", str(out), "--asn-db", str(asn))
    # Then there is one notice per owner and an index; 8.8.8.8, stored without an AS, now has one
    assert done.returncode == 0, done.stderr
    assert "4 owner notice(s)" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "AS15169-GOOGLE.md",
        "AS64500-Example-Hospital-Network.md",
        "country-JP.md",
        INDEX_NAME,
        "private.md",
    ]


def test_notify_command_errors(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    missing = _pacsaudit(db, "notify", "42", "-o", str(tmp_path / "o"))
    assert missing.returncode == 2 and "no scan 42" in missing.stderr
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"nope")
    wrong = _pacsaudit(db, "notify", "1", "-o", str(tmp_path / "o"), "--asn-db", str(bad))
    assert wrong.returncode == 2 and "cannot read the ASN database" in wrong.stderr


def test_an_owner_keeps_reduced_rows_not_whole_results() -> None:
    # a scan with many exposed endpoints must not be held in memory result by result
    result = open_archive("193.0.6.139", 104, ssn=2)
    row = ExposedEndpoint.of(result, findings_for(result))
    kept = [getattr(row, f.name) for f in fields(row)]
    assert not [v for v in kept if isinstance(v, BaseModel)], "no result or block of it is kept"
    assert all(isinstance(f, Finding) for f in row.findings)
    assert (row.endpoint, row.product) == ("193.0.6.139:104", "DCMTK-based 3.6.7")
    assert row.observed == result.timestamp
    assert [f.id for f in row.findings] == [f.id for f in findings_for(result)]
