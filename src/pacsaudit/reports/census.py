"""The census of one stored scan: what `pacsaudit report` renders as HTML, Markdown, CSV or JSON.

One pass over the scan's results in (ip, port) order, the order `ScanStore.observations`
yields, aggregated as it goes: memory holds one host's results, the group tables and the ten
worst archives, never the scan. The columns are the seed's: systems allowing unprotected DICOM
access, accessible studies, related images (DICOM instances), patients, SSN-shaped identifiers;
per country, per network owner and in total, with the product mix, modality mix, study years,
findings, risk levels and the cost estimate with its formula.

**Once per host.** An archive that answers on 104 and 4242, or on DICOM and on DICOMweb, is
one archive: a host counts once, with the largest numbers among its endpoints (DICOM `counts`
and HTTP `counts` alike), as in `pacsaudit diff`. Only counts, categories and labels are read:
there is nothing patient-level in a result to read.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from pacsaudit.assessment import (
    DEFAULT_COST_MODEL,
    SEVERITY_ORDER,
    Attributor,
    CostModel,
    estimate_cost,
    findings_for,
    owner_label,
    risk_level,
)
from pacsaudit.model import Attribution, EndpointResult, StudyCounts
from pacsaudit.reports.countries import country_name
from pacsaudit.reports.diff import ScanDiff

if TYPE_CHECKING:
    from pacsaudit.storage import ScanRecord, ScanStore

__all__ = [
    "METRICS",
    "PRIVACY_NOTE",
    "WORST_LIMIT",
    "ArchiveRow",
    "Census",
    "CensusRow",
    "CostSummary",
    "CountryGrowth",
    "FindingRow",
    "Growth",
    "GrowthRow",
    "ProductRow",
    "ScanSummary",
    "StudyYearsTotal",
    "build_census",
    "census_from_store",
    "group_label",
    "growth_between",
    "host_groups",
    "scan_summary",
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
BOUND_NOTE = "≥ marks a lower bound: a census cut short by its query or time budget."

ProgressCallback = Callable[[int], None]
"""Called with the number of results read so far (every `PROGRESS_EVERY` and at the end)."""
PROGRESS_EVERY = 500

RISK_LEVELS = (*SEVERITY_ORDER, "none")


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

    amount: float
    rounded: str
    """The amount as an order of magnitude (`~USD 4.3 million`): what reports lead with."""
    formula: str
    currency: str
    per_record: float
    per_ssn_record: float
    patients: int
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
    """None when a side is unknown, or when the earlier number is 0 and the later is not."""
    earlier_complete: bool
    later_complete: bool


class CountryGrowth(_Model):
    key: str
    name: str | None
    systems: GrowthRow
    studies: GrowthRow


class Growth(_Model):
    """This scan against an earlier one (`--diff`). The numbers are both scans' censuses, counted
    the same way (once per host, DICOM and web alike); new, gone and changed are endpoints where
    DICOM was detected, as `pacsaudit diff` sees them."""

    earlier_scan: int | None
    later_scan: int | None
    totals: list[GrowthRow]
    by_country: list[CountryGrowth]
    new: int
    gone: int
    changed: int
    unchanged: int
    not_rescanned: int
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
    """Studies per modality, over the hosts' largest census (a study counts once per modality)."""
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


# --- per host ------------------------------------------------------------------------------------


def group_label(attribution: Attribution | None) -> str:
    """The country group of an address: its ISO code, else `(private)`, `(loopback)`... or `(unknown)`."""
    if attribution is None:
        return "(unknown)"
    if attribution.country:
        return attribution.country.upper()
    if attribution.scope != "public":
        return f"({attribution.scope})"
    return "(unknown)"


def _detected(result: EndpointResult) -> bool:
    return bool((result.dicom and result.dicom.detected) or (result.http and result.http.detected))


def _unprotected(result: EndpointResult) -> bool:
    d, h = result.dicom, result.http
    return bool((d is not None and d.association == "accepted") or (h is not None and h.studies_listable))


