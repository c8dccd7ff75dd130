"""Owner notices: one PHI-free Markdown file per network owner, ready for a CERT or abuse contact.

The owner is who holds the address (`owner_label`: AS number and organisation from the user's
ASN database, else the registry country, else the kind of address). Each notice lists the
owner's exposed endpoints (those with a finding above `info`), every finding with its evidence
(counts, flags, product names: never a patient value) and what to do. `index.md` lists them all.
Results stored before attribution existed are attributed here, from the same offline data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pacsaudit import __version__
from pacsaudit.assessment.attribution import Attributor, attributed, owner_label
from pacsaudit.assessment.findings import (
    SEVERITY_ORDER,
    Finding,
    Severity,
    findings_for,
    risk_level,
    severity_rank,
)
from pacsaudit.model import Attribution, EndpointResult
from pacsaudit.reports.text import MAX_TEXT, md_inert

__all__ = ["INDEX_NAME", "ExposedEndpoint", "OwnerNotice", "notice_file_name", "write_owner_notices"]

INDEX_NAME = "index.md"
_SLUG = re.compile(r"[^A-Za-z0-9]+")


@dataclass(frozen=True)
class ExposedEndpoint:
    """One endpoint of an owner reduced to what its notice prints (not the whole result, so a
    scan with many exposed endpoints is not held in memory): its findings above `info`, most
    severe first."""

    ip: str
    port: int
    endpoint: str
    product: str
    observed: str
    findings: tuple[Finding, ...]

    @classmethod
    def of(cls, result: EndpointResult, findings: list[Finding]) -> ExposedEndpoint:
        return cls(
            ip=result.ip,
            port=result.port,
            endpoint=_endpoint(result),
            product=_product(result),
            observed=result.timestamp,
            findings=tuple(findings),
        )


@dataclass
class OwnerNotice:
    """What one owner is told about."""

    owner: str
    attribution: Attribution | None
    endpoints: list[ExposedEndpoint] = field(default_factory=list)

    @property
    def worst(self) -> Severity | Literal["none"]:
        return risk_level([f for e in self.endpoints for f in e.findings])


def notice_file_name(owner: str) -> str:
    """A portable file name for an owner label: letters, digits and dashes, at most 80 of them."""
    slug = _SLUG.sub("-", owner).strip("-")[:80].strip("-")
    return f"{slug or 'unknown'}.md"


_EVIDENCE_LIMIT = 600
"""Evidence values are cut here: long enough for pacsaudit's own citations, short for a peer's text."""


def _cell(value: object, limit: int | None = MAX_TEXT) -> str:
    """A value inert anywhere in a Markdown line: peers choose product strings, the user's ASN
    database the owner names (`reports.text.md_inert`)."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return md_inert(str(value), limit)


def _endpoint(result: EndpointResult) -> str:
    host = result.ip or result.hostname or "unknown"
    return f"[{host}]:{result.port}" if ":" in host else f"{host}:{result.port}"


def _product(result: EndpointResult) -> str:
    for block in (result.dicom, result.http):
        if block is not None and block.product:
            return f"{block.product} {block.version or ''}".strip()
    return "unidentified"


def _who(a: Attribution | None) -> list[str]:
    if a is None:
        return ["- Network owner: unknown"]
    lines = [f"- Address scope: {_cell(a.scope)}", f"- Registry country: {_cell(a.country)}"]
    if a.asn is not None:
        lines.append(f"- Autonomous system: AS{a.asn} {_cell(a.as_org) if a.as_org else ''}".rstrip())
    return lines


