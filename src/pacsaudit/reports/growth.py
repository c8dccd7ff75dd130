"""The growth section of a census (`pacsaudit report --diff`): two censuses, number by number.

A difference is only as exact as its two sides: when either is a lower bound (a census cut
short, an open system nobody counted) the difference is marked at least, at most or
approximate (`DeltaKind`) instead of printed as if it were exact. A country one scan did not
see has 0 systems and, when that scan counted studies at all, 0 studies: it is absent, not
unknown.
"""

from __future__ import annotations

from pacsaudit.reports.census_model import (
    METRICS,
    Census,
    CensusRow,
    CountryGrowth,
    DeltaKind,
    Growth,
    GrowthRow,
)
from pacsaudit.reports.diff import ScanDiff
from pacsaudit.reports.text import endpoint

__all__ = ["NEW_SYSTEMS_LIMIT", "delta_kind", "growth_between", "growth_row"]

NEW_SYSTEMS_LIMIT = 50
"""New systems listed by address (the count covers them all)."""


def delta_kind(earlier_complete: bool, later_complete: bool) -> DeltaKind:
    """later - earlier with a lower bound on one side is itself a bound; on both, a guess."""
    if earlier_complete:
        return "exact" if later_complete else "at-least"
    return "at-most" if later_complete else "approximate"


def growth_row(
    metric: str,
    earlier: int | None,
    later: int | None,
    earlier_complete: bool = True,
    later_complete: bool = True,
) -> GrowthRow:
    kind = delta_kind(earlier_complete, later_complete)
    delta = pct = None
    if earlier is not None and later is not None:
        delta = later - earlier
        if kind != "approximate":
            pct = (0.0 if later == 0 else None) if earlier == 0 else round(delta * 100 / earlier, 1)
    return GrowthRow(
        metric=metric,
        earlier=earlier,
        later=later,
        delta=delta,
        delta_pct=pct,
        earlier_complete=earlier_complete,
        later_complete=later_complete,
        delta_kind=kind,
    )


def _totals(before: CensusRow, after: CensusRow) -> list[GrowthRow]:
    rows = [growth_row("systems", before.systems, after.systems)]
    for metric in METRICS:
        rows.append(
            growth_row(
                metric,
                getattr(before, metric),
                getattr(after, metric),
                getattr(before, f"{metric}_complete"),
                getattr(after, f"{metric}_complete"),
            )
        )
    rows.append(growth_row("ssn_shaped", before.ssn_shaped, after.ssn_shaped))
    return rows


def _country(
    key: str, before: CensusRow | None, after: CensusRow | None, earlier: Census, later: Census
) -> CountryGrowth:
    """A country missing from one scan: no systems there, and no studies if that scan counted any."""

    def studies(row: CensusRow | None, census: Census) -> tuple[int | None, bool]:
        if row is not None:
            return row.studies, row.studies_complete
        return (None if census.totals.studies is None else 0), True

    (b_studies, b_complete), (a_studies, a_complete) = studies(before, earlier), studies(after, later)
    return CountryGrowth(
        key=key,
        name=next((row.name for row in (after, before) if row is not None), None),
        systems=growth_row("systems", before.systems if before else 0, after.systems if after else 0),
        studies=growth_row("studies", b_studies, a_studies, b_complete, a_complete),
    )


def growth_between(earlier: Census, later: Census, diff: ScanDiff, *, earlier_left_out: int = 0) -> Growth:
    """The growth section: two censuses for the numbers, the scan diff for new, gone and changed.

    `earlier` should cover only what the later scan rescanned (`earlier_left_out` endpoints were
    left out of it: see `census_from_store`)."""
    before = {row.key: row for row in earlier.by_country}
    after = {row.key: row for row in later.by_country}
    keys = sorted(before.keys() | after.keys(), key=lambda k: (-(after[k].systems if k in after else 0), k))
    notes = list(diff.scope_notes)
    if earlier_left_out:
        notes.append(
            f"the earlier numbers leave out {earlier_left_out:,} endpoint(s) this scan did not rescan"
        )
    return Growth(
        earlier_scan=earlier.scan.id,
        later_scan=later.scan.id,
        totals=_totals(earlier.totals, later.totals),
        by_country=[_country(key, before.get(key), after.get(key), earlier, later) for key in keys],
        new=len(diff.new),
        gone=len(diff.gone),
        changed=len(diff.changed),
        unchanged=diff.unchanged,
        not_rescanned=len(diff.not_rescanned),
        earlier_left_out=earlier_left_out,
        new_systems=[endpoint(e.ip, e.port) for e in diff.new[:NEW_SYSTEMS_LIMIT]],
        scope_notes=notes,
    )
