"""The census as Markdown: the same sections as the HTML report, for a ticket, a wiki or an e-mail.

Text a server or an ASN database chose (products, versions, owners, modalities, years) goes
through `md_inert`: no cell, link, image or autolink can start in it. Country labels and
pacsaudit's own words go through `md`, which already keeps them to one cell.
"""

from __future__ import annotations

from pacsaudit.reports.census_model import DELTA_NOTE, Census, CensusRow, Growth, GrowthRow
from pacsaudit.reports.text import (
    SEED_COLUMNS,
    cost_sentence,
    country_label,
    growth_delta,
    growth_percent,
    md,
    md_inert,
    number,
    product_label,
    signed,
)

__all__ = ["render_markdown"]

_GROWTH_LABELS = dict(
    zip(("systems", "studies", "instances", "patients", "ssn_shaped"), SEED_COLUMNS, strict=True)
)


def _seed_cells(row: CensusRow) -> str:
    return (
        f"{row.systems:,} | {number(row.studies, row.studies_complete)} | "
        f"{number(row.instances, row.instances_complete)} | {number(row.patients, row.patients_complete)} | "
        f"{row.ssn_shaped:,}"
    )


def _census_table(first: str, rows: list[CensusRow], totals: CensusRow) -> list[str]:
    lines = [
        f"| {first} | " + " | ".join(SEED_COLUMNS) + " | Hosts found |",
        "|---|" + "---:|" * (len(SEED_COLUMNS) + 1),
    ]
    for row in rows:
        lines.append(f"| {md(country_label(row))} | {_seed_cells(row)} | {row.hosts_found:,} |")
    lines.append(f"| **Total** | {_seed_cells(totals)} | {totals.hosts_found:,} |")
    return [*lines, ""]


def render_markdown(census: Census) -> str:
    scan = census.scan
    name = "scan" if scan.id is None else f"scan {scan.id}"
    lines = [f"# pacsaudit census: {name}", ""]
    when = []
    if scan.started_at is not None:
        when.append(f"started {scan.started_at.strftime('%Y-%m-%d %H:%M %Z').strip()}")
    if scan.state:
        when.append(scan.state)
    lines += [
        (f"{name[0].upper()}{name[1:]}" + (f" ({', '.join(when)})" if when else ""))
        + f": {scan.results:,} results, {scan.endpoints:,} endpoints with DICOM or a PACS web service.",
        "",
        f"*{census.privacy}*",
        "",
        "## Summary",
        "",
        "| " + " | ".join(SEED_COLUMNS) + " |",
        "|" + "---:|" * len(SEED_COLUMNS),
        f"| {_seed_cells(census.totals)} |",
        "",
        cost_sentence(census.cost),
        "",
        "## Per country",
        "",
    ]
    lines += (
        _census_table("Country", census.by_country, census.totals) if census.by_country else ["None.", ""]
    )

    lines += ["## Per network owner", ""]
    if census.by_owner:
        lines += [
            "| Owner | " + " | ".join(SEED_COLUMNS) + " | Hosts found |",
            "|---|" + "---:|" * (len(SEED_COLUMNS) + 1),
        ]
        lines += [
            f"| {md_inert(row.key)} | {_seed_cells(row)} | {row.hosts_found:,} |" for row in census.by_owner
        ]
        lines.append("")
    else:
        lines += ["None.", ""]

    lines += ["## Products", ""]
    if census.by_product:
        lines += [
            "| Product | Version | Protocol | Endpoints | Unprotected | Studies |",
            "|---|---|---|---:|---:|---:|",
        ]
        for p in census.by_product:
            lines.append(
                f"| {md_inert(p.product or 'unknown')} | {md_inert(p.version or '—')} | {p.protocol} | "
                f"{p.systems:,} | "
                f"{p.unprotected:,} | {p.studies:,} |"
            )
        lines.append("")
    else:
        lines += ["None.", ""]

    lines += ["## Worst archives (by accessible studies)", ""]
    if census.worst_archives:
        lines += [
            "| Host | Ports | Country | Owner | Product | Studies | Images | Patients | SSN-shaped | Risk |",
            "|---|---|---|---|---|---:|---:|---:|---:|---|",
        ]
        for a in census.worst_archives:
            ports = ", ".join(str(p) for p in a.ports)
            lines.append(
                f"| `{a.ip}` | {ports} | {md(country_label(a))} | {md_inert(a.owner)} | "
                f"{md_inert(product_label(a.product, a.version))} | {number(a.studies, a.complete)} | "
                f"{number(a.instances, a.complete)} | {number(a.patients, a.complete)} | {a.ssn_shaped:,} | "
                f"{a.risk} |"
            )
        lines.append("")
    else:
        lines += ["None: no archive let a stranger count its studies.", ""]

    lines += ["## Modalities", ""]
    if census.modalities:
        lines += ["| Modality | Studies |", "|---|---:|"]
        lines += [f"| {md_inert(m)} | {n:,} |" for m, n in census.modalities.items()]
        lines.append("")
    else:
        lines += ["None counted.", ""]

    lines += ["## Study years", ""]
    years = census.study_years
    if years.per_year or years.undated:
        lines += ["| Year | Studies |", "|---|---:|"]
        lines += [f"| {md_inert(y)} | {n:,} |" for y, n in years.per_year.items()]
        if years.undated:
            lines.append(f"| undated | {years.undated:,} |")
        lines.append("")
    else:
        lines += ["None counted.", ""]

    lines += ["## Findings", ""]
    lines += [
        "| " + " | ".join(census.findings_by_severity) + " |",
        "|" + "---:|" * len(census.findings_by_severity),
        "| " + " | ".join(f"{n:,}" for n in census.findings_by_severity.values()) + " |",
        "",
    ]
    if census.findings:
        lines += ["| Finding | Id | Severity | Endpoints |", "|---|---|---|---:|"]
        lines += [
            f"| {md(f.title, None)} | `{f.id}` | {f.severity} | {f.systems:,} |" for f in census.findings
        ]
        lines.append("")
    lines += [
        "Risk per endpoint (its most severe finding): "
        + ", ".join(f"{level} {n:,}" for level, n in census.risk_levels.items())
        + ".",
        "",
    ]

    lines += ["## Cost estimate", "", cost_sentence(census.cost), ""]
    if census.cost.source:
        lines += [f"Source of the figures: {md(census.cost.source.rstrip('.'), None)}.", ""]

    if census.growth is not None:
        lines += _growth(census.growth)

    lines += ["## Notes", ""]
    lines += [f"- {note}" for note in census.notes]
    lines += [f"- {census.privacy}", ""]
    return "\n".join(lines)


