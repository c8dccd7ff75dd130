"""Finding rules over the `dicom` block: who may associate, which services a stranger may use,
what the census saw, and DICOM in clear text on the internet. Pure functions of one result."""

from __future__ import annotations

from typing import Literal

from pacsaudit.assessment.finding import EvidenceValue, Finding, Severity
from pacsaudit.model import DicomBlock, EndpointResult, Evidence, SensitiveShapes, StudyCounts

__all__ = [
    "counts_evidence",
    "exposed_shapes",
    "rule_dicom_reachable",
    "rule_find_open",
    "rule_no_tls",
    "rule_open_to_any_ae",
    "rule_retrieve_open",
    "rule_sensitive_shapes",
    "rule_store_open",
]


_NEGOTIATED_ONLY: Severity = "medium"
"""The severity of a service known only from an accepted presentation context, whatever else the
server answered: Orthanc, for one, grants C-FIND, C-MOVE, C-GET and C-STORE separately, accepts
every context from anyone and refuses per request, so an answered C-FIND proves nothing about the
others (and an accepted C-FIND context nothing about C-FIND)."""


def counts_evidence(counts: StudyCounts | None) -> dict[str, EvidenceValue]:
    if counts is None:
        return {"patients": None, "studies": None, "series": None, "instances": None, "counts_complete": None}
    return {
        "patients": counts.patients,
        "studies": counts.studies,
        "series": counts.series,
        "instances": counts.instances,
        "counts_complete": counts.complete,
    }


def _product(d: DicomBlock) -> dict[str, EvidenceValue]:
    return {"product": d.product, "version": d.version}


def _accepted(result: EndpointResult) -> DicomBlock | None:
    """The DICOM block of an endpoint that accepted an association, else None."""
    d = result.dicom
    if d is None or not d.detected or d.association != "accepted":
        return None
    return d


def _service_evidence(d: DicomBlock, service: Literal["find", "move", "get", "store"]) -> Evidence | None:
    """How the service is known to be open: the recorded evidence, else `negotiated` if its context
    was accepted (results from before evidence was recorded)."""
    if d.services_evidence is not None:
        level: Evidence | None = getattr(d.services_evidence, service)
        if level is not None:
            return level
    if d.services is not None and getattr(d.services, service):
        return "negotiated"
    return None


def rule_open_to_any_ae(result: EndpointResult) -> list[Finding]:
    d = _accepted(result)
    if d is None:
        return []
    if d.open_to_any_ae:
        return [
            Finding(
                id="PACS-DICOM-OPEN-AE",
                title="DICOM service accepts associations from any AE title",
                severity="high",
                evidence={
                    "open_to_any_ae": True,
                    "ae_attempts": d.ae_attempts,
                    "echo": d.echo,
                    **_product(d),
                },
                remediation=(
                    "Accept associations only from configured peers (AE title with IP address), "
                    "and keep the DICOM port off the internet or behind a VPN."
                ),
            )
        ]
    if d.accepted_called_ae is not None:
        return [
            Finding(
                id="PACS-DICOM-GUESSABLE-AE",
                title="DICOM service accepts a guessable AE title (a vendor default or dictionary title)",
                severity="medium",
                evidence={
                    "open_to_any_ae": False,
                    "called_ae_check": d.called_ae_check,
                    "calling_ae_check": d.calling_ae_check,
                    "accepted_called_ae": d.accepted_called_ae,
                    "ae_attempts": d.ae_attempts,
                    **_product(d),
                },
                remediation=(
                    "Replace default AE titles, check both the calling AE title and the peer's IP address, "
                    "and do not rely on AE titles as a password."
                ),
            )
        ]
    return []


def rule_find_open(result: EndpointResult) -> list[Finding]:
    d = _accepted(result)
    if d is None:
        return []
    level = _service_evidence(d, "find")
    if level not in ("verified", "negotiated"):
        return []
    verified = level == "verified"
    return [
        Finding(
            id="PACS-DICOM-CFIND-OPEN",
            title=(
                "C-FIND answers a stranger's queries: patient and study lists can be enumerated"
                if verified
                else "C-FIND context accepted from a stranger (negotiated only, not queried)"
            ),
            severity="critical" if verified else _NEGOTIATED_ONLY,
            evidence={"evidence": level, **counts_evidence(d.counts), **_product(d)},
            remediation=(
                "Refuse query/retrieve to unknown peers: restrict C-FIND to configured AE titles and "
                "addresses, and take the archive off the internet."
            ),
        )
    ]