def _render_notice(notice: OwnerNotice, scan_label: str, generated: str) -> str:
    endpoints = sorted(
        notice.endpoints,
        key=lambda e: (severity_rank(e.findings[0].severity), e.ip, e.port),
    )
    by_severity = {s: 0 for s in SEVERITY_ORDER}
    for exposed in endpoints:
        for finding in exposed.findings:
            by_severity[finding.severity] += 1
    lines = [
        f"# Exposed medical-image systems: {_cell(notice.owner)}",
        "",
        f"Prepared by pacsaudit {__version__} from {_cell(scan_label)} on {generated}. "
        "This notice holds no patient data: counts, flags and product names only.",
        "",
        *_who(notice.attribution),
        f"- Exposed endpoints: {len(endpoints)}",
        f"- Highest risk: {notice.worst}",
        "- Findings: " + ", ".join(f"{by_severity[s]} {s}" for s in SEVERITY_ORDER if by_severity[s]),
        "",
        "## Endpoints",
        "",
        "| endpoint | product | risk | findings |",
        "| --- | --- | --- | --- |",
    ]
    for exposed in endpoints:
        lines.append(
            f"| {_cell(exposed.endpoint)} | {_cell(exposed.product)} "
            f"| {risk_level(exposed.findings)} | {', '.join(f.id for f in exposed.findings)} |"
        )
    for exposed in endpoints:
        lines += [
            "",
            f"## {_cell(exposed.endpoint)}",
            "",
            f"Observed {_cell(exposed.observed)}; product: {_cell(exposed.product)}.",
        ]
        for finding in exposed.findings:
            lines += [
                "",
                f"### {finding.severity.upper()}: {_cell(finding.title, None)} (`{finding.id}`)",
                "",
                *(
                    f"- {key}: {_cell(value, _EVIDENCE_LIMIT)}"  # keys are pacsaudit's snake_case names
                    for key, value in finding.evidence.items()
                ),
                "",
                f"**Remediation:** {_cell(finding.remediation, None)}",
            ]
    lines += [
        "",
        "## How this was observed",
        "",
        "pacsaudit opened DICOM associations with random AE titles and its own calling AE title "
        "(PACSAUDIT by default), sent a C-ECHO and, for census scans, C-FIND queries whose answers "
        "were reduced to counts. It never sends C-MOVE, C-GET or C-STORE: those services are judged "
        "from the presentation contexts the server accepted (`negotiated`). SSN-shaped and 10-digit "
        "identifiers are counted as shapes, not verified identities.",
        "",
    ]
    return "\n".join(lines)


def _render_index(notices: list[tuple[OwnerNotice, str]], scan_label: str, generated: str) -> str:
    lines = [
        "# Owner notices",
        "",
        f"pacsaudit {__version__}, {_cell(scan_label)}, {generated}: {len(notices)} network owner(s) "
        "with exposed endpoints. No patient data in any file.",
        "",
        "| owner | country | endpoints | highest risk | notice |",
        "| --- | --- | --- | --- | --- |",
    ]
    for notice, name in notices:
        country = notice.attribution.country if notice.attribution else None
        lines.append(
            f"| {_cell(notice.owner)} | {_cell(country)} | {len(notice.endpoints)} | {notice.worst} "
            f"| [{name}]({name}) |"
        )
    lines.append("")
    return "\n".join(lines)


def write_owner_notices(
    results: Iterable[EndpointResult],
    out_dir: Path,
    *,
    attributor: Attributor | None = None,
    scan_label: str = "a pacsaudit scan",
) -> list[Path]:
    """Write one notice per owner with an exposed endpoint, then `index.md`; return their paths
    (notices sorted by owner, the index last). Results lacking attribution are attributed with
    `attributor` (or a country-only one made and closed here); with an ASN database in
    `attributor`, public addresses stored without an AS get theirs now."""
    notices: dict[str, OwnerNotice] = {}
    for result in attributed(results, attributor):
        found = [f for f in findings_for(result) if f.severity != "info"]
        if not found:
            continue
        owner = owner_label(result.attribution)
        notice = notices.setdefault(owner, OwnerNotice(owner=owner, attribution=result.attribution))
        notice.endpoints.append(ExposedEndpoint.of(result, found))
    out_dir.mkdir(parents=True, exist_ok=True)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    written: list[Path] = []
    named: list[tuple[OwnerNotice, str]] = []
    used: set[str] = {INDEX_NAME}
    for owner in sorted(notices):
        name = notice_file_name(owner)
        stem, n = name[:-3], 2
        while name in used:
            name, n = f"{stem}-{n}.md", n + 1
        used.add(name)
        path = out_dir / name
        path.write_text(_render_notice(notices[owner], scan_label, generated), encoding="utf-8")
        written.append(path)
        named.append((notices[owner], name))
    index = out_dir / INDEX_NAME
    index.write_text(_render_index(named, scan_label, generated), encoding="utf-8")
    written.append(index)
    return written
