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

__all__ = ["INDEX_NAME", "ExposedEndpoint", "OwnerNotice", "notice_file_name", "write_owner_notices"]

INDEX_NAME = "index.md"
_SLUG = re.compile(r"[^A-Za-z0-9]+")


@dataclass
class ExposedEndpoint:
    """One endpoint of an owner, with its findings above `info`, most severe first."""

    result: EndpointResult
    findings: list[Finding]


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


def _cell(value: object) -> str:
    """A value safe inside a Markdown table cell (peers choose product strings)."""
    text = (
        "unknown" if value is None else ("yes" if value is True else "no" if value is False else str(value))
    )
    text = text.replace("\r", " ").replace("\n", " ").replace("|", "\\|").replace("`", "'")
    return text.replace("<", "&lt;").replace(">", "&gt;")


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
        key=lambda e: (severity_rank(e.findings[0].severity), e.result.ip, e.result.port),
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
            f"| {_cell(_endpoint(exposed.result))} | {_cell(_product(exposed.result))} "
            f"| {risk_level(exposed.findings)} | {', '.join(f.id for f in exposed.findings)} |"
        )
    for exposed in endpoints:
        r = exposed.result
        lines += [
            "",
            f"## {_cell(_endpoint(r))}",
            "",
            f"Observed {_cell(r.timestamp)}; product: {_cell(_product(r))}.",
        ]
        for finding in exposed.findings:
            lines += [
                "",
                f"### {finding.severity.upper()}: {_cell(finding.title)} (`{finding.id}`)",
                "",
                *(f"- {_cell(key)}: {_cell(value)}" for key, value in finding.evidence.items()),
                "",
                f"**Remediation:** {_cell(finding.remediation)}",
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
        notice.endpoints.append(ExposedEndpoint(result=result, findings=found))
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
