"""`pacsaudit lab`: start the built-in fleet on loopback, scan it like any network, show the verdicts.

The fleet runs on its own event loop in a thread, the scan on the main one, exactly as two
machines would; each result is checked against what the lab member is known to be.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pacsaudit.config import ScanSettings
from pacsaudit.engine import run, run_scan
from pacsaudit.lab.fleet import LAB_FLEET, LabMember, start_fleet_in_thread
from pacsaudit.lab.web import WebPolicy
from pacsaudit.model import DicomBlock, EndpointResult
from pacsaudit.output import JsonlWriter
from pacsaudit.targets import Endpoint

__all__ = ["LAB_SETTINGS", "matches_expectation", "run_lab", "write_lab_report"]

LAB_SETTINGS = ScanSettings(
    timeout=2.0, deadline=6.0, rate=0, ae_pause=0.01, emit_all=True, census=True, query_pause=0.0
)


def matches_expectation(member: LabMember, result: EndpointResult) -> bool:
    """Whether the scan said what the lab member is; `None` expectations accept any value."""
    d = result.dicom
    checks: list[bool] = []
    if member.expected_status is not None:
        checks.append(result.status == member.expected_status)
    if member.expected_association is not None:
        checks.append(d is not None and d.association == member.expected_association)
    if member.expected_open_to_any_ae is not None:
        checks.append(d is not None and d.open_to_any_ae == member.expected_open_to_any_ae)
    if member.expected_called_ae is not None:
        checks.append(d is not None and d.accepted_called_ae == member.expected_called_ae)
    if member.expected_transient:
        checks.append(d is not None and d.transient)
    if member.expected_studies is not None:
        counts = d.counts if d is not None else result.http.counts if result.http is not None else None
        checks.append(counts is not None and counts.complete and counts.studies == member.expected_studies)
    h = result.http
    if member.expected_web_product is not None:
        checks.append(h is not None and h.product == member.expected_web_product)
    if member.expected_auth_required is not None:
        checks.append(h is not None and h.auth_required == member.expected_auth_required)
    if member.tls:
        checks.append(result.tls is not None and result.tls.detected)
    return all(checks)


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _checks(d: DicomBlock) -> str:
    """The AE-title checks proven, in a word or two."""
    proven = [
        name for name, check in (("called", d.called_ae_check), ("calling", d.calling_ae_check)) if check
    ]
    if proven:
        return "+".join(proven)
    return "none" if d.called_ae_check is False and d.calling_ae_check is False else "-"


def _product(r: EndpointResult) -> str:
    """What answered, with `(web)` for a web front end and `TLS` when inside TLS."""
    d, h = r.dicom, r.http
    if d is not None and d.detected:
        text = " ".join(p for p in (d.product, d.version) if p) or "-"
    elif h is not None and h.product:
        text = " ".join(p for p in (h.product, h.version) if p) + " (web)"
    else:
        return "-"
    return f"{text}, TLS" if r.tls is not None and r.tls.detected else text


def _table(rows: list[tuple[LabMember, EndpointResult]], *, wide: bool) -> Table:
    """The verdicts; a narrow terminal gets the essentials (the JSON Lines file has everything)."""
    table = Table(title="pacsaudit lab: what a stranger finds", header_style="bold", pad_edge=False)
    columns = ["endpoint", "lab member", "status", "assoc.", "any AE", "AE checks", "title found", "product",
               "echo", "studies (queries)", "ok"]  # fmt: skip
    if not wide:
        columns = ["endpoint", "lab member", "status", "any AE", "AE checks", "studies (queries)", "ok"]
    for column in columns:
        if column == "product":
            table.add_column(column, overflow="ellipsis", no_wrap=True, max_width=24)
        else:
            table.add_column(column, overflow="fold", min_width=min(len(column), 9))
    for member, r in rows:
        d = r.dicom
        counts = d.counts if d else r.http.counts if r.http else None
        cells = {
            "endpoint": f"{r.ip}:{r.port}",
            "lab member": member.name,
            "status": str(r.status),
            "assoc.": (d.association or "-") if d else "-",
            "any AE": _yes_no(d.open_to_any_ae) if d else "-",
            "AE checks": _checks(d) if d else "-",
            "title found": (d.accepted_called_ae or "-") if d and d.open_to_any_ae is False else "-",
            "product": _product(r),
            "echo": _yes_no(d.echo) if d else "-",
            "studies (queries)": f"{counts.studies:,} ({counts.queries})" if counts else "-",
            "ok": "[green]yes[/green]" if matches_expectation(member, r) else "[red]NO[/red]",
        }
        table.add_row(*(cells[c] for c in columns))
    return table


def scan_lab(members: tuple[LabMember, ...], settings: ScanSettings, output: Path) -> list[EndpointResult]:
    endpoints = [Endpoint(position=i, ip=m.host, port=m.port, hostname=None) for i, m in enumerate(members)]
    results: list[EndpointResult] = []

    def keep(result: EndpointResult) -> None:
        results.append(result)
        writer.write(result)

    with JsonlWriter(output) as writer:
        run(run_scan(endpoints, settings, keep))
    return results


def write_lab_report(results: list[EndpointResult], report: Path) -> None:
    """The census report of the lab scan, as `pacsaudit report` makes it from a stored scan."""
    from pacsaudit.assessment import Attributor
    from pacsaudit.reports.census import build_census
    from pacsaudit.reports.html import render_html

    ordered = sorted(results, key=lambda r: (r.ip, r.port))  # a host's results must be adjacent
    with Attributor() as attributor:
        census = build_census(ordered, attributor=attributor)
    report.write_text(render_html(census), encoding="utf-8")


def run_lab(
    output: Path,
    *,
    quiet: bool = False,
    console: Console | None = None,
    any_port: bool = False,
    report: Path | None = None,
) -> int:
    """Start the lab, scan it, print the table; exit status 1 if any verdict was not the expected one.

    `any_port` lets the system pick the ports, so a test can run the lab beside another one;
    `report` is where the HTML census report of the scan goes (none if None).
    """
    console = console or Console()
    members = LAB_FLEET
    if not quiet:
        console.print(f"[bold]Starting {len(members)} simulated PACS and impostors on 127.77.0.0/24 ...")
    with start_fleet_in_thread(members, any_port=any_port) as fleet:
        placed = tuple(replace(m, host=host, port=port) for m, host, port in fleet.endpoints)
        # Web members are probed as web ports wherever they were placed (any_port moves them).
        web_ports = {*LAB_SETTINGS.web_ports, *(m.port for m in placed if isinstance(m.behaviour, WebPolicy))}
        settings = LAB_SETTINGS.model_copy(update={"web_ports": sorted(web_ports)})
        started = time.monotonic()
        results = scan_lab(placed, settings, output)
        elapsed = time.monotonic() - started
    by_endpoint = {(r.ip, r.port): r for r in results}
    rows = [(m, by_endpoint[(m.host, m.port)]) for m in placed if (m.host, m.port) in by_endpoint]
    console.print(_table(rows, wide=console.width >= 130))
    for member, result in rows:
        if not matches_expectation(member, result):
            console.print(f"[red]{member.name}[/red]: expected {member.expected}; got {result.status}")
    good = sum(matches_expectation(m, r) for m, r in rows)
    console.print(
        f"{len(rows)} endpoints scanned in {elapsed:.1f} s; {good}/{len(members)} verdicts as expected; "
        f"JSON Lines written to [bold]{output}[/bold]"
    )
    if report is not None:
        write_lab_report(results, report)
        console.print(f"Census report (HTML, opens offline): [bold]{report}[/bold]")
    return 0 if good == len(members) else 1
