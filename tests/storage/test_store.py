"""`ScanStore` on both backends: scans, idempotent batch writes, the low-water mark, resume
queries, streaming reads."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from pacsaudit.model import DicomBlock, EndpointResult, Status
from pacsaudit.storage import ScanState, ScanStore, StorageError
from pacsaudit.storage.schema import endpoints, observations
from pacsaudit.storage.store import OBSERVATION_COLUMNS

from .synthetic import batch, synthetic_result

NewScan = Callable[..., int]


def _count(store: ScanStore, scan_id: int) -> int:
    with store.engine.connect() as connection:
        query = sa.select(sa.func.count()).select_from(observations).where(observations.c.scan_id == scan_id)
        return int(connection.execute(query).scalar_one())


def test_observation_columns_are_the_table_columns() -> None:
    assert tuple(column.name for column in observations.columns) == OBSERVATION_COLUMNS


def test_a_new_scan_is_running_with_its_arguments(store: ScanStore) -> None:
    arguments = {"targets": ["127.0.0.0/30"], "ports": [104, 4242], "census": True, "files": []}
    scan_id = store.create_scan(arguments, targets_estimated=8, tool_version="0.1.0")
    record = store.scan(scan_id)
    assert record is not None
    assert record.id == scan_id
    assert record.state is ScanState.RUNNING
    assert record.arguments == arguments
    assert record.targets_estimated == 8
    assert record.tool_version == "0.1.0"
    assert (record.low_water_mark, record.endpoints_done, record.dicom_found) == (0, 0, 0)
    assert record.finished_at is None
    assert record.started_at.tzinfo is not None
    assert abs((datetime.now(UTC) - record.started_at).total_seconds()) < 60
    assert scan_id in [scan.id for scan in store.scans()]
    assert store.scan(10**9) is None


def test_a_batch_is_stored_with_its_query_columns(store: ScanStore, new_scan: NewScan) -> None:
    scan_id = new_scan()
    results = batch(0, 8)
    store.write_batch(scan_id, results, low_water_mark=8, endpoints_done=8)
    assert list(store.observations(scan_id)) == sorted((r for _, r in results), key=lambda r: (r.ip, r.port))
    record = store.scan(scan_id)
    assert record is not None
    assert (record.low_water_mark, record.endpoints_done) == (8, 8)
    assert record.dicom_found == sum(1 for _, r in results if r.dicom is not None and r.dicom.detected)
    with store.engine.connect() as connection:
        row = (
            connection.execute(
                sa.select(observations)
                .join(endpoints)
                .where(observations.c.scan_id == scan_id, endpoints.c.ip == results[4][1].ip)
            )
            .mappings()
            .one()
        )
    census = results[4][1]
    assert census.dicom is not None and census.dicom.counts is not None
    assert row["position"] == 4
    assert row["status"] == "success"
    assert row["dicom_detected"] is True
    assert row["association"] == "accepted"
    assert row["open_to_any_ae"] is True
    assert (row["product"], row["version"]) == (census.dicom.product, census.dicom.version)
    assert (row["service_find"], row["service_get"]) == (True, False)
    assert row["studies"] == census.dicom.counts.studies
    assert row["instances"] == census.dicom.counts.instances
    assert row["counts_complete"] == census.dicom.counts.complete
    assert row["ssn_shaped"] == 1
    assert row["country"] is None and row["asn"] is None
    observed = row["observed_at"].replace(tzinfo=row["observed_at"].tzinfo or UTC)
    assert observed == datetime.fromisoformat(census.timestamp)


def test_writing_the_same_batch_twice_stores_it_once(store: ScanStore, new_scan: NewScan) -> None:
    scan_id = new_scan()
    results = batch(0, 200)
    store.write_batch(scan_id, results, low_water_mark=200, endpoints_done=200)
    first = store.scan(scan_id)
    store.write_batch(scan_id, results, low_water_mark=200, endpoints_done=200)
    assert _count(store, scan_id) == 200
    assert store.scan(scan_id) == first
    assert len(list(store.observations(scan_id))) == 200


def test_a_rerun_endpoint_is_replaced_by_the_newer_result(store: ScanStore, new_scan: NewScan) -> None:
    # Given an endpoint stored as an open archive
    scan_id = new_scan()
    old = synthetic_result(0)
    store.write_batch(scan_id, [(0, old)], low_water_mark=None, endpoints_done=1)
    assert store.scan(scan_id).dicom_found == 1  # type: ignore[union-attr]
    # When it is written again (redone after a crash), now closed
    new = EndpointResult(
        ip=old.ip, port=old.port, status=Status.CONNECTION_REFUSED, elapsed_ms=1.0, timestamp="t"
    )
    store.write_batch(scan_id, [(7, new)], low_water_mark=None, endpoints_done=1)
    # Then only the newer is kept, at its new position, and the counter follows
    assert list(store.observations(scan_id)) == [new]
    assert store.observed_positions(scan_id, 0) == {7}
    assert store.scan(scan_id).dicom_found == 0  # type: ignore[union-attr]


def test_within_one_batch_the_last_result_for_an_endpoint_wins(store: ScanStore, new_scan: NewScan) -> None:
    scan_id = new_scan()
    first, second = synthetic_result(0), synthetic_result(0).model_copy(update={"elapsed_ms": 99.0})
    store.write_batch(scan_id, [(0, first), (1, second)], low_water_mark=2, endpoints_done=2)
    assert list(store.observations(scan_id)) == [second]


def test_the_same_endpoint_in_two_scans_is_one_endpoint(store: ScanStore, new_scan: NewScan) -> None:
    one, two = new_scan(), new_scan()
    results = batch(0, 10)
    store.write_batch(one, results, low_water_mark=10, endpoints_done=10)
    store.write_batch(two, results, low_water_mark=10, endpoints_done=10)
    with store.engine.connect() as connection:
        ids = connection.execute(
            sa.select(observations.c.scan_id, sa.func.count(sa.distinct(observations.c.endpoint_id)))
            .where(observations.c.scan_id.in_([one, two]))
            .group_by(observations.c.scan_id)
        ).all()
        shared = connection.execute(
            sa.select(sa.func.count(sa.distinct(observations.c.endpoint_id))).where(
                observations.c.scan_id.in_([one, two])
            )
        ).scalar_one()
    assert sorted(count for _, count in ids) == [10, 10]
    assert shared == 10


def test_the_low_water_mark_and_the_counter_never_go_down(store: ScanStore, new_scan: NewScan) -> None:
    scan_id = new_scan()
    steps = [(10, 10), (5, 12), (None, 3), (40, 40), (39, 39), (0, 0), (41, None)]
    expected = [(10, 10), (10, 12), (10, 12), (40, 40), (40, 40), (40, 40), (41, 40)]
    for (mark, done), want in zip(steps, expected, strict=True):
        store.write_batch(scan_id, [], low_water_mark=mark, endpoints_done=done)
        record = store.scan(scan_id)
        assert record is not None
        assert (record.low_water_mark, record.endpoints_done) == want


def test_positions_must_fit_64_bits(store: ScanStore, new_scan: NewScan) -> None:
    scan_id = new_scan()
    with pytest.raises(StorageError, match="64-bit"):
        store.write_batch(scan_id, [(2**64, synthetic_result(0))], low_water_mark=None, endpoints_done=1)
    with pytest.raises(StorageError, match="64-bit"):
        store.write_batch(scan_id, [], low_water_mark=-1, endpoints_done=1)
    assert _count(store, scan_id) == 0


def test_writes_need_a_running_scan(store: ScanStore, new_scan: NewScan) -> None:
    with pytest.raises(StorageError, match="no scan"):
        store.write_batch(10**9, batch(0, 1), low_water_mark=1, endpoints_done=1)
    scan_id = new_scan()
    store.finish_scan(scan_id, "interrupted")
    with pytest.raises(StorageError, match="interrupted, not running"):
        store.write_batch(scan_id, batch(0, 1), low_water_mark=1, endpoints_done=1)
    assert _count(store, scan_id) == 0  # the refused batch left nothing behind
    # resume makes it writable again, and keeps the mark
    resumed = store.resume_scan(scan_id)
    assert resumed.state is ScanState.RUNNING and resumed.finished_at is None
    store.write_batch(scan_id, batch(0, 1), low_water_mark=1, endpoints_done=1)
    store.finish_scan(scan_id, ScanState.FINISHED)
    with pytest.raises(StorageError, match="finished"):
        store.resume_scan(scan_id)
    with pytest.raises(StorageError, match="no scan"):
        store.resume_scan(10**9)


def test_finish_scan_records_the_end(store: ScanStore, new_scan: NewScan) -> None:
    scan_id = new_scan()
    store.write_batch(scan_id, batch(0, 12), low_water_mark=12, endpoints_done=12)
    store.finish_scan(scan_id, "finished")
    record = store.scan(scan_id)
    assert record is not None
    assert record.state is ScanState.FINISHED
    assert record.finished_at is not None and record.finished_at >= record.started_at
    assert record.dicom_found == 6
    with pytest.raises(StorageError, match="not a scan state"):
        store.finish_scan(scan_id, "done")
    with pytest.raises(StorageError, match="resume_scan"):
        store.finish_scan(scan_id, "running")
    with pytest.raises(StorageError, match="no scan"):
        store.finish_scan(10**9, "failed")


def test_resume_queries_see_what_is_stored_from_the_mark_on(store: ScanStore, new_scan: NewScan) -> None:
    # Given a scan killed with positions 0..99 stored, plus 120, 130 finished out of order
    scan_id = new_scan()
    stored = [*batch(0, 100), (120, synthetic_result(120)), (130, synthetic_result(130))]
    store.write_batch(scan_id, stored, low_water_mark=100, endpoints_done=102)
    mark = store.scan(scan_id).low_water_mark  # type: ignore[union-attr]
    # Then a resume from the mark skips exactly 120 and 130
    assert store.observed_positions(scan_id, mark) == {120, 130}
    assert len(store.observed_positions(scan_id, 0)) == 102
    assert store.observed_positions(scan_id, 131) == set()


def test_unresolved_hostnames_are_kept_apart(store: ScanStore, new_scan: NewScan) -> None:
    """A name that did not resolve has ip "": its name stands in for the address."""
    scan_id = new_scan()
    unresolved = [
        EndpointResult(
            ip="",
            port=104,
            hostname=name,
            status=Status.NAME_ERROR,
            error="hostname did not resolve",
            elapsed_ms=0.0,
            timestamp="2026-01-01T00:00:00.000Z",
        )
        for name in ("pacs-a.invalid", "pacs-b.invalid")
    ]
    store.write_batch(scan_id, list(enumerate(unresolved)), low_water_mark=2, endpoints_done=2)
    assert list(store.observations(scan_id)) == unresolved
    assert store.observed_positions(scan_id, 0) == {0, 1}


def test_nul_characters_from_a_hostile_peer_are_stored(store: ScanStore, new_scan: NewScan) -> None:
    """PostgreSQL text refuses NUL: the query column is cleaned, the JSON keeps it exactly."""
    scan_id = new_scan()
    hostile = synthetic_result(0)
    assert hostile.dicom is not None
    hostile = hostile.model_copy(
        update={
            "error": "odd\x00error",
            "dicom": hostile.dicom.model_copy(
                update={"product": "Evil\x00PACS", "implementation_version_name": "X\x00Y"}
            ),
        }
    )
    store.write_batch(scan_id, [(0, hostile)], low_water_mark=1, endpoints_done=1)
    assert list(store.observations(scan_id)) == [hostile]
    with store.engine.connect() as connection:
        product = connection.execute(
            sa.select(observations.c.product).where(observations.c.scan_id == scan_id)
        ).scalar_one()
    assert product == "Evil\ufffdPACS"


def test_observations_are_ordered_by_ip_text_then_port(store: ScanStore, new_scan: NewScan) -> None:
    scan_id = new_scan()
    results = [
        EndpointResult(
            ip=ip, port=port, status=Status.SUCCESS, elapsed_ms=1.0, timestamp="t", dicom=DicomBlock()
        )
        for ip, port in [
            ("127.0.0.2", 104),
            ("127.0.0.10", 11112),
            ("127.0.0.10", 104),
            ("::1", 4242),
            ("127.0.0.1", 4242),
        ]
    ]
    store.write_batch(scan_id, list(enumerate(results)), low_water_mark=5, endpoints_done=5)
    got = [(r.ip, r.port) for r in store.observations(scan_id)]
    assert got == sorted((r.ip, r.port) for r in results)


def test_observations_stream_in_bounded_memory(store: ScanStore, new_scan: NewScan) -> None:
    # Given 10,000 stored observations
    scan_id = new_scan()
    for start in range(0, 10_000, 2_000):
        store.write_batch(
            scan_id, batch(start, 2_000), low_water_mark=start + 2_000, endpoints_done=start + 2_000
        )
    gc.collect()
    # When they are read back 200 at a time, holding none of them
    tracemalloc.start()
    try:
        count = 0
        previous: tuple[str, int] | None = None
        for result in store.observations(scan_id, batch=200):
            key = (result.ip, result.port)
            assert previous is None or previous < key
            previous = key
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then all come back, in order, and the peak is a few batches' worth: holding the 10,000
    # results takes about 48 MB, streaming them about 1.2 MB (SQLite) or 0.5 MB (PostgreSQL)
    assert count == 10_000
    assert peak < 4 * 1024 * 1024, f"peak {peak:,} bytes"


def test_an_abandoned_stream_frees_its_connection(store: ScanStore, new_scan: NewScan) -> None:
    scan_id = new_scan()
    store.write_batch(scan_id, batch(0, 50), low_water_mark=50, endpoints_done=50)
    for _ in range(20):  # more than the pool holds
        stream = store.observations(scan_id, batch=10)
        next(stream)
        stream.close()
    assert len(list(store.observations(scan_id))) == 50