def rule_retrieve_open(result: EndpointResult) -> list[Finding]:
    d = _accepted(result)
    if d is None:
        return []
    found: list[Finding] = []
    retrieve: tuple[tuple[Literal["move", "get"], str, str], ...] = (
        ("move", "PACS-DICOM-CMOVE-OPEN", "C-MOVE"),
        ("get", "PACS-DICOM-CGET-OPEN", "C-GET"),
    )
    for service, rule_id, name in retrieve:
        level = _service_evidence(d, service)
        if level not in ("verified", "negotiated"):
            continue
        severity: Severity = "high" if level == "verified" else _NEGOTIATED_ONLY
        found.append(
            Finding(
                id=rule_id,
                title=(
                    f"{name} open to a stranger: images can be retrieved (exfiltration)"
                    if level == "verified"
                    else f"{name} context accepted from a stranger: images may be retrieved "
                    "(exfiltration; negotiated only, never sent)"
                ),
                severity=severity,
                evidence={
                    "evidence": level,
                    "find_evidence": _service_evidence(d, "find"),
                    **_product(d),
                },
                remediation=(
                    f"Allow {name} only to configured peers and destinations; reject retrieve "
                    "presentation contexts from unknown AE titles and addresses."
                ),
            )
        )
    return found


def rule_store_open(result: EndpointResult) -> list[Finding]:
    d = _accepted(result)
    if d is None:
        return []
    level = _service_evidence(d, "store")
    if level not in ("verified", "negotiated"):
        return []
    return [
        Finding(
            id="PACS-DICOM-CSTORE-OPEN",
            title=(
                "C-STORE context accepted from a stranger: images could be altered or planted "
                f"(tampering; {'verified' if level == 'verified' else 'negotiated only, never sent'})"
            ),
            severity="high" if level == "verified" else _NEGOTIATED_ONLY,
            evidence={"evidence": level, "find_evidence": _service_evidence(d, "find"), **_product(d)},
            remediation=(
                "Accept C-STORE only from known modalities and peers (AE title and IP address); "
                "unknown senders must be refused at association time."
            ),
        )
    ]


def exposed_shapes(result: EndpointResult) -> tuple[SensitiveShapes, StudyCounts | None, str] | None:
    """The identifier shapes a stranger could enumerate, from C-FIND or QIDO-RS, whichever saw more
    (the same archive seen twice is one exposure), with the counts beside them and where from."""
    seen: list[tuple[SensitiveShapes, StudyCounts | None, str]] = []
    d, h = result.dicom, result.http
    if d is not None and d.sensitive is not None:
        seen.append((d.sensitive, d.counts, "C-FIND"))
    if h is not None and h.sensitive is not None:
        seen.append((h.sensitive, h.counts, "QIDO-RS"))
    if not seen:
        return None
    return max(seen, key=lambda s: (s[0].ssn_shaped, s[0].military_id_shaped))


def rule_sensitive_shapes(result: EndpointResult) -> list[Finding]:
    exposed = exposed_shapes(result)
    if exposed is None:
        return []
    shapes, counts, source = exposed
    found: list[Finding] = []
    if shapes.ssn_shaped > 0:
        found.append(
            Finding(
                id="PACS-DICOM-SSN-SHAPES",
                title=(
                    "Identifiers shaped like US Social Security numbers exposed to strangers "
                    "(shapes, not proof)"
                ),
                severity="critical",
                evidence={
                    "ssn_shaped": shapes.ssn_shaped,
                    "military_id_shaped": shapes.military_id_shaped,
                    "label": "shape-count",
                    "patients": counts.patients if counts else None,
                    "seen_through": source,
                },
                remediation=(
                    "Stop using SSNs as patient identifiers, close the archive to strangers, and treat "
                    "the exposure as a possible breach of identifying data."
                ),
            )
        )
    if shapes.military_id_shaped > 0:
        found.append(
            Finding(
                id="PACS-DICOM-MILITARY-ID-SHAPES",
                title="10-digit identifiers exposed to strangers (DoD-ID-like shapes; many are plain MRNs)",
                severity="medium",
                evidence={
                    "military_id_shaped": shapes.military_id_shaped,
                    "label": "shape-count",
                    "patients": counts.patients if counts else None,
                    "seen_through": source,
                },
                remediation=(
                    "Check whether these identifiers are government or military IDs; close the archive "
                    "to strangers either way."
                ),
            )
        )
    return found


def rule_no_tls(result: EndpointResult) -> list[Finding]:
    d = result.dicom
    if d is None or not d.detected:
        return []
    attribution = result.attribution
    if attribution is None or attribution.scope != "public":
        return []
    if result.tls is not None and result.tls.detected:
        return []
    return [
        Finding(
            id="PACS-DICOM-NO-TLS",
            title="DICOM spoken in clear text on an internet-reachable port",
            severity="high" if d.association == "accepted" else "medium",
            evidence={
                "scope": attribution.scope,
                "port": result.port,
                "association": d.association,
                "tls_detected": False,
            },
            remediation=(
                "Do not expose DICOM to the internet; where remote peers need it, use a VPN or "
                "DICOM over TLS (port 2762) with client certificates."
            ),
        )
    ]


def rule_dicom_reachable(result: EndpointResult) -> list[Finding]:
    """Informational: a DICOM service answers strangers at all, even if it refused them."""
    d = result.dicom
    if d is None or not d.detected or d.association == "accepted":
        return []
    return [
        Finding(
            id="PACS-DICOM-REACHABLE",
            title="DICOM service reachable (it refused the stranger's association)",
            severity="info",
            evidence={"association": d.association, "transient": d.transient, **_product(d)},
            remediation="Keep DICOM services off untrusted networks even when they check AE titles.",
        )
    ]