def _growth(growth: Growth) -> list[str]:
    earlier = "the earlier scan" if growth.earlier_scan is None else f"scan {growth.earlier_scan}"
    lines = [
        f"## Growth since {earlier}",
        "",
        "| | Earlier | Now | Δ | Δ % |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in growth.totals:
        lines.append(f"| {_GROWTH_LABELS.get(row.metric, row.metric)} | {_growth_cells(row)} |")
    lines += [
        "",
        DELTA_NOTE,
        "",
        f"DICOM endpoints (as `pacsaudit diff` sees them): {growth.new:,} new, {growth.gone:,} gone, "
        f"{growth.changed:,} changed, {growth.unchanged:,} unchanged; "
        f"{growth.not_rescanned:,} not rescanned.",
        "",
    ]
    if growth.by_country:
        lines += [
            "| Country | Systems earlier | Systems now | Δ | Studies earlier | Studies now | Δ | Δ % |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in growth.by_country:
            s, t = c.systems, c.studies
            label = f"{c.key} ({c.name})" if c.name else c.key
            lines.append(
                f"| {md(label)} | {number(s.earlier)} | {number(s.later)} | {signed(s.delta)} | "
                f"{_growth_cells(t)} |"
            )
        lines.append("")
    if growth.new_systems:
        shown = ", ".join(f"`{s}`" for s in growth.new_systems)
        more = growth.new - len(growth.new_systems)
        lines += [f"New systems: {shown}" + (f" and {more:,} more." if more > 0 else "."), ""]
    if growth.scope_notes:
        lines += ["Scope: " + "; ".join(md(note, None) for note in growth.scope_notes) + ".", ""]
    return lines


def _growth_cells(row: GrowthRow) -> str:
    return (
        f"{number(row.earlier, row.earlier_complete)} | {number(row.later, row.later_complete)} | "
        f"{growth_delta(row)} | {growth_percent(row)}"
    )
