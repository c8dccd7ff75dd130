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

The model lives in `census_model.py`, the comparison of two censuses in `growth.py`; this
module is the pass and its store glue, and re-exports both for `from ...census import`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pacsaudit.assessment import (
    DEFAULT_COST_MODEL,
    SEVERITY_ORDER,
    Attributor,
    CostModel,
    estimate_cost,
    exposed_shapes,
    findings_for,
    owner_label,
    risk_level,
)
from pacsaudit.model import Attribution, EndpointResult, StudyCounts, StudyYears
from pacsaudit.reports.census_model import (
    BOUND_NOTE,
    HOST_NOTE,
    METRICS,
    WORST_LIMIT,
    ArchiveRow,
    Census,
    CensusRow,
    CostSummary,
    FindingRow,
    ProductRow,
    ScanSummary,
    StudyYearsTotal,
)
from pacsaudit.reports.countries import country_name
from pacsaudit.reports.diff import Scope, diff_from_store, earlier_coverage, scope_of
from pacsaudit.reports.growth import growth_between

if TYPE_CHECKING:
    from pacsaudit.storage import ScanRecord, ScanStore

__all__ = [
    "build_census",
    "census_from_store",
    "group_label",
    "host_attribution",
    "host_groups",
    "scan_summary",
]

ProgressCallback = Callable[[int], None]
"""Called with the number of results read so far (every `PROGRESS_EVERY` and at the end)."""
PROGRESS_EVERY = 500

RISK_LEVELS = (*SEVERITY_ORDER, "none")

T = TypeVar("T")


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
            # A system open to strangers that no census counted holds an unknown number, not 0.
            if not host.counts.complete(metric) or (value is None and host.unprotected):
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
class _Largest(Generic[T]):
    """What the census with the most studies said (the first among equals)."""

    studies: int = -1
    value: T | None = None

    def offer(self, value: T | None, counts: StudyCounts | None) -> None:
        studies = (counts.studies or 0) if counts is not None else 0
        if value is not None and studies > self.studies:
            self.studies, self.value = studies, value


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
    modalities: _Largest[dict[str, int]] = field(default_factory=lambda: _Largest[dict[str, int]]())
    years: _Largest[StudyYears] = field(default_factory=lambda: _Largest[StudyYears]())
    """From the largest census (DICOM or web) that gave them: they describe the host."""
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
        self.finding_rows: dict[tuple[str, str, str], FindingRow] = {}
        self.risks: dict[str, int] = dict.fromkeys(RISK_LEVELS, 0)
        self.sequence = 0

    def add_host(self, results: list[EndpointResult]) -> None:
        detected = [r for r in results if _detected(r)]
        if not detected:
            return
        host = _Host(
            detected[0].ip or (detected[0].hostname or ""), host_attribution(detected, self.attributor)
        )
        for result in detected:
            self._add_endpoint(host, result)
        country = group_label(host.attribution)
        owner = owner_label(host.attribution)
        self.total.add(host)
        self.countries.setdefault(country, _Sums()).add(host)
        self.owners.setdefault(owner, _Sums()).add(host)
        for modality, count in (host.modalities.value or {}).items():
            self.modalities[modality] = self.modalities.get(modality, 0) + count
        if host.years.value is not None:
            for year, count in host.years.value.per_year.items():
                self.years[year] = self.years.get(year, 0) + count
            self.undated += host.years.value.undated
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
        for block in (result.dicom, result.http):
            if block is not None and block.counts is not None:
                host.modalities.offer(block.modalities, block.counts)
                host.years.offer(block.study_dates, block.counts)
        exposed = exposed_shapes(result)
        if exposed is not None:
            host.ssn = max(host.ssn, exposed[0].ssn_shaped)
            host.military = max(host.military, exposed[0].military_id_shaped)
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
            title = finding.title
            existing = self.finding_rows.get((finding.id, severity, title))
            if existing is None:
                existing = FindingRow(id=finding.id, title=title, severity=severity, systems=0)
                self.finding_rows[finding.id, severity, title] = existing
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
                self.finding_rows.values(),
                key=lambda f: (_severity_rank(f.severity), -f.systems, f.id, f.title),
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


