"""The web, TLS and known-vulnerable-version rules on hand-built results."""

from __future__ import annotations

import pytest

from pacsaudit.assessment import Finding, findings_for
from pacsaudit.model import EndpointResult

from .results import open_archive, weak_tls, web_front_end


def _by_id(result: EndpointResult) -> dict[str, Finding]:
    return {f.id: f for f in findings_for(result)}


@pytest.mark.parametrize(
    ("product", "version", "expected"),
    [
        (
            "DCMTK-based",
            "3.6.6",
            {
                "PACS-VULN-DCMTK-2021-41689",
                "PACS-VULN-DCMTK-2022-2119",
                "PACS-VULN-DCMTK-2022-2121",
                "PACS-VULN-DCMTK-2026-50003",
            },
        ),
        ("DCMTK-based", "3.6.5", {"PACS-VULN-DCMTK-2021-41689", "PACS-VULN-DCMTK-2022-2119",
                                  "PACS-VULN-DCMTK-2022-2121", "PACS-VULN-DCMTK-2026-50003"}),
        ("DCMTK-based", "3.6.7", {"PACS-VULN-DCMTK-2026-50003"}),
        ("dcmtk-based", "3.7.0", {"PACS-VULN-DCMTK-2026-50003"}),
        ("DCMTK-based", "3.7.0.1", {"PACS-VULN-DCMTK-2026-50003"}),
        ("DCMTK-based", "3.7.1", set()),
        ("DCMTK-based", None, set()),
        ("Conquest DICOM Server", "1.5.0", set()),
    ],
)  # fmt: skip
def test_known_vulnerable_dicom_versions(product: str, version: str | None, expected: set[str]) -> None:
    found = {k: v for k, v in _by_id(open_archive(product=product, version=version)).items() if "VULN" in k}
    assert set(found) == expected
    for finding in found.values():
        assert finding.evidence["version_confidence"] == "toolkit"
        assert str(finding.evidence["cves"]).startswith("CVE-")


def test_a_toolkit_version_only_may_be_affected_and_is_at_most_medium() -> None:
    # Orthanc, dcmqrscp and storescp all announce DCMTK's identity: the DCMTK version says little
    found = _by_id(open_archive(product="DCMTK-based", version="3.6.6"))
    for rule in ("PACS-VULN-DCMTK-2021-41689", "PACS-VULN-DCMTK-2022-2119", "PACS-VULN-DCMTK-2026-50003"):
        finding = found[rule]
        assert "may be affected (toolkit version)" in finding.title and " is affected" not in finding.title
        assert finding.severity == "medium"
        assert finding.evidence["advisory_severity"] == "high"
    assert found["PACS-VULN-DCMTK-2022-2121"].severity == "medium"
    # the title is the rule's (the affected range), not the version seen on this endpoint
    assert "3.6.6" not in found["PACS-VULN-DCMTK-2022-2119"].title
    assert "< 3.6.7" in found["PACS-VULN-DCMTK-2022-2119"].title
    assert found["PACS-VULN-DCMTK-2022-2119"].evidence["version"] == "3.6.6"


def test_client_side_cves_are_not_raised_against_servers() -> None:
    found = _by_id(open_archive(product="DCMTK-based", version="3.6.5"))
    cves = " ".join(str(f.evidence["cves"]) for f in found.values() if f.id.startswith("PACS-VULN-"))
    # CVE-2022-2120 (SCU path traversal) and CVE-2026-50003 (C-GET client file write) are client flaws
    assert "CVE-2022-2120" not in cves and "CVE-2026-50003" not in cves
    assert "CVE-2022-2119" in cves and "CVE-2026-52868" in cves


def test_known_vulnerable_web_versions() -> None:
    old = _by_id(web_front_end(product="Orthanc", version="1.5.7"))
    assert old["PACS-VULN-ORTHANC-2025-0896"].severity == "critical", "a product's own version: not capped"
    assert old["PACS-VULN-ORTHANC-2025-0896"].title.startswith("Orthanc < 1.5.8 is affected by CVE-2025-0896")
    assert "CVE-2025-0896" in str(old["PACS-VULN-ORTHANC-2025-0896"].evidence["cves"])
    assert "PACS-VULN-ORTHANC-2026-5437" in old
    recent = _by_id(web_front_end(product="Orthanc", version="1.12.10"))
    assert "PACS-VULN-ORTHANC-2025-0896" not in recent and "PACS-VULN-ORTHANC-2026-5437" in recent
    assert not [k for k in _by_id(web_front_end(product="Orthanc", version="1.12.11")) if "VULN" in k]


def test_web_exposure() -> None:
    found = _by_id(
        web_front_end(auth_required=False, studies_listable=True, default_credentials_accepted=None)
    )
    assert found["PACS-WEB-NO-AUTH"].severity == "high"
    listable = found["PACS-WEB-STUDIES-LISTABLE"]
    assert listable.severity == "critical" and listable.evidence["patients"] == 7
    assert found["PACS-WEB-CLEARTEXT"].severity == "medium"
    creds = _by_id(
        web_front_end(auth_required=True, studies_listable=False, default_credentials_accepted=True)
    )
    assert creds["PACS-WEB-DEFAULT-CREDENTIALS"].severity == "critical"
    assert "PACS-WEB-NO-AUTH" not in creds and "PACS-WEB-STUDIES-LISTABLE" not in creds
    locked = _by_id(
        web_front_end(scheme="https", auth_required=True, studies_listable=False, version="1.12.11")
    )
    assert locked == {}


def test_tls_weaknesses() -> None:
    found = _by_id(web_front_end(scheme="https", auth_required=True, studies_listable=False, tls=weak_tls()))
    assert found["PACS-TLS-OLD-VERSION"].evidence["tls_version"] == "TLSv1"
    assert found["PACS-TLS-EXPIRED-CERT"].severity == "medium"
    assert found["PACS-TLS-SELF-SIGNED"].severity == "low"
    modern = web_front_end(
        scheme="https",
        auth_required=True,
        studies_listable=False,
        tls=weak_tls("TLSv1.2", self_signed=False, expired=False),
    )
    assert not [k for k in _by_id(modern) if k.startswith("PACS-TLS-")]
