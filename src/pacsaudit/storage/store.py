"""`ScanStore`: every scan kept, one observation per endpoint per scan, behind one URL.

Writes come in batches from the scan engine, each batch one transaction that also moves the
scan's low-water mark: what is committed below the mark is complete, so a scan killed at any
instant resumes from the mark and loses nothing. Reads stream (bounded memory whatever the
scan size). Import/export speak the same JSON Lines as `pacsaudit scan -o`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TextIO

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from pacsaudit import __version__
from pacsaudit.model import EndpointResult
from pacsaudit.storage.backends import WRITE, StorageError, create_engine, migrate
from pacsaudit.storage.bulk import bulk_writer
from pacsaudit.storage.schema import endpoints, observations, scans
from pacsaudit.storage.states import DEFAULT_URL, ScanState

__all__ = [
    "DEFAULT_URL",
    "BadLine",
    "ImportSummary",
    "ScanRecord",
    "ScanState",
    "ScanStore",
]


MAX_POSITION = 2**63 - 1
"""Stream positions are stored as 64-bit integers (an IPv6 /64 times several ports is not)."""

IMPORT_BATCH = 2000
BAD_LINES_KEPT = 100
"""An import reports every bad line in its count, the first this many with line and reason."""


@dataclass(frozen=True, slots=True)
class ScanRecord:
    """One row of `scans`. Times are UTC and timezone-aware on both backends."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    state: ScanState
    arguments: dict[str, Any]
    """What the CLI needs to rebuild the target stream and settings on `--resume`."""
    tool_version: str
    targets_estimated: int | None
    low_water_mark: int
    """Every stream position below this one has been fully handled and its result committed."""
    endpoints_done: int
    dicom_found: int


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    """1-based line number in the imported file."""
    error: str
    """Why the line was refused: JSON or model errors by location, never quoting the line."""


@dataclass(frozen=True, slots=True)
class ImportSummary:
    scan_id: int
    imported: int
    """Valid lines stored (a later line for the same ip and port replaces an earlier one)."""
    replaced: int
    """Of those, how many replaced an earlier line for the same endpoint."""
    bad: int
    """Lines refused (not JSON, or not an `EndpointResult`); blank lines are skipped silently."""
    bad_lines: tuple[BadLine, ...]
    """The first `BAD_LINES_KEPT` refused lines."""

    @property
    def stored(self) -> int:
        """Observations the new scan holds."""
        return self.imported - self.replaced


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _observed_at(timestamp: str) -> datetime | None:
    """The probe's start time as UTC; None when the record's timestamp is not ISO 8601."""
    try:
        value = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _text(value: str | None) -> str | None:
    """PostgreSQL text refuses NUL, which a hostile peer may put in an implementation name.

    Only the query columns are cleaned; the JSON document keeps the value exactly (as \\u0000).
    """
    if value is not None and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def _endpoint_key(result: EndpointResult) -> tuple[str, int]:
    """(ip, port); a hostname that never resolved is keyed by its name (it has no address)."""
    ip = result.ip or (result.hostname or "")
    return (_text(ip) or "", result.port)


OBSERVATION_COLUMNS = (
    "scan_id",
    "endpoint_id",
    "position",
    "observed_at",
    "status",
    "dicom_detected",
    "association",
    "open_to_any_ae",
    "called_ae_check",
    "calling_ae_check",
    "product",
    "version",
    "service_find",
    "service_move",
    "service_get",
    "service_store",
    "patients",
    "studies",
    "series",
    "instances",
    "counts_complete",
    "ssn_shaped",
    "country",
    "asn",
    "result",
    "scope",
)
"""The order of `_observation_row`'s values: the table's own column order."""
_ENDPOINT_ID = OBSERVATION_COLUMNS.index("endpoint_id")
_DICOM_DETECTED = OBSERVATION_COLUMNS.index("dicom_detected")


def _observation_row(
    scan_id: int, endpoint_id: int, position: int | None, r: EndpointResult
) -> tuple[Any, ...]:
    """One `observations` row: the query columns copied out of the result, then the result."""
    observed_at = _observed_at(r.timestamp)
    document = r.model_dump_json()
    d = r.dicom
    if d is None:
        return (
            (scan_id, endpoint_id, position, observed_at, r.status.value, False)
            + (None,) * 16
            + _attribution_columns(r)
            + (document, _scope(r))
        )
    services = d.services
    counts = d.counts
    return (
        scan_id,
        endpoint_id,
        position,
        observed_at,
        r.status.value,
        d.detected,
        d.association,
        d.open_to_any_ae,
        d.called_ae_check,
        d.calling_ae_check,
        _text(d.product),
        _text(d.version),
        *((services.find, services.move, services.get, services.store) if services else (None,) * 4),
        *(
            (counts.patients, counts.studies, counts.series, counts.instances, counts.complete)
            if counts
            else (None,) * 5
        ),
        d.sensitive.ssn_shaped if d.sensitive else None,
        *_attribution_columns(r),
        document,
        _scope(r),
    )