def _all_counts(result: EndpointResult) -> Iterator[StudyCounts]:
    if result.dicom is not None and result.dicom.counts is not None:
        yield result.dicom.counts
    if result.http is not None and result.http.counts is not None:
        yield result.http.counts


@dataclass(slots=True)
class _HostCounts:
    """The largest number per metric among a host's censuses, and whether it is exact."""

    values: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(METRICS))
    exact: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(METRICS, True))
    censused: bool = False

    def add(self, counts: StudyCounts) -> None:
        self.censused = True
        for metric in METRICS:
            value: int | None = getattr(counts, metric)
            if value is None:
                continue
            best = self.values[metric]
            if best is None or value > best:
                self.values[metric], self.exact[metric] = value, counts.complete
            elif value == best and counts.complete:
                self.exact[metric] = True

    def complete(self, metric: str) -> bool:
        """Exact when a complete census gave the largest number; a census that never reached the
        metric makes it a lower bound."""
        if self.values[metric] is None:
            return not self.censused
        return self.exact[metric]


class _Sums:
    """A `CensusRow` being summed, host by host."""

    __slots__ = ("complete", "hosts_found", "military", "ssn", "systems", "values")

    def __init__(self) -> None:
        self.hosts_found = 0
        self.systems = 0
        self.values: dict[str, int | None] = dict.fromkeys(METRICS)
        self.complete = dict.fromkeys(METRICS, True)
        self.ssn = 0
        self.military = 0

    def add(self, host: _Host) -> None:
        self.hosts_found += 1
        self.systems += host.unprotected
        self.ssn += host.ssn
        self.military += host.military
        for metric in METRICS:
            value = host.counts.values[metric]
            if value is not None:
                self.values[metric] = (self.values[metric] or 0) + value
            if not host.counts.complete(metric):
                self.complete[metric] = False

    def row(self, key: str, name: str | None = None) -> CensusRow:
        v, c = self.values, self.complete
        return CensusRow(
            key=key,
            name=name,
            hosts_found=self.hosts_found,
            systems=self.systems,
            studies=v["studies"],
            studies_complete=c["studies"],
            instances=v["instances"],
            instances_complete=c["instances"],
            patients=v["patients"],
            patients_complete=c["patients"],
            ssn_shaped=self.ssn,
            military_id_shaped=self.military,
        )


@dataclass(slots=True)
class _Host:
    """One host's endpoints where something was detected, reduced to what the census needs."""

    ip: str
    attribution: Attribution | None
    ports: list[int] = field(default_factory=list)
    unprotected: bool = False
    counts: _HostCounts = field(default_factory=_HostCounts)
    best: EndpointResult | None = None
    """The endpoint with the largest study count (its product holds the host's studies)."""
    best_dicom: EndpointResult | None = None
    """The DICOM census with the largest study count: its modalities and years describe the host."""
    ssn: int = 0
    military: int = 0
    risk_rank: int = len(SEVERITY_ORDER)
    findings: list[str] = field(default_factory=list)


def _studies(result: EndpointResult) -> int:
    return max((c.studies or 0 for c in _all_counts(result)), default=-1)


# --- the pass ------------------------------------------------------------------------------------


