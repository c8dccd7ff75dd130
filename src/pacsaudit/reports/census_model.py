"""The census's typed model: what `pacsaudit report` renders and `--format json` dumps.

Kept apart from the pass that fills it (`census.py`) and the comparison of two censuses
(`growth.py`) so that the renderers and `text.py` import the shapes without the machinery.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BOUND_NOTE",
    "DELTA_NOTE",
    "HOST_NOTE",
    "METRICS",
    "PRIVACY_NOTE",
    "WORST_LIMIT",
    "ArchiveRow",
    "Census",
    "CensusRow",
    "CostSummary",
    "CountryGrowth",
    "DeltaKind",
    "FindingRow",
    "Growth",
    "GrowthRow",
    "ProductRow",
    "ScanSummary",
    "StudyYearsTotal",
]

METRICS = ("studies", "instances", "patients")
"""The seed's census numbers (its "related images" are DICOM instances)."""

WORST_LIMIT = 10
"""The worst archives, by accessible studies, that a census lists."""

PRIVACY_NOTE = (
    "This report holds counts, categories and network addresses only: no patient name, ID, birth "
    "date, study date or any other DICOM element value was stored or is shown."
)
HOST_NOTE = (
    "A host counts once, with the largest numbers among its endpoints (DICOM and DICOMweb/REST "
    "alike): one archive answering on several ports or protocols is one archive."
)
BOUND_NOTE = (
    "≥ marks a lower bound: a census cut short by its query or time budget, or a system open to "
    "strangers that no census counted."
)

DELTA_NOTE = (
    "≥ or ≤ before a difference: at least or at most that much (one side is a lower bound); ≈ and n/a: "
    "both sides are lower bounds, so the difference is a rough guess."
)

DeltaKind = Literal["exact", "at-least", "at-most", "approximate"]
"""How far a difference of two census numbers can be trusted: exact when both sides are; at least
(at most) when only the later (earlier) side is a lower bound; approximate when both are."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CensusRow(_Model):
    """The seed's columns for one group (a country, a network owner) or for the whole scan."""

    key: str
    """An ISO 3166-1 alpha-2 code, an owner label, `(private)`... or `total`."""
    name: str | None = None
    """A country's name, when the key is one the map knows."""
    hosts_found: int = 0
    """Hosts where a DICOM or PACS web service answered, protected or not."""
    systems: int = 0
    """Hosts allowing unprotected access: a stranger's DICOM association was accepted, or a
    stranger could list studies over the web."""
    studies: int | None = None
    studies_complete: bool = True
    instances: int | None = None
    instances_complete: bool = True
    patients: int | None = None
    patients_complete: bool = True
    ssn_shaped: int = 0
    """Distinct patients with an identifier shaped like a US SSN (a shape, not proof)."""
    military_id_shaped: int = 0


class ProductRow(_Model):
    product: str | None
    version: str | None
    protocol: str
    """`dicom` or `http`: where the product was named."""
    systems: int = 0
    """Endpoints running it."""
    unprotected: int = 0
    """Of those, how many a stranger could use."""
    studies: int = 0
    """Studies of the hosts whose largest count came from this product's endpoint."""


class ArchiveRow(_Model):
    """One of the worst archives: a host, by accessible studies."""

    ip: str
    ports: list[int]
    country: str | None
    owner: str
    product: str | None
    version: str | None
    studies: int
    instances: int | None
    patients: int | None
    complete: bool
    ssn_shaped: int
    risk: str
    findings: list[str]
    """Finding ids, most severe first."""


class FindingRow(_Model):
    """Endpoints with one finding, by rule: one row per id, severity and rule-level title (the
    version an endpoint reported is left out, so one row can stand for hosts on many versions)."""

    id: str
    title: str
    severity: str
    systems: int
    """Endpoints with this finding."""


class StudyYearsTotal(_Model):
    per_year: dict[str, int] = Field(default_factory=dict)
    undated: int = 0


class CostSummary(_Model):
    """The cost estimate of `pacsaudit.assessment.estimate_cost`, with its formula and inputs."""

    amount: float | None
    """None when no census counted patients: unknown, not zero."""
    rounded: str
    """The amount as an order of magnitude (`~USD 4.3 million`): what reports lead with;
    `unknown (no census)` without one."""
    formula: str
    currency: str
    per_record: float
    per_ssn_record: float
    patients: int | None
    ssn_shaped: int
    lower_bound: bool
    """The patient count behind it is a lower bound, so is the estimate."""
    source: str


class ScanSummary(_Model):
    id: int | None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    state: str | None = None
    tool_version: str | None = None
    results: int = 0
    """Stored results read (every open port, and closed ones with `--all`)."""
    endpoints: int = 0
    """Endpoints where DICOM or a PACS web service was detected."""


class GrowthRow(_Model):
    """One census number in both scans (`metric`: `systems`, `studies`, `instances`, `patients`,
    `ssn_shaped`; or, per country, the country's key with its unprotected systems and studies)."""

    metric: str
    earlier: int | None
    later: int | None
    delta: int | None
    delta_pct: float | None
    """None when a side is unknown, when the earlier number is 0 and the later is not, or when
    both sides are lower bounds (`delta_kind` approximate)."""
    earlier_complete: bool
    later_complete: bool
    delta_kind: DeltaKind = "exact"
    """`delta` and `delta_pct` are exact, at least, at most or approximate (a side is a lower bound)."""


class CountryGrowth(_Model):
    key: str
    name: str | None
    systems: GrowthRow
    studies: GrowthRow


class Growth(_Model):
    """This scan against an earlier one (`--diff`). The numbers are both scans' censuses, counted
    the same way (once per host, DICOM and web alike), the earlier one over the endpoints this scan
    rescanned only: an endpoint outside its scope is "not rescanned", not a decline. New, gone and
    changed are endpoints where DICOM was detected, as `pacsaudit diff` sees them."""

    earlier_scan: int | None
    later_scan: int | None
    totals: list[GrowthRow]
    by_country: list[CountryGrowth]
    new: int
    gone: int
    changed: int
    unchanged: int
    not_rescanned: int
    earlier_left_out: int = 0
    """Endpoints of the earlier scan (DICOM or a PACS web service) that this scan did not rescan
    (outside its scope, scope unknown, or the scan unfinished): left out of the earlier numbers."""
    new_systems: list[str]
    """`ip:port` of the first new systems (at most 50)."""
    scope_notes: list[str]


class Census(_Model):
    scan: ScanSummary
    totals: CensusRow
    by_country: list[CensusRow]
    """Most unprotected systems first, then most studies."""
    by_owner: list[CensusRow]
    by_product: list[ProductRow]
    modalities: dict[str, int]
    """Studies per modality, from each host's largest census that named them (DICOM C-FIND or the
    web API's), a study counting once per modality."""
    study_years: StudyYearsTotal
    worst_archives: list[ArchiveRow]
    findings_by_severity: dict[str, int]
    findings: list[FindingRow]
    risk_levels: dict[str, int]
    """Endpoints per risk level (the most severe of their findings; `none` without any)."""
    cost: CostSummary
    growth: Growth | None = None
    notes: list[str]
    privacy: str = PRIVACY_NOTE