_COUNTRY = re.compile(r"[A-Z]{2}")


def _attribution_columns(r: EndpointResult) -> tuple[str | None, int | None]:
    """(country, asn), only when they fit their columns (an imported file may carry anything)."""
    a = r.attribution
    if a is None:
        return (None, None)
    country = a.country if a.country is not None and _COUNTRY.fullmatch(a.country) else None
    asn = a.asn if a.asn is not None and 0 <= a.asn < 2**32 else None
    return (country, asn)


def _scope(r: EndpointResult) -> str | None:
    return r.attribution.scope if r.attribution is not None else None


class ScanStore:
    """Scan history in a SQL database chosen by URL; `open` migrates it to the current schema.

    Thread-safe (one engine, a pool of connections). Use as a context manager or `close()` it.
    """

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine whose schema is already at head; `ScanStore.open` is the usual way in."""
        self._engine = engine
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise StorageError(f"unsupported database dialect {engine.dialect.name!r}")
        self._bulk = bulk_writer(engine.dialect, OBSERVATION_COLUMNS)

    @classmethod
    def open(cls, url: str = DEFAULT_URL) -> ScanStore:
        """Connect, create or upgrade the schema (Alembic, to head), and return the store."""
        engine = create_engine(url)
        try:
            migrate(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    @property
    def engine(self) -> Engine:
        """For reports and the diff, which run their own SELECTs on the same tables."""
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> ScanStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- scans -------------------------------------------------------------------------------

    def create_scan(
        self, arguments: dict[str, Any], *, targets_estimated: int | None, tool_version: str
    ) -> int:
        """A new scan in state `running`; returns its id."""
        with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
            scan_id = conn.execute(
                scans.insert().returning(scans.c.id),
                {
                    "started_at": _utcnow(),
                    "state": ScanState.RUNNING.value,
                    "arguments": arguments,
                    "tool_version": tool_version,
                    "targets_estimated": targets_estimated,
                    "low_water_mark": 0,
                    "endpoints_done": 0,
                    "dicom_found": 0,
                },
            ).scalar_one()
        return int(scan_id)

    def write_batch(
        self,
        scan_id: int,
        results: Sequence[tuple[int, EndpointResult]],
        *,
        low_water_mark: int | None,
        endpoints_done: int | None,
    ) -> None:
        """Store `(position, result)` pairs and the scan's progress, in one transaction.

        Idempotent: an endpoint (ip, port) already stored for this scan is *replaced* by the
        newer write (also within one batch: the last pair wins), so redoing in-flight targets
        after a crash, or writing a batch twice, never duplicates. `low_water_mark` and
        `endpoints_done` are absolute values that only move up (a smaller one is ignored; None
        leaves it as is, e.g. for a shard of a multi-process scan, whose counts are partial).
        The mark must cover only positions whose results are in this batch or an earlier one.
        Raises `StorageError` if the scan is unknown or not running.
        """
        self._write(scan_id, results, low_water_mark=low_water_mark, endpoints_done=endpoints_done)

    def _write(
        self,
        scan_id: int,
        results: Sequence[tuple[int | None, EndpointResult]],
        *,
        low_water_mark: int | None,
        endpoints_done: int | None,
    ) -> int:
        """`write_batch`, also for imports (no positions). Returns how many results replaced
        another for the same endpoint: stored earlier, or earlier in this batch."""
        if low_water_mark is not None and not 0 <= low_water_mark <= MAX_POSITION:
            raise StorageError(f"low-water mark {low_water_mark} does not fit a 64-bit position")
        latest: dict[tuple[str, int], tuple[int | None, EndpointResult]] = {}
        for position, result in results:
            if position is not None and not 0 <= position <= MAX_POSITION:
                raise StorageError(f"stream position {position} does not fit a 64-bit integer")
            key = _endpoint_key(result)
            latest.pop(key, None)
            latest[key] = (position, result)
        keys = sorted(latest)  # one lock order for concurrent PostgreSQL writers
        try:
            with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
                self._advance_scan(conn, scan_id, low_water_mark, endpoints_done)
                if not keys:
                    return 0
                ids = self._endpoint_ids(conn, keys)
                rows = [_observation_row(scan_id, ids[key], latest[key][0], latest[key][1]) for key in keys]
                previous = self._bulk.detected_before(conn, scan_id, [row[_ENDPOINT_ID] for row in rows])
                self._bulk.upsert_observations(conn, rows)
                delta = sum(row[_DICOM_DETECTED] for row in rows) - sum(previous.values())
                if delta:
                    conn.execute(
                        scans.update()
                        .where(scans.c.id == scan_id)
                        .values(dicom_found=scans.c.dicom_found + delta)
                    )
                return len(results) - len(rows) + len(previous)
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0][:200]
            raise StorageError(f"could not store results of scan {scan_id}: {reason}") from exc

    @staticmethod
    def _advance_scan(conn: Connection, scan_id: int, low_water_mark: int | None, done: int | None) -> None:
        values: dict[str, Any] = {}
        if low_water_mark is not None:
            values["low_water_mark"] = sa.case(
                (scans.c.low_water_mark < low_water_mark, low_water_mark), else_=scans.c.low_water_mark
            )
        if done is not None:
            values["endpoints_done"] = sa.case(
                (scans.c.endpoints_done < done, done), else_=scans.c.endpoints_done
            )
        if not values:  # still lock the row and check the state
            values["state"] = scans.c.state
        updated = conn.execute(
            scans.update()
            .where(scans.c.id == scan_id, scans.c.state == ScanState.RUNNING.value)
            .values(**values)
        )
        if updated.rowcount != 1:
            state = conn.execute(sa.select(scans.c.state).where(scans.c.id == scan_id)).scalar_one_or_none()
            if state is None:
                raise StorageError(f"no scan {scan_id}")
            raise StorageError(f"scan {scan_id} is {state}, not running: resume it before writing")

    def _endpoint_ids(self, conn: Connection, keys: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        self._bulk.insert_endpoints(conn, keys)
        return self._bulk.endpoint_ids(conn, keys)

    def finish_scan(self, scan_id: int, state: str) -> None:
        """End a scan as `finished`, `interrupted` or `failed`; recounts `dicom_found` exactly."""
        try:
            final = ScanState(state)
        except ValueError:
            raise StorageError(f"not a scan state: {state!r}") from None
        if final is ScanState.RUNNING:
            raise StorageError("finish_scan ends a scan: use resume_scan to mark it running again")
        with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
            dicom = (
                sa.select(sa.func.count())
                .select_from(observations)
                .where(observations.c.scan_id == scan_id, observations.c.dicom_detected.is_(True))
                .scalar_subquery()
            )
            updated = conn.execute(
                scans.update()
                .where(scans.c.id == scan_id)
                .values(state=final.value, finished_at=_utcnow(), dicom_found=dicom)
            )
            if updated.rowcount != 1:
                raise StorageError(f"no scan {scan_id}")

    def resume_scan(self, scan_id: int) -> ScanRecord:
        """Mark an unfinished scan `running` again and return it (its arguments, its mark)."""
        with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
            record = self._scan(conn, scan_id)
            if record is None:
                raise StorageError(f"no scan {scan_id}")
            if record.state is ScanState.FINISHED:
                raise StorageError(f"scan {scan_id} is finished: nothing to resume")
            conn.execute(
                scans.update()
                .where(scans.c.id == scan_id)
                .values(state=ScanState.RUNNING.value, finished_at=None)
            )
            record = self._scan(conn, scan_id)
        assert record is not None
        return record

    def scan(self, scan_id: int) -> ScanRecord | None:
        with self._engine.connect() as conn:
            return self._scan(conn, scan_id)

    def scans(self) -> list[ScanRecord]:
        """Every scan, oldest first."""
        with self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(sa.select(scans).order_by(scans.c.id)).mappings()]

    @staticmethod
    def _scan(conn: Connection, scan_id: int) -> ScanRecord | None:
        row = conn.execute(sa.select(scans).where(scans.c.id == scan_id)).mappings().one_or_none()
        return None if row is None else _record(row)

    # --- observations ------------------------------------------------------------------------

    def observations(self, scan_id: int, *, batch: int = 1000) -> Iterator[EndpointResult]:
        """The scan's results ordered by ip (as text, byte order), then port; streamed.

        PostgreSQL uses a server-side cursor and SQLite steps its cursor, `batch` rows at a
        time, so memory does not grow with the scan. The connection is held until the
        iterator is exhausted or closed.
        """
        query = (
            sa.select(observations.c.result)
            .join(endpoints, endpoints.c.id == observations.c.endpoint_id)
            .where(observations.c.scan_id == scan_id)
            .order_by(endpoints.c.ip, endpoints.c.port)
        )
        with (
            self._engine.connect().execution_options(stream_results=True, yield_per=batch) as conn,
            conn.execute(query) as rows,
        ):
            for (document,) in rows:
                yield EndpointResult.model_validate_json(document)

    def observed_positions(self, scan_id: int, positions_from: int) -> set[int]:
        """The stream positions stored at or after `positions_from`: resume skips these.

        By position, not by address: a hostname target's address is known only once resolved.
        """
        query = sa.select(observations.c.position).where(
            observations.c.scan_id == scan_id, observations.c.position >= positions_from
        )
        with self._engine.connect() as conn:
            return {int(position) for position in conn.execute(query).scalars()}

    # --- JSON Lines --------------------------------------------------------------------------

    def export_jsonl(self, scan_id: int, out: TextIO) -> int:
        """Write the scan as JSON Lines, the format of `pacsaudit scan -o`; returns the line count."""
        count = 0
        for result in self.observations(scan_id):
            out.write(result.model_dump_json())
            out.write("\n")
            count += 1
        return count

    def import_jsonl(
        self,
        path_or_file: str | os.PathLike[str] | IO[str] | IO[bytes],
        *,
        arguments: dict[str, Any] | None = None,
    ) -> ImportSummary:
        """A new `finished` scan from a JSON Lines file of `EndpointResult`s (another sensor's).

        Streams the file and commits every `IMPORT_BATCH` lines. Each line is validated by the
        model; a bad one is counted and reported (line number, reason), never fatal. If the
        file has bad lines and no good one, the scan ends `failed`. The scan's start and end
        times are the earliest and latest result timestamps. Observations have no stream
        position (NULL). `arguments` defaults to `{"imported_from": <file name>}`.
        """
        if isinstance(path_or_file, str | os.PathLike):
            name = str(path_or_file)
            with Path(path_or_file).open("rb") as stream:
                return self._import(stream, arguments, name, __version__)
        name = str(getattr(path_or_file, "name", "<stream>"))
        return self._import(path_or_file, arguments, name, __version__)

    def _import(
        self, lines: Iterable[str | bytes], arguments: dict[str, Any] | None, name: str, version: str
    ) -> ImportSummary:
        if arguments is None:
            arguments = {"imported_from": name}
        scan_id = self.create_scan(arguments, targets_estimated=None, tool_version=version)
        imported = replaced = bad = 0
        bad_lines: list[BadLine] = []
        earliest: datetime | None = None
        latest: datetime | None = None
        pending: list[tuple[int | None, EndpointResult]] = []
        try:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    result = EndpointResult.model_validate_json(line)
                except ValidationError as exc:
                    bad += 1
                    if len(bad_lines) < BAD_LINES_KEPT:
                        bad_lines.append(BadLine(number, _describe(exc)))
                    continue
                imported += 1
                observed = _observed_at(result.timestamp)
                if observed is not None:
                    earliest = observed if earliest is None else min(earliest, observed)
                    latest = observed if latest is None else max(latest, observed)
                pending.append((None, result))
                if len(pending) >= IMPORT_BATCH:
                    replaced += self._write(scan_id, pending, low_water_mark=None, endpoints_done=imported)
                    pending.clear()
            replaced += self._write(scan_id, pending, low_water_mark=None, endpoints_done=imported)
        except BaseException:
            self.finish_scan(scan_id, ScanState.FAILED)
            raise
        self.finish_scan(scan_id, ScanState.FAILED if bad and not imported else ScanState.FINISHED)
        if earliest is not None and latest is not None:
            with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
                conn.execute(
                    scans.update()
                    .where(scans.c.id == scan_id)
                    .values(started_at=earliest, finished_at=latest)
                )
        return ImportSummary(scan_id, imported, replaced, bad, tuple(bad_lines))


def _describe(exc: ValidationError) -> str:
    """Locations and messages only: an input value could be anything, even patient data."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False)[:3]:
        where = ".".join(str(part) for part in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    more = exc.error_count() - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)[:300]


def _record(row: sa.RowMapping) -> ScanRecord:
    started = _aware(row["started_at"])
    assert started is not None
    return ScanRecord(
        id=int(row["id"]),
        started_at=started,
        finished_at=_aware(row["finished_at"]),
        state=ScanState(row["state"]),
        arguments=dict(row["arguments"]),
        tool_version=row["tool_version"],
        targets_estimated=row["targets_estimated"],
        low_water_mark=int(row["low_water_mark"]),
        endpoints_done=int(row["endpoints_done"]),
        dicom_found=int(row["dicom_found"]),
    )
