"""The census as CSV: one table per file, chosen with `--table` (the per-country census by default).

Every file opens with two `#` comment lines, the privacy line and the cost formula (read it
with `comment="#"` in pandas, or skip lines starting with `#`), then a header row. Text a
server or an ASN database chose is cleaned and defused for spreadsheets (a cell that would
start a formula gets a leading `'`). The `systems` table is written while the scan streams
past, one row per endpoint, so it costs no memory whatever the scan's size.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from enum import StrEnum
from typing import TextIO

from pacsaudit.assessment import Attributor, exposed_shapes, findings_for, owner_label, risk_level
from pacsaudit.model import EndpointResult
from pacsaudit.reports.census import group_label, host_attribution, host_groups
from pacsaudit.reports.census_model import Census, CensusRow
from pacsaudit.reports.text import cost_sentence, csv_cell

__all__ = ["SYSTEM_COLUMNS", "CsvTable", "write_census_csv", "write_systems_csv"]


class CsvTable(StrEnum):
    countries = "countries"
    owners = "owners"
    products = "products"
    worst = "worst"
    findings = "findings"
    systems = "systems"
    """One row per endpoint with DICOM or a PACS web service: streamed from the store."""


_CENSUS_COLUMNS = [
    "systems_unprotected",
    "studies",
    "studies_complete",
    "images",
    "images_complete",
    "patients",
    "patients_complete",
    "ssn_shaped",
    "military_id_shaped",
    "hosts_found",
]

SYSTEM_COLUMNS = [
    "ip",
    "port",
    "country",
    "owner",
    "protocol",
    "product",
    "version",
    "open_to_any_ae",
    "find",
    "move",
    "get",
    "store",
    "studies_listable_over_http",
    "studies",
    "images",
    "patients",
    "counts_complete",
    "ssn_shaped",
    "risk",
    "findings",
]


def _bool(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


def _int(value: int | None) -> str:
    return "" if value is None else str(value)


def _preamble(out: TextIO, privacy: str, cost: str) -> None:
    out.write(f"# {privacy}\n# {cost}\n")


def _census_cells(row: CensusRow) -> list[str]:
    return [
        str(row.systems),
        _int(row.studies),
        _bool(row.studies_complete),
        _int(row.instances),
        _bool(row.instances_complete),
        _int(row.patients),
        _bool(row.patients_complete),
        str(row.ssn_shaped),
        str(row.military_id_shaped),
        str(row.hosts_found),
    ]


def write_census_csv(census: Census, out: TextIO, table: CsvTable = CsvTable.countries) -> None:
    """One of the census tables; `CsvTable.systems` needs the results: use `write_systems_csv`."""
    if table is CsvTable.systems:
        raise ValueError("the systems table streams from the scan: use write_systems_csv")
    _preamble(out, census.privacy, cost_sentence(census.cost))
    writer = csv.writer(out, lineterminator="\n")
    if table is CsvTable.countries:
        writer.writerow(["country", "country_name", *_CENSUS_COLUMNS])
        for row in [*census.by_country, census.totals]:
            writer.writerow([csv_cell(row.key), csv_cell(row.name), *_census_cells(row)])
    elif table is CsvTable.owners:
        writer.writerow(["owner", *_CENSUS_COLUMNS])
        for row in [*census.by_owner, census.totals]:
            writer.writerow([csv_cell(row.key), *_census_cells(row)])
    elif table is CsvTable.products:
        writer.writerow(["product", "version", "protocol", "endpoints", "unprotected", "studies"])
        for p in census.by_product:
            writer.writerow(
                [csv_cell(p.product), csv_cell(p.version), p.protocol, p.systems, p.unprotected, p.studies]
            )
    elif table is CsvTable.worst:
        writer.writerow(
            ["ip", "ports", "country", "owner", "product", "version", "studies", "images", "patients",
             "complete", "ssn_shaped", "risk", "findings"]
        )  # fmt: skip
        for a in census.worst_archives:
            writer.writerow(
                [a.ip, " ".join(str(p) for p in a.ports), csv_cell(a.country), csv_cell(a.owner),
                 csv_cell(a.product), csv_cell(a.version), a.studies, _int(a.instances), _int(a.patients),
                 _bool(a.complete), a.ssn_shaped, a.risk, " ".join(a.findings)]
            )  # fmt: skip
    else:
        writer.writerow(["id", "title", "severity", "endpoints"])
        for f in census.findings:
            writer.writerow([f.id, csv_cell(f.title, None), f.severity, f.systems])


def write_systems_csv(
    results: Iterable[EndpointResult],
    out: TextIO,
    *,
    attributor: Attributor | None = None,
    privacy: str,
    cost: str,
) -> int:
    """One row per endpoint where DICOM or a PACS web service was detected; returns the rows written.

    `results` in (ip, port) order, as the store yields them. `privacy` and `cost` are the two
    comment lines (the cost sentence comes from the census, so the caller builds that first).
    """
    _preamble(out, privacy, cost)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SYSTEM_COLUMNS)
    rows = 0
    for run in host_groups(results):
        attribution = host_attribution(run, attributor)
        for result in run:
            d, h = result.dicom, result.http
            dicom = d is not None and d.detected
            http = h is not None and h.detected
            if not dicom and not http:
                continue
            counts = d.counts if d is not None and d.counts is not None else (h.counts if h else None)
            services = d.services if d is not None else None
            findings = findings_for(result)
            protocol = "+".join(name for name, seen in (("dicom", dicom), ("http", http)) if seen)
            product = d.product if dicom and d is not None else (h.product if h else None)
            version = d.version if dicom and d is not None else (h.version if h else None)
            writer.writerow(
                [
                    result.ip,
                    result.port,
                    csv_cell(group_label(attribution)),
                    csv_cell(owner_label(attribution)),
                    protocol,
                    csv_cell(product),
                    csv_cell(version),
                    _bool(d.open_to_any_ae if d is not None else None),
                    _bool(services.find if services else None),
                    _bool(services.move if services else None),
                    _bool(services.get if services else None),
                    _bool(services.store if services else None),
                    _bool(h.studies_listable if h is not None else None),
                    _int(counts.studies if counts else None),
                    _int(counts.instances if counts else None),
                    _int(counts.patients if counts else None),
                    _bool(counts.complete if counts else None),
                    str(shapes[0].ssn_shaped) if (shapes := exposed_shapes(result)) else "",
                    str(risk_level(findings)),
                    " ".join(f.id for f in findings),
                ]
            )
            rows += 1
    return rows