class _CensusBuilder:
    def __init__(self, attributor: Attributor | None, cost_model: CostModel) -> None:
        self.attributor = attributor
        self.cost_model = cost_model
        self.results = 0
        self.endpoints = 0
        self.total = _Sums()
        self.countries: dict[str, _Sums] = {}
        self.owners: dict[str, _Sums] = {}
        self.products: dict[tuple[str | None, str | None, str], ProductRow] = {}
        self.modalities: dict[str, int] = {}
        self.years: dict[str, int] = {}
        self.undated = 0
        self.worst: list[tuple[int, int, str, ArchiveRow]] = []
        self.severities: dict[str, int] = dict.fromkeys(SEVERITY_ORDER, 0)
        self.finding_rows: dict[str, FindingRow] = {}
        self.risks: dict[str, int] = dict.fromkeys(RISK_LEVELS, 0)
        self.sequence = 0

    def attribution(self, results: list[EndpointResult]) -> Attribution | None:
        for result in results:
            if result.attribution is not None:
                return result.attribution
        ip = results[0].ip
        if not ip:
            return Attribution(scope="unresolved")
        return None if self.attributor is None else self.attributor.attribute(ip)

    def add_host(self, results: list[EndpointResult]) -> None:
        detected = [r for r in results if _detected(r)]
        if not detected:
            return
        host = _Host(detected[0].ip or (detected[0].hostname or ""), self.attribution(detected))
        for result in detected:
            self._add_endpoint(host, result)
        country = group_label(host.attribution)
        owner = owner_label(host.attribution)
        self.total.add(host)
        self.countries.setdefault(country, _Sums()).add(host)
        self.owners.setdefault(owner, _Sums()).add(host)
        census = host.best_dicom.dicom if host.best_dicom is not None else None
        if census is not None:
            for modality, count in (census.modalities or {}).items():
                self.modalities[modality] = self.modalities.get(modality, 0) + count
            if census.study_dates is not None:
                for year, count in census.study_dates.per_year.items():
                    self.years[year] = self.years.get(year, 0) + count
                self.undated += census.study_dates.undated
        best = host.best
        studies = host.counts.values["studies"]
        if best is not None and studies:
            product, version, protocol = _product_of(best)
            row = self.products.get((product, version, protocol))
            if row is not None:
                row.studies += studies
            self._keep_worst(host, country, owner, studies, best)

    def _add_endpoint(self, host: _Host, result: EndpointResult) -> None:
        self.endpoints += 1
        host.ports.append(result.port)
        unprotected = _unprotected(result)
        host.unprotected = host.unprotected or unprotected
        for counts in _all_counts(result):
            host.counts.add(counts)
        if host.best is None or _studies(result) > _studies(host.best):
            host.best = result
        has_census = result.dicom is not None and result.dicom.counts is not None
        if has_census and (host.best_dicom is None or _studies(result) > _studies(host.best_dicom)):
            host.best_dicom = result
        if result.dicom is not None and result.dicom.sensitive is not None:
            host.ssn = max(host.ssn, result.dicom.sensitive.ssn_shaped)
            host.military = max(host.military, result.dicom.sensitive.military_id_shaped)
        key = _product_of(result)
        row = self.products.setdefault(key, ProductRow(product=key[0], version=key[1], protocol=key[2]))
        row.systems += 1
        row.unprotected += unprotected
        findings = findings_for(result)
        level = str(risk_level(findings))
        self.risks[level] = self.risks.get(level, 0) + 1
        if level in SEVERITY_ORDER:
            host.risk_rank = min(host.risk_rank, SEVERITY_ORDER.index(level))
        for finding in findings:
            severity = str(finding.severity)
            self.severities[severity] = self.severities.get(severity, 0) + 1
            existing = self.finding_rows.get(finding.id)
            if existing is None:
                existing = FindingRow(id=finding.id, title=finding.title, severity=severity, systems=0)
                self.finding_rows[finding.id] = existing
            existing.systems += 1
            if finding.id not in host.findings:
                host.findings.append(finding.id)

    def _keep_worst(self, host: _Host, country: str, owner: str, studies: int, best: EndpointResult) -> None:
        product, version, _ = _product_of(best)
        counts = host.counts
        row = ArchiveRow(
            ip=host.ip,
            ports=host.ports,
            country=country,
            owner=owner,
            product=product,
            version=version,
            studies=studies,
            instances=counts.values["instances"],
            patients=counts.values["patients"],
            complete=all(counts.complete(m) for m in METRICS),
            ssn_shaped=host.ssn,
            risk=RISK_LEVELS[host.risk_rank],
            findings=host.findings,
        )
        # Ties keep the host seen first (lower ip): the heap's key is (studies, -sequence).
        self.sequence += 1
        item = (studies, -self.sequence, host.ip, row)
        if len(self.worst) < WORST_LIMIT:
            heapq.heappush(self.worst, item)
        elif item[:2] > self.worst[0][:2]:
            heapq.heapreplace(self.worst, item)

    def census(self, scan: ScanSummary) -> Census:
        scan = scan.model_copy(update={"results": self.results, "endpoints": self.endpoints})
        totals = self.total.row("total")
        cost = _cost(totals, self.cost_model)
        notes = [HOST_NOTE, BOUND_NOTE]
        if totals.studies is None:
            notes.append("No census ran in this scan (`pacsaudit scan --census`): studies, images and "
                         "patients are unknown, not zero.")  # fmt: skip
        return Census(
            scan=scan,
            totals=totals,
            by_country=_ranked(self.countries, with_names=True),
            by_owner=_ranked(self.owners, with_names=False),
            by_product=sorted(
                self.products.values(),
                key=lambda r: (
                    -r.unprotected,
                    -r.systems,
                    r.product or "\uffff",
                    r.version or "",
                    r.protocol,
                ),
            ),
            modalities=dict(sorted(self.modalities.items(), key=lambda kv: (-kv[1], kv[0]))),
            study_years=StudyYearsTotal(per_year=dict(sorted(self.years.items())), undated=self.undated),
            worst_archives=[item[3] for item in sorted(self.worst, key=lambda i: (-i[0], -i[1]))],
            findings_by_severity=self.severities,
            findings=sorted(
                self.finding_rows.values(), key=lambda f: (_severity_rank(f.severity), -f.systems, f.id)
            ),
            risk_levels=self.risks,
            cost=cost,
            notes=notes,
        )


