"""DefectDojo "Generic Findings Import" JSON: one DefectDojo finding per pacsaudit finding per endpoint.

DefectDojo's generic JSON parser (dojo/tools/generic/json_parser.py) requires `title`,
`severity` and `description` on every finding, rejects any key outside its allowed set, parses
`date` with dateutil and reads `endpoints` as `host:port` strings (IPv6 in brackets).
Severities are capitalised. `unique_id_from_tool` (rule id, ip, port) lets a re-import
recognise the same finding; `vuln_id_from_tool` is the rule id.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from pacsaudit.assessment.attribution import Attributor, attributed
from pacsaudit.assessment.findings import Finding, Severity, findings_for
from pacsaudit.model import EndpointResult
from pacsaudit.reports.text import MAX_TEXT, clean, md_inert

__all__ = [
    "CWE_BY_RULE",
    "DEFECTDOJO_SEVERITY",
    "defectdojo_findings",
    "endpoint_text",
    "iter_defectdojo_findings",
    "write_defectdojo",
]

DEFECTDOJO_SEVERITY: dict[Severity, str] = {
    "critical": "Critical",
    "high": "High",
    "medium": "Medium",
    "low": "Low",
    "info": "Info",
}

CWE_BY_RULE: dict[str, int] = {
    "PACS-DICOM-OPEN-AE": 306,  # Missing Authentication for Critical Function
    "PACS-DICOM-GUESSABLE-AE": 1392,  # Use of Default Credentials
    "PACS-DICOM-CFIND-OPEN": 359,  # Exposure of Private Personal Information to an Unauthorized Actor
    "PACS-DICOM-CMOVE-OPEN": 306,
    "PACS-DICOM-CGET-OPEN": 306,
    "PACS-DICOM-CSTORE-OPEN": 306,
    "PACS-DICOM-SSN-SHAPES": 359,
    "PACS-DICOM-MILITARY-ID-SHAPES": 359,
    "PACS-DICOM-NO-TLS": 319,  # Cleartext Transmission of Sensitive Information
    "PACS-WEB-DEFAULT-CREDENTIALS": 1392,
    "PACS-WEB-STUDIES-LISTABLE": 359,
    "PACS-WEB-NO-AUTH": 306,
    "PACS-WEB-CLEARTEXT": 319,
    "PACS-TLS-OLD-VERSION": 327,  # Use of a Broken or Risky Cryptographic Algorithm
    "PACS-TLS-EXPIRED-CERT": 298,  # Improper Validation of Certificate Expiration
    "PACS-TLS-SELF-SIGNED": 295,  # Improper Certificate Validation
}
"""The closest CWE of each rule; known-vulnerable versions use CWE-1395 (vulnerable component)."""
_VULNERABLE_COMPONENT_CWE = 1395

_NVD = "https://nvd.nist.gov/vuln/detail/"


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def endpoint_text(result: EndpointResult) -> str | None:
    """`host:port` as DefectDojo's `Endpoint.from_uri("//" + text)` parses it (IPv6 bracketed, no
    zone), or None when the result holds no usable address (an imported file may hold anything):
    one unparsable endpoint would make DefectDojo refuse the whole file."""
    if not 0 < result.port < 65536:
        return None
    for candidate in (result.ip, result.hostname):
        if not candidate:
            continue
        try:
            address = ipaddress.ip_address(candidate.split("%", 1)[0])
        except ValueError:
            if _HOSTNAME.match(candidate):
                return f"{candidate}:{result.port}"
            continue
        return f"[{address}]:{result.port}" if address.version == 6 else f"{address}:{result.port}"
    return None


def _service(finding_id: str) -> str:
    if finding_id.startswith("PACS-WEB-"):
        return "http"
    if finding_id.startswith("PACS-TLS-"):
        return "tls"
    return "dicom"


_TITLE_LIMIT = 511
"""DefectDojo's `Finding.title` column holds at most 511 characters: a longer one fails the import."""
_EVIDENCE_LIMIT = 600


