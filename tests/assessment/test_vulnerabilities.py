"""The shipped vulnerable-versions file and the version matching."""

from __future__ import annotations

import re

import pytest

from pacsaudit.assessment import KnownVulnerability, load_vulnerabilities
from pacsaudit.assessment.vulnerabilities import matching_vulnerabilities, parse_version


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("3.6.7", (3, 6, 7)),
        ("1.12.10", (1, 12, 10)),
        ("1.5.0c", (1, 5, 0)),
        (" 2.0 ", (2, 0)),
        ("5.23.2-SNAPSHOT", (5, 23, 2)),
        ("1.x", (1,)),
        ("unknown", None),
        ("", None),
    ],
)
def test_parse_version(text: str, parsed: tuple[int, ...] | None) -> None:
    assert parse_version(text) == parsed


def test_the_shipped_file_is_valid_and_cited() -> None:
    entries = load_vulnerabilities()
    assert len(entries) >= 4
    assert len({e.id for e in entries}) == len(entries)
    for entry in entries:
        assert all(re.fullmatch(r"CVE-\d{4}-\d{4,}", cve) for cve in entry.cves)
        assert len(entry.source) > 30, f"{entry.id} cites where its range is published"
        assert entry.match and entry.remediation
    products = {e.product for e in entries}
    assert {"Orthanc", "OFFIS DCMTK"} <= products


def test_bounds_are_inclusive_or_exclusive_as_written() -> None:
    fixed = KnownVulnerability(
        id="t", product="P", match=["P"], introduced="1.2", fixed="1.4", cves=["CVE-2000-0001"],
        severity="high", summary="s", remediation="r", source="a test",
    )  # fmt: skip
    assert [fixed.affects("P", v) for v in ("1.1.9", "1.2", "1.3.99", "1.4", "1.4.0", "2")] == [
        False, True, True, False, False, False,
    ]  # fmt: skip
    last = fixed.model_copy(update={"fixed": None, "last_affected": "1.4"})
    assert [last.affects("p", v) for v in ("1.4", "1.4.0", "1.4.1")] == [True, True, False]
    assert not fixed.affects("Other", "1.3")
    assert fixed.affected_text == ">= 1.2, < 1.4"


def test_a_bad_entry_is_refused() -> None:
    base = {"id": "t", "product": "P", "match": ["P"], "cves": ["CVE-2000-0001"], "severity": "high",
            "summary": "s", "remediation": "r", "source": "a test"}  # fmt: skip
    with pytest.raises(ValueError, match="exactly one"):
        KnownVulnerability.model_validate(base)
    with pytest.raises(ValueError, match="not a CVE"):
        KnownVulnerability.model_validate(base | {"fixed": "1.0", "cves": ["CVE-1"]})
    with pytest.raises(ValueError, match="not a version"):
        KnownVulnerability.model_validate(base | {"fixed": "latest"})


def test_orthanc_2025_0896_range() -> None:
    assert [v.id for v in matching_vulnerabilities("Orthanc", "1.5.7")] == [
        "orthanc-2025-0896",
        "orthanc-2026-5437",
    ]
    assert "orthanc-2025-0896" not in [v.id for v in matching_vulnerabilities("Orthanc", "1.5.8")]


def test_dcmtk_entries_as_the_advisories_publish_them() -> None:
    by_id = {e.id: e for e in load_vulnerabilities()}
    assert by_id["dcmtk-2026-50003"].fixed == "3.7.1", "DCMTK 3.7.1 carries the 2026 fixes"
    assert by_id["dcmtk-2022-2121"].severity == "medium", "CVSS 6.5"
    assert by_id["dcmtk-2022-2119"].cves == ["CVE-2022-2119"]
    assert "ICSMA-22-174-01" in by_id["dcmtk-2022-2119"].source
    assert "ICSMA-26-181-01" in by_id["dcmtk-2026-50003"].source
    dcmtk = [e for e in load_vulnerabilities() if e.product == "OFFIS DCMTK"]
    assert all(e.version_confidence == "toolkit" for e in dcmtk)
    # client-side flaws (an SCU, a C-GET client) are not what a scan of servers can see
    assert not {"CVE-2022-2120", "CVE-2026-50003"} & {cve for e in dcmtk for cve in e.cves}
    assert not [e.id for e in load_vulnerabilities() if "linuxpatch" in e.source]
    assert matching_vulnerabilities("DCMTK-based", "3.7.0")[-1].id == "dcmtk-2026-50003"
    assert not matching_vulnerabilities("DCMTK-based", "3.7.1")