def _severity_rank(severity: str) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)


def _product_of(result: EndpointResult) -> tuple[str | None, str | None, str]:
    d, h = result.dicom, result.http
    if d is not None and d.detected:
        return d.product, d.version, "dicom"
    assert h is not None
    return h.product, h.version, "http"


def _ranked(groups: dict[str, _Sums], *, with_names: bool) -> list[CensusRow]:
    rows = [sums.row(key, country_name(key) if with_names else None) for key, sums in groups.items()]
    return sorted(rows, key=lambda r: (-r.systems, -(r.studies or 0), -r.hosts_found, r.key))


def _cost(totals: CensusRow, model: CostModel) -> CostSummary:
    estimate = estimate_cost(totals.patients or 0, totals.ssn_shaped, model)
    return CostSummary(
        amount=estimate.amount,
        rounded=estimate.rounded,
        formula=estimate.formula,
        currency=model.currency,
        per_record=model.per_record,
        per_ssn_record=model.per_ssn_record,
        patients=estimate.patients,
        ssn_shaped=estimate.ssn_shaped,
        lower_bound=not totals.patients_complete,
        source=model.source,
    )


def host_groups(results: Iterable[EndpointResult]) -> Iterator[list[EndpointResult]]:
    """Consecutive results of one host (the store yields them in ip order); also for the per-system CSV."""
    run: list[EndpointResult] = []
    for result in results:
        if run and (result.ip or result.hostname) != (run[0].ip or run[0].hostname):
            yield run
            run = []
        run.append(result)
    if run:
        yield run


def build_census(
    results: Iterable[EndpointResult],
    *,
    scan: ScanSummary | None = None,
    attributor: Attributor | None = None,
    cost_model: CostModel = DEFAULT_COST_MODEL,
    progress: ProgressCallback | None = None,
) -> Census:
    """The census of a scan streamed in (ip, port) order (a host's results must be adjacent).

    Results without a stored `attribution` are attributed with `attributor` (None: unknown).
    """
    builder = _CensusBuilder(attributor, cost_model)
    for run in host_groups(_counted(results, builder, progress)):
        builder.add_host(run)
    if progress is not None:
        progress(builder.results)
    return builder.census(scan or ScanSummary(id=None))


def _counted(
    results: Iterable[EndpointResult], builder: _CensusBuilder, progress: ProgressCallback | None
) -> Iterator[EndpointResult]:
    for result in results:
        builder.results += 1
        if progress is not None and builder.results % PROGRESS_EVERY == 0:
            progress(builder.results)
        yield result


