"""The DefectDojo Generic Findings export, checked against what DefectDojo's importer demands.

The rules below restate DefectDojo's generic JSON parser (dojo/tools/generic/json_parser.py):
every finding needs `title`, `severity` and `description`; `endpoints`, `files`, `tags`,
`vulnerability_ids` and `cwes` are taken out first; any other key outside the allowed set makes
the whole import fail; `date` goes through dateutil; a string endpoint without `://` is parsed
as the URI `//<endpoint>`; `Finding.title` holds at most 511 characters; severities are
Critical, High, Medium, Low and Info.
"""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from assessment.markdown_render import HOSTILE_VERSION, rendered
from assessment.mmdb import write_asn_mmdb
from assessment.results import open_archive, refusing_archive, weak_tls, web_front_end
from pacsaudit.assessment import Attributor, findings_for
from pacsaudit.model import Attribution
from pacsaudit.reports.defectdojo import defectdojo_findings, write_defectdojo

REQUIRED = {"title", "severity", "description"}
TAKEN_OUT = {"endpoints", "files", "tags", "vulnerability_ids", "cwes"}
ALLOWED = REQUIRED | {
    "date", "cwe", "cve", "epss_score", "epss_percentile", "cvssv3", "cvssv3_score", "cvssv4",
    "cvssv4_score", "mitigation", "impact", "steps_to_reproduce", "severity_justification",
    "references", "active", "verified", "false_p", "out_of_scope", "risk_accepted", "under_review",
    "is_mitigated", "thread_id", "mitigated", "numerical_severity", "param", "payload", "line",
    "file_path", "component_name", "component_version", "static_finding", "dynamic_finding",
    "scanner_confidence", "unique_id_from_tool", "vuln_id_from_tool", "sast_source_object",
    "sast_sink_object", "sast_source_line", "sast_source_file_path", "nb_occurences", "publish_date",
    "service", "planned_remediation_date", "planned_remediation_version", "effort_for_fixing", "tags",
    "kev_date", "known_exploited", "ransomware_used", "fix_available", "fix_version",
}  # fmt: skip
TOP_LEVEL = {"name", "type", "version", "description", "dynamic_tool", "static_tool", "soc", "findings"}
SEVERITIES = {"Critical", "High", "Medium", "Low", "Info"}


def _check_importable(document: dict[str, Any]) -> None:
    """Fail the way DefectDojo's importer would."""
    document = json.loads(json.dumps(document))  # what a file would carry
    assert set(document) <= TOP_LEVEL
    for item in document["findings"]:
        item = dict(item)
        endpoints = item.pop("endpoints", [])
        for key in TAKEN_OUT - {"endpoints"}:
            item.pop(key, None)
        assert not REQUIRED - set(item), f"required fields missing: {REQUIRED - set(item)}"
        assert not set(item) - ALLOWED, f"not allowed fields: {set(item) - ALLOWED}"
        assert item["severity"] in SEVERITIES
        assert isinstance(item["title"], str) and 0 < len(item["title"]) <= 511
        assert isinstance(item["description"], str) and item["description"]
        if "date" in item:
            date.fromisoformat(item["date"])
        if "cwe" in item:
            assert isinstance(item["cwe"], int)
        for endpoint in endpoints:
            assert isinstance(endpoint, str) and "://" not in endpoint
            parts = urlsplit("//" + endpoint)
            assert parts.hostname and parts.port and not parts.path


def test_export_of_a_mixed_scan_is_importable() -> None:
    results = [
        open_archive(ssn=3, military=1),
        open_archive("2001:67c:2e8::2", 11112, product="DCMTK-based", version="3.6.6"),
        refusing_archive(),
        web_front_end(version="1.5.7"),
        web_front_end(port=8443, scheme="https", auth_required=True, studies_listable=False, tls=weak_tls()),
    ]
    document = defectdojo_findings(results, scan_label="scan 17")
    _check_importable(document)
    assert document["name"] == "pacsaudit scan 17"
    expected = sum(len(findings_for(r)) for r in results)
    assert len(document["findings"]) == expected > 15
    unique = [f["unique_id_from_tool"] for f in document["findings"]]
    assert len(set(unique)) == len(unique)


def test_fields_of_one_finding() -> None:
    document = defectdojo_findings([open_archive("193.0.6.139", 104, ssn=3)], scan_label="scan 3")
    by_rule = {f["vuln_id_from_tool"]: f for f in document["findings"]}
    ssn = by_rule["PACS-DICOM-SSN-SHAPES"]
    assert ssn["severity"] == "Critical"
    assert ssn["endpoints"] == ["193.0.6.139:104"]
    assert ssn["unique_id_from_tool"] == "PACS-DICOM-SSN-SHAPES:193.0.6.139:104"
    assert ssn["date"] == "2026-03-04"
    assert ssn["cwe"] == 359
    assert "| ssn_shaped | 3 |" in ssn["description"] and "scan 3" in ssn["description"]
    assert ssn["mitigation"].startswith("Stop using SSNs")
    assert by_rule["PACS-DICOM-OPEN-AE"]["severity"] == "High"
    assert by_rule["PACS-DICOM-NO-TLS"]["cwe"] == 319


