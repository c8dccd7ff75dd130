"""`pacsaudit diff`: what changed between two scans of the same scope.

A *system* is an endpoint (ip, port) where DICOM was detected. Systems are **new** (a system
in the later scan, not in the earlier one), **gone** (a system of the earlier scan that the
later scan probed and did not find: no record although the endpoint is inside its scope, or
a record that is not DICOM), **not rescanned** (an earlier system outside the later scan's
scope, or where that scope is not known: never called gone), or **still** there, each with
what changed. Census totals (systems, studies, instances, patients) count an archive **once
per host**: the largest counts among that ip's endpoints, since one archive answering on
104 and 4242 is one archive.

Both scans arrive as streams ordered by (ip, port), the order `ScanStore.observations`
gives, and are merge-joined: memory holds the output lists and one host's tally per scan,
never a scan. Nothing here reads a result's patient-level data; there is none to read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from pacsaudit.model import EndpointResult, Services
from pacsaudit.reports.text import clean, endpoint, md, md_inert, number, percent, signed
from pacsaudit.targets import ExclusionList, parse_ports
from pacsaudit.targets.specs import HOSTNAME, STDIN, TargetSpec, TargetSpecError, iter_file_specs, parse_spec

if TYPE_CHECKING:
    from pacsaudit.storage import ScanRecord, ScanStore

__all__ = [
    "CENSUS_METRICS",
    "LIST_LIMIT",
    "CensusTotals",
    "Change",
    "ChangedSystem",
    "GroupKey",
    "ScanDiff",
    "ScanInfo",
    "Scope",
    "ScopeVerdict",
    "SystemEntry",
    "TotalChange",
    "diff_from_store",
    "diff_scans",
    "earlier_coverage",
    "render_json",
    "render_markdown",
    "render_table",
    "scope_of",
]

CENSUS_METRICS = ("studies", "instances", "patients")
"""The seed's terms (its "images" are DICOM instances), in the order reports show them."""

_COUNT_FIELDS = ("studies", "series", "instances", "patients")
"""Per-system count changes cover series too; totals keep to the seed's terms."""

LIST_LIMIT = 50
"""Markdown and the terminal table show this many items a section, then "and N more"."""

GroupKey = Callable[[EndpointResult], str | None]
"""Extension point for totals "by country once attribution exists": a function from a host's
first DICOM result to its group (a country code, an ASN...), None when unattributed. Nothing
in pacsaudit attributes addresses yet, so `diff_scans` defaults to no grouping."""

UNATTRIBUTED = "(unattributed)"
"""The group of hosts for which `group_key` returned None."""


# --- scope -------------------------------------------------------------------------------------


class ScopeVerdict(StrEnum):
    """Whether the later scan covered an endpoint: for an earlier system it has no record of."""

    IN = "in"
    OUT = "out"
    UNKNOWN = "unknown"


NotRescannedReason = Literal["out-of-scope", "scope-unknown", "later-scan-unfinished"]
MissingReason = Literal["no-record", "not-dicom"]