def _value(value: str | int | bool | None, limit: int | None = MAX_TEXT) -> str:
    """A value inert in the description's Markdown (`reports.text.md_inert`): peers choose product
    strings and versions, the user's ASN database the owner names."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return md_inert(str(value), limit)


def _description(result: EndpointResult, finding: Finding, scan_label: str) -> str:
    a = result.attribution
    lines = [
        f"**{_value(finding.title, None)}**",
        "",
        f"Endpoint {_value(endpoint_text(result))} seen by pacsaudit ({_value(scan_label)}) "
        f"at {_value(result.timestamp)}.",
    ]
    if a is not None:
        owner = f"AS{a.asn} {_value(a.as_org or '')}".strip() if a.asn is not None else "AS unknown"
        lines.append(f"Address scope: {_value(a.scope)}; registry country: {_value(a.country)}; {owner}.")
    lines += ["", "| evidence | value |", "| --- | --- |"]
    lines += [f"| {key} | {_value(value, _EVIDENCE_LIMIT)} |" for key, value in finding.evidence.items()]
    lines += [
        "",
        "Counts only: pacsaudit stores no patient name, ID, birth date or element value, and never "
        "sends C-MOVE, C-GET or C-STORE (their availability is judged from the negotiation).",
    ]
    return "\n".join(lines)


def _item(result: EndpointResult, finding: Finding, scan_label: str) -> dict[str, Any]:
    endpoint = endpoint_text(result)
    cves = str(finding.evidence.get("cves") or "").split()
    references = [_NVD + cve for cve in cves]
    source = finding.evidence.get("source")
    if isinstance(source, str):
        references.append(source)
    item: dict[str, Any] = {
        "title": clean(finding.title, _TITLE_LIMIT),
        "severity": DEFECTDOJO_SEVERITY[finding.severity],
        "description": _description(result, finding, scan_label),
        "date": result.timestamp[:10] if len(result.timestamp) >= 10 else None,
        "endpoints": [endpoint] if endpoint else None,
        "unique_id_from_tool": f"{finding.id}:{endpoint or 'unaddressable:' + str(result.port)}",
        "vuln_id_from_tool": finding.id,
        "mitigation": finding.remediation,
        "references": "\n".join(references) if references else None,
        "cwe": _VULNERABLE_COMPONENT_CWE
        if finding.id.startswith("PACS-VULN-")
        else CWE_BY_RULE.get(finding.id),
        "service": _service(finding.id),
        "dynamic_finding": True,
        "static_finding": False,
        "tags": ["pacsaudit", finding.id.lower()],
    }
    product, version = finding.evidence.get("product"), finding.evidence.get("version")
    if isinstance(product, str):
        item["component_name"] = clean(product, 200)
        if isinstance(version, str):
            item["component_version"] = clean(version, 100)
    if cves:
        item["vulnerability_ids"] = cves
    return {key: value for key, value in item.items() if value is not None}


def iter_defectdojo_findings(
    results: Iterable[EndpointResult], *, scan_label: str, attributor: Attributor | None = None
) -> Iterator[dict[str, Any]]:
    """The Generic Findings items for `results`, one endpoint at a time (nothing else is held).
    Results stored without attribution are attributed first (see `attributed`): pass the
    `attributor` holding the user's ASN database so the owners match `pacsaudit notify`'s."""
    for result in attributed(results, attributor):
        for finding in findings_for(result):
            yield _item(result, finding, scan_label)


def defectdojo_findings(
    results: Iterable[EndpointResult], *, scan_label: str, attributor: Attributor | None = None
) -> dict[str, Any]:
    """The Generic Findings JSON document for `results` (import it with scan type "Generic Findings
    Import"); `scan_label` (e.g. "scan 17") names the test and appears in every description.
    Builds the whole document in memory: for a large scan, `write_defectdojo` streams it."""
    findings = list(iter_defectdojo_findings(results, scan_label=scan_label, attributor=attributor))
    return {"name": f"pacsaudit {scan_label}", "findings": findings}


def write_defectdojo(
    results: Iterable[EndpointResult],
    out: TextIO,
    *,
    scan_label: str,
    attributor: Attributor | None = None,
) -> int:
    """Write the document `defectdojo_findings` returns, as `json.dumps(document, indent=2,
    ensure_ascii=False)` and a newline would, one finding at a time; return how many findings."""
    out.write("{\n" + f'  "name": {json.dumps(f"pacsaudit {scan_label}", ensure_ascii=False)},\n')
    out.write('  "findings": [')
    count = 0
    for item in iter_defectdojo_findings(results, scan_label=scan_label, attributor=attributor):
        text = json.dumps(item, indent=2, ensure_ascii=False).replace("\n", "\n    ")
        out.write(("," if count else "") + "\n    " + text)
        count += 1
    out.write("\n  ]\n}\n" if count else "]\n}\n")
    return count