def test_cves_become_vulnerability_ids_and_references() -> None:
    document = defectdojo_findings([web_front_end(version="1.5.7")], scan_label="scan 1")
    vuln = next(f for f in document["findings"] if f["vuln_id_from_tool"] == "PACS-VULN-ORTHANC-2025-0896")
    assert vuln["vulnerability_ids"] == ["CVE-2025-0896"]
    assert "CVE-2025-0896" in vuln["references"]
    assert (vuln["component_name"], vuln["component_version"]) == ("Orthanc", "1.5.7")
    assert vuln["cwe"] == 1395 and vuln["severity"] == "Critical"


def test_ipv6_endpoints_are_bracketed() -> None:
    document = defectdojo_findings(
        [open_archive("2001:67c:2e8::2", 11112, attribution=Attribution(scope="public"))], scan_label="s"
    )
    assert {e for f in document["findings"] for e in f["endpoints"]} == {"[2001:67c:2e8::2]:11112"}
    _check_importable(document)


def test_an_empty_scan_exports_no_findings() -> None:
    assert defectdojo_findings([], scan_label="scan 9") == {"name": "pacsaudit scan 9", "findings": []}


def test_peer_chosen_text_cannot_break_the_description_table() -> None:
    hostile = open_archive(product="EVIL|\n# heading", version="3.6.6")
    document = defectdojo_findings([hostile], scan_label="s")
    _check_importable(document)
    for item in document["findings"]:
        assert "EVIL|" not in item["description"] and "\n# heading" not in item["description"]


def test_unusable_addresses_are_left_out_rather_than_break_the_import() -> None:
    # an imported file may carry anything: one bad endpoint would make DefectDojo refuse the file
    garbage = open_archive("1.2.3.4\x00; DROP", 104, attribution=Attribution(scope="unresolved"))
    named = open_archive("", 4242, attribution=Attribution(scope="unresolved"))
    named.hostname = "pacs.example.org"
    scoped = open_archive("fe80::1%eth0", 104, attribution=Attribution(scope="link-local"))
    document = defectdojo_findings([garbage, named, scoped], scan_label="s")
    _check_importable(document)
    endpoints = {e for f in document["findings"] for e in f.get("endpoints", [])}
    assert endpoints == {"pacs.example.org:4242", "[fe80::1]:104"}
    unaddressable = [f for f in document["findings"] if "endpoints" not in f]
    assert unaddressable and all("unaddressable:104" in f["unique_id_from_tool"] for f in unaddressable)


def test_links_and_images_a_peer_plants_stay_dead_in_the_description() -> None:
    # Given an Orthanc whose /system Version carries a link and a tracking image
    document = defectdojo_findings([web_front_end(version=HOSTILE_VERSION)], scan_label="s")
    _check_importable(document)
    assert document["findings"], "the hostile version still matches Orthanc 1.5.0's advisories"
    for item in document["findings"]:
        html = rendered(item["description"])
        assert "<a " not in html and "<img" not in html, html
        assert "https://evil" not in item["description"]
    vuln = next(f for f in document["findings"] if f["vuln_id_from_tool"] == "PACS-VULN-ORTHANC-2025-0896")
    assert "https[:]//evil.example" in vuln["description"], "still readable, defanged"
    assert "\n" not in vuln["component_version"] and len(vuln["component_version"]) <= 100


def test_titles_fit_defectdojo_and_carry_no_peer_text() -> None:
    long = open_archive(product="DCMTK-based", version="3.6.6" + "9" * 900)
    document = defectdojo_findings([long, web_front_end(version=HOSTILE_VERSION)], scan_label="s")
    _check_importable(document)  # titles of at most 511 characters
    assert not [f["title"] for f in document["findings"] if "evil" in f["title"] or "999" in f["title"]]


def test_the_owner_comes_from_the_given_attributor(tmp_path: Path) -> None:
    stored_without_as = open_archive(
        "193.0.6.139", 104, attribution=Attribution(scope="public", country="NL")
    )
    with Attributor(write_asn_mmdb(tmp_path / "asn.mmdb")) as attributor:
        document = defectdojo_findings([stored_without_as], scan_label="s", attributor=attributor)
    assert all("AS3333 RIPE NCC" in f["description"] for f in document["findings"])
    without = defectdojo_findings([stored_without_as], scan_label="s")
    assert all("AS unknown" in f["description"] for f in without["findings"])


@pytest.mark.parametrize("count", [0, 1, 3])
def test_the_streamed_document_is_the_same_json(count: int) -> None:
    results = [open_archive(f"193.0.6.{i}", 104, ssn=i, product="Ünïcode") for i in range(count)]
    out = io.StringIO()
    written = write_defectdojo(results, out, scan_label="scan 5 ✓")
    document = defectdojo_findings(results, scan_label="scan 5 ✓")
    assert out.getvalue() == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    assert written == len(document["findings"]) and (written > 0) == (count > 0)