def _growth_row(
    metric: str,
    earlier: int | None,
    later: int | None,
    earlier_complete: bool = True,
    later_complete: bool = True,
) -> GrowthRow:
    delta = None if earlier is None or later is None else later - earlier
    pct = None
    if earlier is not None and later is not None:
        pct = (0.0 if later == 0 else None) if earlier == 0 else round((later - earlier) * 100 / earlier, 1)
    return GrowthRow(
        metric=metric,
        earlier=earlier,
        later=later,
        delta=delta,
        delta_pct=pct,
        earlier_complete=earlier_complete,
        later_complete=later_complete,
    )


def _census_growth(before: CensusRow, after: CensusRow) -> list[GrowthRow]:
    rows = [_growth_row("systems", before.systems, after.systems)]
    for metric in METRICS:
        rows.append(
            _growth_row(
                metric,
                getattr(before, metric),
                getattr(after, metric),
                getattr(before, f"{metric}_complete"),
                getattr(after, f"{metric}_complete"),
            )
        )
    rows.append(_growth_row("ssn_shaped", before.ssn_shaped, after.ssn_shaped))
    return rows


def growth_between(earlier: Census, later: Census, diff: ScanDiff, *, limit: int = 50) -> Growth:
    """The growth section: two censuses for the numbers, the scan diff for new, gone and changed."""
    before = {row.key: row for row in earlier.by_country}
    after = {row.key: row for row in later.by_country}
    by_country = []
    for key in sorted(
        before.keys() | after.keys(), key=lambda k: (-(after[k].systems if k in after else 0), k)
    ):
        b, a = before.get(key), after.get(key)
        by_country.append(
            CountryGrowth(
                key=key,
                name=next((row.name for row in (a, b) if row is not None), None),
                systems=_growth_row("systems", b.systems if b else 0, a.systems if a else 0),
                studies=_growth_row(
                    "studies",
                    b.studies if b else None,
                    a.studies if a else None,
                    b.studies_complete if b else True,
                    a.studies_complete if a else True,
                ),
            )
        )
    return Growth(
        earlier_scan=earlier.scan.id,
        later_scan=later.scan.id,
        totals=_census_growth(earlier.totals, later.totals),
        by_country=by_country,
        new=len(diff.new),
        gone=len(diff.gone),
        changed=len(diff.changed),
        unchanged=diff.unchanged,
        not_rescanned=len(diff.not_rescanned),
        new_systems=[_endpoint(e.ip, e.port) for e in diff.new[:limit]],
        scope_notes=list(diff.scope_notes),
    )


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def scan_summary(record: ScanRecord) -> ScanSummary:
    return ScanSummary(
        id=record.id,
        started_at=record.started_at,
        finished_at=record.finished_at,
        state=record.state.value,
        tool_version=record.tool_version,
    )


def census_from_store(
    store: ScanStore,
    scan_id: int,
    *,
    diff_against: int | None = None,
    attributor: Attributor | None = None,
    cost_model: CostModel = DEFAULT_COST_MODEL,
    progress: ProgressCallback | None = None,
) -> Census:
    """The census of a stored scan; with `diff_against`, its growth since that (earlier) scan.

    Raises `StorageError` for a scan that is not there.
    """
    from pacsaudit.reports.diff import diff_from_store

    census = _stored_census(store, scan_id, attributor, cost_model, progress)
    if diff_against is None:
        return census
    earlier = _stored_census(store, diff_against, attributor, cost_model, None)
    diff = diff_from_store(store, diff_against, scan_id)
    return census.model_copy(update={"growth": growth_between(earlier, census, diff)})


def _stored_census(
    store: ScanStore,
    scan_id: int,
    attributor: Attributor | None,
    cost_model: CostModel,
    progress: ProgressCallback | None,
) -> Census:
    from pacsaudit.storage import StorageError

    record = store.scan(scan_id)
    if record is None:
        raise StorageError(f"no scan {scan_id}")
    stream = store.observations(scan_id)
    try:
        return build_census(
            stream, scan=scan_summary(record), attributor=attributor, cost_model=cost_model, progress=progress
        )
    finally:  # a stream holds a database connection until it is exhausted or closed
        close: Any = getattr(stream, "close", None)
        if close is not None:
            close()
