"""Finding rules over the `http` and `tls` blocks, and known-vulnerable product versions (from
`data/vulnerable_versions.toml`) whichever protocol named the product. Pure functions of one result."""

from __future__ import annotations

from pacsaudit.assessment.dicom_rules import counts_evidence
from pacsaudit.assessment.finding import EvidenceValue, Finding, Severity, severity_rank
from pacsaudit.assessment.vulnerabilities import KnownVulnerability, matching_vulnerabilities
from pacsaudit.model import EndpointResult

__all__ = ["rule_tls_weakness", "rule_vulnerable_version", "rule_web_exposure"]

_TOOLKIT_CAP: Severity = "medium"
"""The highest severity of a match on a toolkit's version (DCMTK inside Orthanc, dcmqrscp, ...):
the product may have patched the flaw or never use the affected tool."""


def _vulnerability_finding(vuln: KnownVulnerability, product: str, version: str, block: str) -> Finding:
    """A rule-level title (the affected range, not the observed version, so one title fits every
    endpoint the rule fires on); a toolkit version only says "may be affected", at most medium."""
    toolkit = vuln.version_confidence == "toolkit"
    cves = ", ".join(vuln.cves)
    title = (
        f"Built on {vuln.product} {vuln.affected_text}: may be affected (toolkit version) by {cves}: "
        f"{vuln.summary}"
        if toolkit
        else f"{vuln.product} {vuln.affected_text} is affected by {cves}: {vuln.summary}"
    )
    severity: Severity = vuln.severity
    if toolkit and severity_rank(severity) < severity_rank(_TOOLKIT_CAP):
        severity = _TOOLKIT_CAP
    return Finding(
        id=f"PACS-VULN-{vuln.id.upper()}",
        title=title,
        severity=severity,
        evidence={
            "product": product,
            "version": version,
            "observed_in": block,
            "affected": vuln.affected_text,
            "cves": " ".join(vuln.cves),
            "advisory_severity": vuln.severity,
            "source": vuln.source,
            "version_confidence": vuln.version_confidence,
        },
        remediation=vuln.remediation,
    )


def rule_vulnerable_version(result: EndpointResult) -> list[Finding]:
    found: list[Finding] = []
    seen: set[str] = set()
    sources: list[tuple[str, str | None, str | None]] = []
    if result.dicom is not None and result.dicom.detected:
        sources.append(("dicom", result.dicom.product, result.dicom.version))
    if result.http is not None and result.http.detected:
        sources.append(("http", result.http.product, result.http.version))
        sources.extend(("http", s.product, s.version) for s in result.http.services)
    for block, product, version in sources:
        if not product or not version:
            continue
        for vuln in matching_vulnerabilities(product, version):
            if vuln.id not in seen:
                seen.add(vuln.id)
                found.append(_vulnerability_finding(vuln, product, version, block))
    return found


def rule_web_exposure(result: EndpointResult) -> list[Finding]:
    h = result.http
    if h is None or not h.detected:
        return []
    base: dict[str, EvidenceValue] = {
        "scheme": h.scheme,
        "product": h.product,
        "version": h.version,
        "dicomweb_root": h.dicomweb_root,
    }
    found: list[Finding] = []
    if h.default_credentials_accepted:
        found.append(
            Finding(
                id="PACS-WEB-DEFAULT-CREDENTIALS",
                title="PACS web interface accepts the vendor's default login",
                severity="critical",
                evidence={"default_credentials_accepted": True, **base},
                remediation="Change every default password now, and keep the web interface off the internet.",
            )
        )
    if h.studies_listable:
        found.append(
            Finding(
                id="PACS-WEB-STUDIES-LISTABLE",
                title="Studies can be listed over the web (DICOMweb QIDO-RS or REST API) by a stranger",
                severity="critical",
                evidence={"studies_listable": True, **counts_evidence(h.counts), **base},
                remediation=(
                    "Require authentication on the REST and DICOMweb APIs and put them behind a VPN "
                    "or an authenticating reverse proxy."
                ),
            )
        )
    if h.auth_required is False:
        found.append(
            Finding(
                id="PACS-WEB-NO-AUTH",
                title="PACS web service answers without authentication",
                severity="high",
                evidence={
                    "auth_required": False,
                    "services": ", ".join(sorted({s.kind for s in h.services if s.auth_required is False})),
                    **base,
                },
                remediation=(
                    "Enable authentication on every PACS web service (for Orthanc: AuthenticationEnabled)."
                ),
            )
        )
    if h.scheme == "http" and (h.auth_required is not None or h.services):
        found.append(
            Finding(
                id="PACS-WEB-CLEARTEXT",
                title="PACS web service served over plain HTTP",
                severity="medium",
                evidence={"scheme": "http", **{k: v for k, v in base.items() if k != "scheme"}},
                remediation="Serve the web interface over HTTPS only, and redirect or close plain HTTP.",
            )
        )
    return found


_OLD_TLS = {"SSLv2", "SSLv3", "TLSv1", "TLSv1.0", "TLSv1.1"}


def rule_tls_weakness(result: EndpointResult) -> list[Finding]:
    t = result.tls
    if t is None or not t.detected:
        return []
    found: list[Finding] = []
    if t.version is not None and t.version in _OLD_TLS:
        found.append(
            Finding(
                id="PACS-TLS-OLD-VERSION",
                title=f"TLS version below 1.2 accepted ({t.version})",
                severity="medium",
                evidence={"tls_version": t.version, "cipher": t.cipher},
                remediation="Disable SSL 3.0, TLS 1.0 and TLS 1.1; offer TLS 1.2 and 1.3 only.",
            )
        )
    cert = t.certificate
    if cert is not None and cert.expired:
        found.append(
            Finding(
                id="PACS-TLS-EXPIRED-CERT",
                title="TLS certificate expired",
                severity="medium",
                evidence={"not_after": cert.not_after, "sha256": cert.sha256},
                remediation="Renew the certificate and automate its renewal.",
            )
        )
    if cert is not None and cert.self_signed:
        found.append(
            Finding(
                id="PACS-TLS-SELF-SIGNED",
                title="TLS certificate is self-signed: peers cannot authenticate the server",
                severity="low",
                evidence={"self_signed": True, "sha256": cert.sha256},
                remediation=(
                    "Use a certificate from a CA the peers trust (an internal CA is fine) and have "
                    "peers verify it."
                ),
            )
        )
    return found