UNKNOWN_COST = "unknown (no census)"


def _cost(totals: CensusRow, model: CostModel) -> CostSummary:
    """The estimate over the counted patients; without any patient count, unknown (never ~0)."""
    amount: float | None = None
    rounded, patients, ssn_shaped, lower_bound = UNKNOWN_COST, totals.patients, totals.ssn_shaped, False
    formula = "no census counted patients (`pacsaudit scan --census`), so there is nothing to multiply"
    if totals.patients is not None:
        estimate = estimate_cost(totals.patients, totals.ssn_shaped, model)
        amount, rounded, formula = estimate.amount, estimate.rounded, estimate.formula
        patients, ssn_shaped = estimate.patients, estimate.ssn_shaped
        lower_bound = not totals.patients_complete
    return CostSummary(
        amount=amount,
        rounded=rounded,
        formula=formula,
        currency=model.currency,
        per_record=model.per_record,
        per_ssn_record=model.per_ssn_record,
        patients=patients,
        ssn_shaped=ssn_shaped,
        lower_bound=lower_bound,
        source=model.source,
    )


def host_attribution(results: list[EndpointResult], attributor: Attributor | None) -> Attribution | None:
    """Who holds a host (its results in `results`): the stored attribution, as `attributed` fills
    it for notices and DefectDojo. With an ASN database in `attributor`, a public address stored
    without an AS is looked up again, so owners group by AS in every output; results stored before
    attribution existed are attributed with `attributor` (None without one)."""
    stored = next((r.attribution for r in results if r.attribution is not None), None)
    ip = results[0].ip
    if not ip:
        return stored or Attribution(scope="unresolved")
    if attributor is None:
        return stored
    stale = (
        stored is not None and stored.scope == "public" and stored.asn is None and attributor.has_asn_database
    )
    return attributor.attribute(ip) if stored is None or stale else stored


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
    """The census of a stored scan; with `diff_against`, its growth since that (earlier) scan,
    the earlier census taken over the endpoints this scan rescanned (see `earlier_coverage`).

    Raises `StorageError` for a scan that is not there.
    """
    record = _record(store, scan_id)
    census = _stored_census(store, record, attributor, cost_model, progress)
    if diff_against is None:
        return census
    earlier_record = _record(store, diff_against)
    diff = diff_from_store(store, diff_against, scan_id)
    covered = _Covered(store, scan_id, scope_of(record))
    earlier = _stored_census(store, earlier_record, attributor, cost_model, None, covered=covered)
    growth = growth_between(earlier, census, diff, earlier_left_out=covered.left_out)
    return census.model_copy(update={"growth": growth})


def _record(store: ScanStore, scan_id: int) -> ScanRecord:
    from pacsaudit.storage import StorageError

    record = store.scan(scan_id)
    if record is None:
        raise StorageError(f"no scan {scan_id}")
    return record


class _Covered:
    """Filters an earlier scan down to what the later one covered, counting what it leaves out."""

    def __init__(self, store: ScanStore, later_id: int, later_scope: Scope) -> None:
        self.store = store
        self.later_id = later_id
        self.later_scope = later_scope
        self.left_out = 0

    def results(self, earlier: Iterable[EndpointResult]) -> Iterator[EndpointResult]:
        later = self.store.observations(self.later_id)
        try:
            for result, covered in earlier_coverage(earlier, later, self.later_scope):
                if covered:
                    yield result
                elif _detected(result):
                    self.left_out += 1
        finally:
            _close(later)


def _stored_census(
    store: ScanStore,
    record: ScanRecord,
    attributor: Attributor | None,
    cost_model: CostModel,
    progress: ProgressCallback | None,
    *,
    covered: _Covered | None = None,
) -> Census:
    stream = store.observations(record.id)
    try:
        results = stream if covered is None else covered.results(stream)
        return build_census(
            results,
            scan=scan_summary(record),
            attributor=attributor,
            cost_model=cost_model,
            progress=progress,
        )
    finally:
        _close(stream)


def _close(stream: object) -> None:
    """A store stream holds a database connection until it is exhausted or closed."""
    close: Any = getattr(stream, "close", None)
    if close is not None:
        close()