@dataclass(frozen=True, slots=True, eq=False)
class Scope:
    """The endpoints a scan covered, rebuilt from what it was asked (targets, ports, exclusions).

    Answers `verdict(ip, port)` in O(log n) per lookup, whatever the number of target specs.
    Where the record of what was asked is incomplete (no targets stored, a target file that is
    gone or changed since, no port list), the answer is `UNKNOWN`, never a guess: a wrong
    "gone" is worse than a "not rescanned".
    """

    hosts: ExclusionList
    """Addresses and hostnames scanned on every port of `ports` (used as an inclusion list)."""
    ports: Container[int] | None
    """The port list; None when it is not known."""
    hosts_by_port: Mapping[int, ExclusionList]
    """Specs typed with their own port (`host:4242`), which replaces the port list."""
    exclusions: ExclusionList
    exclusions_known: bool = True
    """False when an exclusion file could not be read back as it was at scan time."""
    open_ended: bool = False
    """True when targets beyond `hosts` may have been scanned (unreadable target file...)."""
    finished: bool = True
    """False when the scan ended before covering its targets (interrupted, failed, running):
    an in-scope endpoint without a record may then simply not have been reached."""
    universal: bool = False
    """Every endpoint is in scope (`Scope.everything()`)."""
    notes: tuple[str, ...] = ()
    """Why parts of the scope are unknown, for the report."""

    @property
    def known(self) -> bool:
        return self.exclusions_known and not self.open_ended and self.ports is not None

    @classmethod
    def of(
        cls,
        targets: Iterable[str],
        ports: Iterable[int] | None,
        *,
        exclude: Iterable[str] = (),
        finished: bool = True,
    ) -> Scope:
        """A scope from target specs as typed (`127.88.0.0/30`, `host:4242`...), ports, exclusions.

        Raises `TargetSpecError` for a spec that cannot be parsed; None `ports`: not known.
        """
        builder = _ScopeBuilder()
        for text in targets:
            for word in _words(text):
                builder.add(parse_spec(word))
        return builder.build(
            None if ports is None else frozenset(ports),
            ExclusionList.from_specs(exclude),
            finished=finished,
        )

    @classmethod
    def everything(cls, *, finished: bool = True) -> Scope:
        """Every endpoint: for two scans the user states were of the same scope (imports)."""
        return cls(ExclusionList(), range(1, 65536), {}, ExclusionList(), finished=finished, universal=True)

    @classmethod
    def from_arguments(
        cls, arguments: Mapping[str, Any], *, finished: bool = True, recorded_at: datetime | None = None
    ) -> Scope:
        """The scope of a stored scan from its `ScanRecord.arguments`.

        Reads `targets` (specs as typed), `ports` (or `settings.ports`), `files` (target files,
        read back only if unchanged since `recorded_at`, the scan's start), `exclude` and
        `exclude_files` (likewise). Whatever is missing or unreadable makes that part unknown.
        """
        builder = _ScopeBuilder()
        notes: list[str] = []
        open_ended = False
        targets = _string_list(arguments.get("targets"))
        files = _string_list(arguments.get("files", arguments.get("input_list", [])))
        if targets is None or files is None:
            open_ended = True
            notes.append("the scan's targets are not recorded")
        for text in targets or []:
            try:
                for word in _words(text):
                    builder.add(parse_spec(word))
            except TargetSpecError:
                open_ended = True
                notes.append(f"target {text!r} cannot be parsed")
        for name in files or []:
            problem = _file_problem(name, recorded_at)
            if problem is None:
                try:
                    for spec in iter_file_specs(Path(name)):
                        builder.add(spec)
                except (TargetSpecError, OSError):
                    problem = "cannot be read"
            if problem is not None:
                open_ended = True
                notes.append(f"target file {name!r} {problem}")

        ports = _ports(arguments)
        if ports is None:
            notes.append("the scan's port list is not recorded")

        exclusions = ExclusionList()
        exclusions_known = True
        exclude = _string_list(arguments.get("exclude", []))
        try:
            exclusions = ExclusionList.from_specs(exclude or [])
        except TargetSpecError:
            exclude = None
        if exclude is None:
            exclusions_known = False
            notes.append("the scan's exclusions cannot be read")
        for name in _string_list(arguments.get("exclude_files", [])) or []:
            problem = _file_problem(name, recorded_at)
            if problem is None:
                try:
                    exclusions = exclusions.merge(ExclusionList.from_file(name))
                except (TargetSpecError, OSError):
                    problem = "cannot be read"
            if problem is not None:
                exclusions_known = False
                notes.append(f"exclusion file {name!r} {problem}")
        scope = builder.build(ports, exclusions, finished=finished)
        return cls(
            scope.hosts,
            scope.ports,
            scope.hosts_by_port,
            exclusions,
            exclusions_known=exclusions_known,
            open_ended=open_ended,
            finished=finished,
            notes=tuple(notes),
        )

    def verdict(self, ip: str, port: int, hostname: str | None = None) -> ScopeVerdict:
        """Whether the scan was asked to probe this endpoint (whether or not it got to it)."""
        address = _address(ip)
        names = [name for name in (hostname, None if address is not None else ip) if name]
        if _member(self.exclusions, address, names):
            return ScopeVerdict.OUT
        if self.universal:
            hit = True
        else:
            by_port = self.hosts_by_port.get(port)
            hit = by_port is not None and _member(by_port, address, names)
            if not hit and _member(self.hosts, address, names):
                if self.ports is None:
                    return ScopeVerdict.UNKNOWN
                hit = port in self.ports
        if not hit:
            return ScopeVerdict.UNKNOWN if self.open_ended else ScopeVerdict.OUT
        return ScopeVerdict.IN if self.exclusions_known else ScopeVerdict.UNKNOWN


class _ScopeBuilder:
    """Collects specs (also streamed from a file) into interval lists, then one `Scope`."""

    def __init__(self) -> None:
        self._intervals: list[tuple[int, int, int]] = []
        self._names: list[str] = []
        self._by_port: dict[int, tuple[list[tuple[int, int, int]], list[str]]] = {}

    def add(self, spec: TargetSpec) -> None:
        if spec.port is None:
            intervals, names = self._intervals, self._names
        else:
            intervals, names = self._by_port.setdefault(spec.port, ([], []))
        if spec.version == HOSTNAME:
            assert spec.hostname is not None
            names.append(spec.hostname)
        else:
            intervals.append((spec.version, spec.first, spec.last))

    def build(self, ports: Container[int] | None, exclusions: ExclusionList, *, finished: bool) -> Scope:
        by_port = {port: ExclusionList(iv, names) for port, (iv, names) in self._by_port.items()}
        return Scope(
            ExclusionList(self._intervals, self._names), ports, by_port, exclusions, finished=finished
        )


def _words(text: str) -> list[str]:
    return text.replace(",", " ").split()


def _string_list(value: object) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return list(value)
    return None


def _ports(arguments: Mapping[str, Any]) -> frozenset[int] | None:
    value = arguments.get("ports")
    if value is None:
        settings = arguments.get("settings")
        value = settings.get("ports") if isinstance(settings, Mapping) else None
    try:
        if isinstance(value, str):
            return frozenset(parse_ports(value))
        if isinstance(value, list | tuple) and value:
            ports: set[int] = set()
            for item in value:
                if isinstance(item, bool):
                    return None
                ports.update([item] if isinstance(item, int) else parse_ports(str(item)))
            return frozenset(port for port in ports if 1 <= port <= 65535)
    except ValueError:
        return None
    return None


def _file_problem(name: str, recorded_at: datetime | None) -> str | None:
    """Why a file named in a scan's arguments cannot stand for what the scan read, or None."""
    path = Path(name)
    if path == STDIN:
        return "was standard input"
    try:
        modified = path.stat().st_mtime
    except OSError:
        return "is gone"
    if recorded_at is not None and modified > recorded_at.timestamp():
        return "changed after the scan started"
    return None


def _address(text: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(text)
    except ValueError:
        return None


def _member(hosts: ExclusionList, address: IPv4Address | IPv6Address | None, names: list[str]) -> bool:
    if address is not None and hosts.contains_ip(address):
        return True
    return any(hosts.contains_hostname(name) for name in names)


# --- the diff model ----------------------------------------------------------------------------

Value = bool | int | str | None


@dataclass(frozen=True, slots=True)
class Change:
    """One thing that changed on a system that is still there."""

    kind: str
    """`opened-to-any-ae`, `closed-to-strangers`, `called-ae-check-added`, `service-granted`,
    `version-changed`, `studies-grew`, `status-changed`... (docs/diff.md lists them all)."""
    field: str
    """The result field, dotted: `open_to_any_ae`, `services.find`, `counts.studies`, `status`."""
    before: Value
    after: Value
    delta: int | None = None
    delta_pct: float | None = None
    before_complete: bool | None = None
    """For counts: False when the earlier number is a lower bound."""
    after_complete: bool | None = None


@dataclass(frozen=True, slots=True)
class SystemEntry:
    """A new, gone or not-rescanned system as one scan saw it: no patient-level data."""

    ip: str
    port: int
    hostname: str | None
    status: str
    product: str | None
    vendor: str | None
    version: str | None
    open_to_any_ae: bool | None
    called_ae_check: bool | None
    calling_ae_check: bool | None
    services: Services | None
    patients: int | None
    studies: int | None
    series: int | None
    instances: int | None
    counts_complete: bool | None
    reason: str | None = None
    """New and gone: `no-record` or `not-dicom` (the other scan's view); not rescanned:
    `out-of-scope`, `scope-unknown` or `later-scan-unfinished`."""
    counterpart_status: str | None = None
    """The other scan's status for this endpoint, None when it has no record of it."""


@dataclass(frozen=True, slots=True)
class ChangedSystem:
    ip: str
    port: int
    hostname: str | None
    product: str | None
    version: str | None
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class CensusTotals:
    """One scan's totals. Counts sum each host once (its largest counts); None: never counted."""

    systems: int
    hosts: int
    studies: int | None = None
    studies_complete: bool = True
    """False when the total is a lower bound (a census ran out of budget or time)."""
    instances: int | None = None
    instances_complete: bool = True
    patients: int | None = None
    patients_complete: bool = True


@dataclass(frozen=True, slots=True)
class TotalChange:
    earlier: int | None
    later: int | None
    delta: int | None
    delta_pct: float | None
    """None when a side is unknown, or when the earlier total is 0 and the later is not."""
    earlier_complete: bool
    later_complete: bool


@dataclass(frozen=True, slots=True)
class ScanInfo:
    """Which scan a side is, as far as the caller knows."""

    id: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    state: str | None = None
    tool_version: str | None = None

    @classmethod
    def from_record(cls, record: ScanRecord) -> ScanInfo:
        return cls(record.id, record.started_at, record.finished_at, record.state.value, record.tool_version)


@dataclass(frozen=True, slots=True)
class ScanDiff:
    earlier: ScanInfo
    later: ScanInfo
    earlier_records: int
    later_records: int
    earlier_totals: CensusTotals
    later_totals: CensusTotals
    new: tuple[SystemEntry, ...]
    gone: tuple[SystemEntry, ...]
    not_rescanned: tuple[SystemEntry, ...]
    changed: tuple[ChangedSystem, ...]
    unchanged: int
    scope_known: bool
    """False when the later scan's scope was not given or is partly unknown (see `scope_notes`)."""
    scope_notes: tuple[str, ...]
    by_group: Mapping[str, tuple[CensusTotals, CensusTotals]] | None = None
    """(earlier, later) totals per `group_key` group; None without a `group_key`."""

    def totals(self) -> dict[str, TotalChange]:
        """Systems, hosts, studies, instances, patients: earlier, later, delta and delta %."""
        return _total_changes(self.earlier_totals, self.later_totals)


def _total_changes(earlier: CensusTotals, later: CensusTotals) -> dict[str, TotalChange]:
    rows = {
        "systems": TotalChange(
            earlier.systems,
            later.systems,
            later.systems - earlier.systems,
            _pct(earlier.systems, later.systems),
            True,
            True,
        ),
        "hosts": TotalChange(
            earlier.hosts,
            later.hosts,
            later.hosts - earlier.hosts,
            _pct(earlier.hosts, later.hosts),
            True,
            True,
        ),
    }
    for metric in CENSUS_METRICS:
        before, after = getattr(earlier, metric), getattr(later, metric)
        rows[metric] = TotalChange(
            before,
            after,
            None if before is None or after is None else after - before,
            _pct(before, after),
            getattr(earlier, f"{metric}_complete"),
            getattr(later, f"{metric}_complete"),
        )
    return rows


def _pct(before: int | None, after: int | None) -> float | None:
    if before is None or after is None:
        return None
    if before == 0:
        return 0.0 if after == 0 else None
    return round((after - before) * 100 / before, 1)


# --- the comparison ----------------------------------------------------------------------------


def diff_scans(
    earlier: Iterable[EndpointResult],
    later: Iterable[EndpointResult],
    *,
    later_scope: Scope | None,
    group_key: GroupKey | None = None,
    earlier_info: ScanInfo | None = None,
    later_info: ScanInfo | None = None,
) -> ScanDiff:
    """Compare two scans, each streamed in strictly increasing (ip, port) order.

    `later_scope` None means the later scan's scope is unknown: earlier systems it has no
    record of are then "not rescanned", never "gone". Raises `ValueError` if a stream is out
    of order (the merge would otherwise be silently wrong).
    """
    earlier_tally = _CensusTally(group_key)
    later_tally = _CensusTally(group_key)
    new: list[SystemEntry] = []
    gone: list[SystemEntry] = []
    not_rescanned: list[SystemEntry] = []
    changed: list[ChangedSystem] = []
    unchanged = 0
    for before, after in _merge(earlier, later):
        if before is not None:
            earlier_tally.add(before)
        if after is not None:
            later_tally.add(after)
        was = before is not None and _detected(before)
        now = after is not None and _detected(after)
        if now and not was:
            assert after is not None
            new.append(_entry(after, _missing_reason(before), before))
        elif was and not now:
            assert before is not None
            if after is not None:
                gone.append(_entry(before, "not-dicom", after))
            else:
                reason = _not_rescanned_reason(later_scope, before)
                if reason is None:
                    gone.append(_entry(before, "no-record", None))
                else:
                    not_rescanned.append(_entry(before, reason, None))
        elif was and now:
            assert before is not None and after is not None
            changes = _changes(before, after)
            if changes:
                d = after.dicom
                assert d is not None
                changed.append(
                    ChangedSystem(after.ip, after.port, after.hostname, d.product, d.version, changes)
                )
            else:
                unchanged += 1
    earlier_totals, earlier_groups = earlier_tally.result()
    later_totals, later_groups = later_tally.result()
    by_group = None
    if group_key is not None:
        empty = CensusTotals(0, 0)
        by_group = {
            name: (earlier_groups.get(name, empty), later_groups.get(name, empty))
            for name in sorted(earlier_groups.keys() | later_groups.keys())
        }
    return ScanDiff(
        earlier=earlier_info or ScanInfo(),
        later=later_info or ScanInfo(),
        earlier_records=earlier_tally.records,
        later_records=later_tally.records,
        earlier_totals=earlier_totals,
        later_totals=later_totals,
        new=tuple(new),
        gone=tuple(gone),
        not_rescanned=tuple(not_rescanned),
        changed=tuple(changed),
        unchanged=unchanged,
        scope_known=later_scope is not None and later_scope.known,
        scope_notes=("the later scan's scope was not given",) if later_scope is None else later_scope.notes,
        by_group=by_group,
    )


def diff_from_store(
    store: ScanStore,
    earlier_id: int,
    later_id: int,
    *,
    later_scope: Scope | None = None,
    group_key: GroupKey | None = None,
) -> ScanDiff:
    """Compare two stored scans, streaming both; the scope comes from the later scan's arguments
    unless `later_scope` is given (e.g. `Scope.everything()` for imports known to match)."""
    from pacsaudit.storage import StorageError

    earlier = store.scan(earlier_id)
    later = store.scan(later_id)
    for scan_id, record in ((earlier_id, earlier), (later_id, later)):
        if record is None:
            raise StorageError(f"no scan {scan_id}")
    assert earlier is not None and later is not None
    later_scope = scope_of(later, later_scope)
    before = store.observations(earlier_id)
    after = store.observations(later_id)
    try:
        return diff_scans(
            before,
            after,
            later_scope=later_scope,
            group_key=group_key,
            earlier_info=ScanInfo.from_record(earlier),
            later_info=ScanInfo.from_record(later),
        )
    finally:  # a stream holds a database connection until it is exhausted or closed
        for stream in (before, after):
            close = getattr(stream, "close", None)
            if close is not None:
                close()


def scope_of(record: ScanRecord, given: Scope | None = None) -> Scope:
    """What a stored scan covered: `given`, else rebuilt from its arguments; marked unfinished
    (an in-scope endpoint without a record may not have been reached) unless it finished."""
    from pacsaudit.storage import ScanState

    finished = record.state is ScanState.FINISHED
    scope = (
        given
        if given is not None
        else Scope.from_arguments(record.arguments, finished=finished, recorded_at=record.started_at)
    )
    return scope if finished else _unfinished(scope, record.state.value)


def earlier_coverage(
    earlier: Iterable[EndpointResult], later: Iterable[EndpointResult], later_scope: Scope | None
) -> Iterator[tuple[EndpointResult, bool]]:
    """Every earlier result with whether the later scan covered it: it has a record of the endpoint,
    or the endpoint is inside its (known, finished) scope. What `diff_scans` calls "not rescanned"
    is not covered, so comparing totals over covered results alone shows no decline for it.
    Both streams in (ip, port) order, as for `diff_scans`."""
    for before, after in _merge(earlier, later):
        if before is not None:
            yield before, after is not None or _not_rescanned_reason(later_scope, before) is None


def _unfinished(scope: Scope, state: str) -> Scope:
    return Scope(
        scope.hosts,
        scope.ports,
        scope.hosts_by_port,
        scope.exclusions,
        exclusions_known=scope.exclusions_known,
        open_ended=scope.open_ended,
        finished=False,
        universal=scope.universal,
        notes=(*scope.notes, f"the later scan is {state}, not finished"),
    )


def _key(result: EndpointResult) -> tuple[str, int]:
    """The store's order key: a hostname that never resolved stands in for its ip."""
    return (result.ip or (result.hostname or ""), result.port)


def _ordered(
    results: Iterable[EndpointResult], side: str
) -> Iterator[tuple[tuple[str, int], EndpointResult]]:
    previous: tuple[str, int] | None = None
    for result in results:
        key = _key(result)
        if previous is not None and key <= previous:
            raise ValueError(
                f"the {side} scan is not in increasing (ip, port) order: "
                f"{key[0]}:{key[1]} came after {previous[0]}:{previous[1]}"
            )
        previous = key
        yield key, result


def _merge(
    earlier: Iterable[EndpointResult], later: Iterable[EndpointResult]
) -> Iterator[tuple[EndpointResult | None, EndpointResult | None]]:
    """Pairs of results for the same endpoint, (result, None) or (None, result) where one is missing."""
    left, right = _ordered(earlier, "earlier"), _ordered(later, "later")
    a, b = next(left, None), next(right, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            yield a[1], None
            a = next(left, None)
        elif a is None or b[0] < a[0]:
            yield None, b[1]
            b = next(right, None)
        else:
            yield a[1], b[1]
            a, b = next(left, None), next(right, None)


def _detected(result: EndpointResult) -> bool:
    return result.dicom is not None and result.dicom.detected


def _missing_reason(other: EndpointResult | None) -> MissingReason:
    return "no-record" if other is None else "not-dicom"


def _not_rescanned_reason(scope: Scope | None, result: EndpointResult) -> NotRescannedReason | None:
    """None when the later scan was asked to probe the endpoint and finished: then it is gone."""
    if scope is None:
        return "scope-unknown"
    verdict = scope.verdict(result.ip, result.port, result.hostname)
    if verdict is ScopeVerdict.OUT:
        return "out-of-scope"
    if verdict is ScopeVerdict.UNKNOWN:
        return "scope-unknown"
    return None if scope.finished else "later-scan-unfinished"


def _entry(result: EndpointResult, reason: str | None, other: EndpointResult | None) -> SystemEntry:
    d = result.dicom
    assert d is not None
    c = d.counts
    return SystemEntry(
        ip=result.ip,
        port=result.port,
        hostname=result.hostname,
        status=result.status.value,
        product=d.product,
        vendor=d.vendor,
        version=d.version,
        open_to_any_ae=d.open_to_any_ae,
        called_ae_check=d.called_ae_check,
        calling_ae_check=d.calling_ae_check,
        services=d.services,
        patients=c.patients if c else None,
        studies=c.studies if c else None,
        series=c.series if c else None,
        instances=c.instances if c else None,
        counts_complete=c.complete if c else None,
        reason=reason,
        counterpart_status=None if other is None else other.status.value,
    )


_TRISTATE = (
    ("open_to_any_ae", "open-to-any-ae", "opened-to-any-ae", "closed-to-strangers"),
    ("called_ae_check", "called-ae-check", "called-ae-check-added", "called-ae-check-removed"),
    ("calling_ae_check", "calling-ae-check", "calling-ae-check-added", "calling-ae-check-removed"),
)
_SERVICES = ("find", "move", "get", "store")


def _tristate_kind(stem: str, added: str, removed: str, before: bool | None, after: bool | None) -> str:
    """True/False/None: a change to True or from True to False is real; to or from None is
    knowledge gained or lost (a busy peer, a different probe), and says so."""
    if after is True:
        return added
    if before is True and after is False:
        return removed
    return f"{stem}-undetermined" if after is None else f"{stem}-determined"


def _changes(before: EndpointResult, after: EndpointResult) -> tuple[Change, ...]:
    a, b = before.dicom, after.dicom
    assert a is not None and b is not None
    out: list[Change] = []
    if before.status != after.status:
        out.append(Change("status-changed", "status", before.status.value, after.status.value))
    if a.association != b.association:
        out.append(Change("association-changed", "association", a.association, b.association))
    for name, stem, added, removed in _TRISTATE:
        old, new = getattr(a, name), getattr(b, name)
        if old != new:
            out.append(Change(_tristate_kind(stem, added, removed, old, new), name, old, new))
    for service in _SERVICES:
        old = getattr(a.services, service) if a.services else None
        new = getattr(b.services, service) if b.services else None
        if old != new:
            kind = _tristate_kind("service", "service-granted", "service-withdrawn", old, new)
            out.append(Change(kind, f"services.{service}", old, new))
    for name in ("product", "version"):
        old, new = getattr(a, name), getattr(b, name)
        if old != new:
            out.append(Change(f"{name}-changed", name, old, new))
    if a.counts is not None and b.counts is not None:
        for metric in _COUNT_FIELDS:
            old, new = getattr(a.counts, metric), getattr(b.counts, metric)
            if old is not None and new is not None and old != new:
                out.append(
                    Change(
                        f"{metric}-grew" if new > old else f"{metric}-shrank",
                        f"counts.{metric}",
                        old,
                        new,
                        delta=new - old,
                        delta_pct=_pct(old, new),
                        before_complete=a.counts.complete,
                        after_complete=b.counts.complete,
                    )
                )
    return tuple(out)


class _Sums:
    """Running totals over hosts for one scan (or one group of it)."""

    __slots__ = ("complete", "hosts", "systems", "totals")

    def __init__(self) -> None:
        self.systems = 0
        self.hosts = 0
        self.totals: dict[str, int | None] = dict.fromkeys(CENSUS_METRICS)
        self.complete = dict.fromkeys(CENSUS_METRICS, True)

    def add_host(self, systems: int, best: dict[str, tuple[int, bool] | None], censused: bool) -> None:
        self.systems += systems
        self.hosts += 1
        for metric, value in best.items():
            if value is None:
                if censused:  # a census ran on this host but never reached this number
                    self.complete[metric] = False
                continue
            count, exact = value
            self.totals[metric] = (self.totals[metric] or 0) + count
            if not exact:
                self.complete[metric] = False

    def result(self) -> CensusTotals:
        t, c = self.totals, self.complete
        return CensusTotals(
            self.systems,
            self.hosts,
            studies=t["studies"],
            studies_complete=c["studies"],
            instances=t["instances"],
            instances_complete=c["instances"],
            patients=t["patients"],
            patients_complete=c["patients"],
        )


class _CensusTally:
    """One scan's totals, fed its results in ip order, so one host is tallied at a time.

    A host's count is the largest among its DICOM endpoints (one archive on two ports is one
    archive); it is exact when an endpoint with a complete census reported that largest number.
    """

    def __init__(self, group_key: GroupKey | None) -> None:
        self.records = 0
        self._group_key = group_key
        self._sums = _Sums()
        self._groups: dict[str, _Sums] = {}
        self._host: str | None = None
        self._group: str = UNATTRIBUTED
        self._systems = 0
        self._censused = False
        self._best: dict[str, tuple[int, bool] | None] = dict.fromkeys(CENSUS_METRICS)

    def add(self, result: EndpointResult) -> None:
        self.records += 1
        d = result.dicom
        if d is None or not d.detected:
            return
        host = _key(result)[0]
        if host != self._host:
            self._close()
            self._host = host
            if self._group_key is not None:
                self._group = self._group_key(result) or UNATTRIBUTED
        self._systems += 1
        counts = d.counts
        if counts is None:
            return
        self._censused = True
        for metric in CENSUS_METRICS:
            value = getattr(counts, metric)
            if value is None:
                continue
            best = self._best[metric]
            if best is None or value > best[0]:
                self._best[metric] = (value, counts.complete)
            elif value == best[0] and counts.complete:
                self._best[metric] = (value, True)

    def _close(self) -> None:
        if self._host is None:
            return
        self._sums.add_host(self._systems, self._best, self._censused)
        if self._group_key is not None:
            self._groups.setdefault(self._group, _Sums()).add_host(self._systems, self._best, self._censused)
        self._host = None
        self._systems = 0
        self._censused = False
        self._best = dict.fromkeys(CENSUS_METRICS)

    def result(self) -> tuple[CensusTotals, dict[str, CensusTotals]]:
        self._close()
        return self._sums.result(), {name: sums.result() for name, sums in self._groups.items()}


# --- JSON --------------------------------------------------------------------------------------


def render_json(diff: ScanDiff) -> str:
    """The diff as one JSON document; every key always present, null when unknown."""
    doc = {
        "earlier": _scan_json(diff.earlier, diff.earlier_records, diff.earlier_totals),
        "later": {
            **_scan_json(diff.later, diff.later_records, diff.later_totals),
            "scope": {"known": diff.scope_known, "notes": list(diff.scope_notes)},
        },
        "totals": {name: _total_json(row) for name, row in diff.totals().items()},
        "by_group": None
        if diff.by_group is None
        else {
            name: {row: _total_json(change) for row, change in _total_changes(*pair).items()}
            for name, pair in diff.by_group.items()
        },
        "new": [_entry_json(e, "earlier_status") for e in diff.new],
        "gone": [_entry_json(e, "later_status") for e in diff.gone],
        "not_rescanned": [_entry_json(e, None) for e in diff.not_rescanned],
        "changed": [
            {
                "ip": c.ip,
                "port": c.port,
                "hostname": c.hostname,
                "product": c.product,
                "version": c.version,
                "changes": [_change_json(change) for change in c.changes],
            }
            for c in diff.changed
        ],
        "unchanged": diff.unchanged,
    }
    return json.dumps(doc, indent=2) + "\n"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _scan_json(info: ScanInfo, records: int, totals: CensusTotals) -> dict[str, Any]:
    return {
        "id": info.id,
        "started_at": _iso(info.started_at),
        "finished_at": _iso(info.finished_at),
        "state": info.state,
        "tool_version": info.tool_version,
        "records": records,
        "totals": {
            "systems": totals.systems,
            "hosts": totals.hosts,
            "studies": totals.studies,
            "studies_complete": totals.studies_complete,
            "instances": totals.instances,
            "instances_complete": totals.instances_complete,
            "patients": totals.patients,
            "patients_complete": totals.patients_complete,
        },
    }


def _total_json(row: TotalChange) -> dict[str, Any]:
    return {
        "earlier": row.earlier,
        "later": row.later,
        "delta": row.delta,
        "delta_pct": row.delta_pct,
        "earlier_complete": row.earlier_complete,
        "later_complete": row.later_complete,
    }


def _entry_json(entry: SystemEntry, counterpart_key: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ip": entry.ip,
        "port": entry.port,
        "hostname": entry.hostname,
        "status": entry.status,
        "product": entry.product,
        "vendor": entry.vendor,
        "version": entry.version,
        "open_to_any_ae": entry.open_to_any_ae,
        "called_ae_check": entry.called_ae_check,
        "calling_ae_check": entry.calling_ae_check,
        "services": None if entry.services is None else entry.services.model_dump(),
        "patients": entry.patients,
        "studies": entry.studies,
        "series": entry.series,
        "instances": entry.instances,
        "counts_complete": entry.counts_complete,
        "reason": entry.reason,
    }
    if counterpart_key is not None:
        doc[counterpart_key] = entry.counterpart_status
    return doc


def _change_json(change: Change) -> dict[str, Any]:
    return {
        "kind": change.kind,
        "field": change.field,
        "before": change.before,
        "after": change.after,
        "delta": change.delta,
        "delta_pct": change.delta_pct,
        "before_complete": change.before_complete,
        "after_complete": change.after_complete,
    }


# --- words, for Markdown and the terminal ----------------------------------------------------

_TOTAL_LABELS = {
    "systems": "Systems",
    "hosts": "Hosts",
    "studies": "Studies",
    "instances": "Instances",
    "patients": "Patients",
}
_SERVICE_NAMES = {"find": "C-FIND", "move": "C-MOVE", "get": "C-GET", "store": "C-STORE"}
_FIELD_LABELS = {
    "status": "status",
    "association": "association",
    "open_to_any_ae": "open to any AE",
    "called_ae_check": "called AE check",
    "calling_ae_check": "calling AE check",
    "product": "product",
    "version": "version",
}
_PLAIN_KINDS = {
    "opened-to-any-ae": "opened to any AE",
    "closed-to-strangers": "closed to strangers",
    "called-ae-check-added": "called AE check added",
    "called-ae-check-removed": "called AE check removed",
    "calling-ae-check-added": "calling AE check added",
    "calling-ae-check-removed": "calling AE check removed",
}
_REASONS = {
    "no-record": "no record",
    "not-dicom": "not DICOM",
    "out-of-scope": "outside the later scan's scope",
    "scope-unknown": "the later scan's scope is unknown",
    "later-scan-unfinished": "the later scan did not finish",
}


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def _value(value: Value) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return _yes_no(value)
    if isinstance(value, int):
        return f"{value:,}"
    return clean(value)


def _describe(change: Change) -> str:
    """One change in words; server text is cleaned, not escaped (the caller escapes for its medium)."""
    if change.kind in _PLAIN_KINDS:
        return _PLAIN_KINDS[change.kind]
    if change.field.startswith("services."):
        service = _SERVICE_NAMES[change.field.partition(".")[2]]
        if change.kind == "service-granted":
            return f"{service} granted"
        if change.kind == "service-withdrawn":
            return f"{service} withdrawn"
        return f"{service}: {_value(change.before)} → {_value(change.after)}"
    if change.field.startswith("counts."):
        metric = change.field.partition(".")[2]
        before = change.before if isinstance(change.before, int) else None
        after = change.after if isinstance(change.after, int) else None
        return (
            f"{metric} {number(before, change.before_complete is not False)} → "
            f"{number(after, change.after_complete is not False)} "
            f"({signed(change.delta)}, {percent(change.delta_pct)})"
        )
    label = _FIELD_LABELS.get(change.field, change.field)
    return f"{label}: {_value(change.before)} → {_value(change.after)}"


def _label(info: ScanInfo, fallback: str) -> str:
    """`scan 12` for a column header, or the fallback (`earlier`) when the id is not known."""
    return fallback if info.id is None else f"scan {info.id}"


def _name(info: ScanInfo, fallback: str) -> str:
    """`scan 12` in a sentence, or `the earlier scan`."""
    return f"the {fallback} scan" if info.id is None else f"scan {info.id}"


def _when(info: ScanInfo) -> str | None:
    if info.started_at is None:
        return None
    started = info.started_at.strftime("%Y-%m-%d %H:%M %Z").strip()
    return f"started {started}" + (f" ({info.state})" if info.state else "")


def _product(entry_product: str | None, version: str | None) -> str:
    return " ".join(clean(part) for part in (entry_product, version) if part) or "unknown product"


def _why(entry: SystemEntry) -> str:
    """The other scan's view in words: no record, another protocol, or what happened instead."""
    if entry.reason == "not-dicom" and entry.counterpart_status:
        return "another protocol" if entry.counterpart_status == "not-dicom" else entry.counterpart_status
    return _REASONS.get(entry.reason or "", entry.reason or "")


def _why_gone(entry: SystemEntry) -> str:
    """In scope, finished, and no record: the endpoint did not answer as DICOM any more."""
    return "no answer" if entry.reason == "no-record" else _why(entry)


def _summary_line(diff: ScanDiff) -> str:
    return (
        f"{len(diff.new):,} new, {len(diff.gone):,} gone, {len(diff.changed):,} changed, "
        f"{diff.unchanged:,} unchanged; {len(diff.not_rescanned):,} not rescanned"
    )


TOTALS_NOTE = (
    "Census totals count each host once, with the largest counts among its ports; "
    "≥ marks a lower bound (a census cut short by its budget or time)."
)


# --- Markdown ----------------------------------------------------------------------------------


def render_markdown(diff: ScanDiff) -> str:
    earlier, later = _label(diff.earlier, "earlier"), _label(diff.later, "later")
    lines = [f"# pacsaudit diff: {earlier} → {later}", ""]
    when = [f"{name} {w}" for name, w in ((earlier, _when(diff.earlier)), (later, _when(diff.later))) if w]
    if when:
        sentence = "; ".join(when)
        lines += [sentence[0].upper() + sentence[1:] + ".", ""]
    lines += [
        f"| | {earlier} | {later} | Δ | Δ % |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in diff.totals().items():
        lines.append(
            f"| {_TOTAL_LABELS[name]} | {number(row.earlier, row.earlier_complete)} | "
            f"{number(row.later, row.later_complete)} | {signed(row.delta)} | {percent(row.delta_pct)} |"
        )
    lines += ["", TOTALS_NOTE, "", f"**{_summary_line(diff)}.**", ""]

    lines += [f"## New ({len(diff.new):,})", ""]
    lines += _md_entries(diff.new, "Before", _why)
    lines += [f"## Gone ({len(diff.gone):,})", ""]
    lines += _md_entries(diff.gone, "Now", _why_gone)
    lines += [f"## Changed ({len(diff.changed):,})", ""]
    if not diff.changed:
        lines += ["None.", ""]
    for system in diff.changed[:LIST_LIMIT]:
        what = "; ".join(md(_describe(change)) for change in system.changes)
        product = md_inert(_product(system.product, system.version))
        lines.append(f"- `{endpoint(system.ip, system.port)}` ({product}): {what}")
    if diff.changed:
        lines += [*_more(len(diff.changed)), ""]

    lines += [f"## Not rescanned ({len(diff.not_rescanned):,})", ""]
    if diff.not_rescanned:
        reasons: dict[str, int] = {}
        for entry in diff.not_rescanned:
            reasons[_why(entry)] = reasons.get(_why(entry), 0) + 1
        why = ", ".join(f"{count:,}: {reason}" for reason, count in reasons.items())
        shown = ", ".join(f"`{endpoint(e.ip, e.port)}`" for e in diff.not_rescanned[:LIST_LIMIT])
        more = len(diff.not_rescanned) - LIST_LIMIT
        first, second = _name(diff.earlier, "earlier"), _name(diff.later, "later")
        lines += [
            f"Systems of {first} that {second} did not cover ({why}) are neither gone nor compared; "
            f"they still count in the totals of {first}: {shown}"
            + (f" and {more:,} more." if more > 0 else "."),
            "",
        ]
    else:
        lines += ["None: every system of the earlier scan was in the later scan's scope.", ""]
    if diff.scope_notes:
        lines += ["Scope: " + "; ".join(md(note) for note in diff.scope_notes) + ".", ""]
    return "\n".join(lines)


def _md_entries(entries: tuple[SystemEntry, ...], other: str, why: Callable[[SystemEntry], str]) -> list[str]:
    if not entries:
        return ["None.", ""]
    lines = [
        f"| Endpoint | Product | Version | Open to any AE | Studies | Instances | Patients | {other} |",
        "|---|---|---|---|---:|---:|---:|---|",
    ]
    for e in entries[:LIST_LIMIT]:
        complete = e.counts_complete is not False
        lines.append(
            f"| `{endpoint(e.ip, e.port)}` | {md_inert(e.product or '—')} | {md_inert(e.version or '—')} | "
            f"{_yes_no(e.open_to_any_ae)} | {number(e.studies, complete)} | "
            f"{number(e.instances, complete)} | {number(e.patients, complete)} | {md(why(e))} |"
        )
    return [*lines, *_more(len(entries)), ""]


def _more(count: int) -> list[str]:
    return ["", f"… and {count - LIST_LIMIT:,} more."] if count > LIST_LIMIT else []


# --- the terminal ------------------------------------------------------------------------------


def render_table(diff: ScanDiff) -> RenderableType:
    """Rich tables for `--format table`; every cell is a `Text`, so no server text is markup."""
    earlier, later = _label(diff.earlier, "earlier"), _label(diff.later, "later")
    totals = Table(title=f"pacsaudit diff: {earlier} → {later}", header_style="bold")
    totals.add_column("")
    for column in (earlier, later, "Δ", "Δ %"):
        totals.add_column(column, justify="right")
    for name, row in diff.totals().items():
        totals.add_row(
            Text(_TOTAL_LABELS[name]),
            Text(number(row.earlier, row.earlier_complete)),
            Text(number(row.later, row.later_complete)),
            Text(signed(row.delta)),
            Text(percent(row.delta_pct)),
        )
    parts: list[RenderableType] = [totals, Text(TOTALS_NOTE, style="dim"), Text(_summary_line(diff))]
    for title, entries, why in (("New", diff.new, _why), ("Gone", diff.gone, _why_gone)):
        if entries:
            parts.append(_entries_table(f"{title} ({len(entries):,})", entries, why))
    if diff.changed:
        table = Table(title=f"Changed ({len(diff.changed):,})", header_style="bold")
        table.add_column("Endpoint")
        table.add_column("Product")
        table.add_column("Changes")
        for system in diff.changed[:LIST_LIMIT]:
            table.add_row(
                Text(endpoint(system.ip, system.port)),
                Text(_product(system.product, system.version)),
                Text("\n".join(_describe(change) for change in system.changes)),
            )
        parts.append(table)
        parts += [Text(line) for line in _more(len(diff.changed)) if line]
    if diff.not_rescanned:
        parts.append(
            Text(
                f"{len(diff.not_rescanned):,} system(s) of {_name(diff.earlier, 'earlier')} not rescanned "
                f"by {_name(diff.later, 'later')}: "
                "neither gone nor compared (see --format md or json for the list).",
                style="yellow",
            )
        )
    if diff.scope_notes:
        parts.append(Text("Scope: " + "; ".join(clean(note) for note in diff.scope_notes) + ".", style="dim"))
    return Group(*parts)


def _entries_table(title: str, entries: tuple[SystemEntry, ...], why: Callable[[SystemEntry], str]) -> Table:
    table = Table(title=title, header_style="bold")
    for column in ("Endpoint", "Product", "Open to any AE", "Studies", "Instances", "Patients", "Note"):
        table.add_column(
            column, justify="right" if column in ("Studies", "Instances", "Patients") else "left"
        )
    for e in entries[:LIST_LIMIT]:
        complete = e.counts_complete is not False
        table.add_row(
            Text(endpoint(e.ip, e.port)),
            Text(_product(e.product, e.version)),
            Text(_yes_no(e.open_to_any_ae)),
            Text(number(e.studies, complete)),
            Text(number(e.instances, complete)),
            Text(number(e.patients, complete)),
            Text(why(e)),
        )
    if len(entries) > LIST_LIMIT:
        table.caption = f"… and {len(entries) - LIST_LIMIT:,} more."
    return table
