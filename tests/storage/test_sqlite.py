"""What SQLite needs to be a scan store: WAL, and readers that never stop the writer."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from pacsaudit.storage import ScanStore

from .synthetic import batch


def test_wal_synchronous_normal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "scans.db"
    with ScanStore.open(f"sqlite:///{path}") as store, store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    # WAL is a property of the file: another program sees it too
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    with ScanStore.open(f"sqlite:///{tmp_path / 'scans.db'}") as store:
        try:
            with store.engine.begin() as connection:
                connection.exec_driver_sql(
                    "INSERT INTO observations (scan_id, endpoint_id, status, dicom_detected, result) "
                    "VALUES (999, 999, 'success', 0, '{}')"
                )
        except sa.exc.IntegrityError:
            pass
        else:
            raise AssertionError("an observation of no scan was accepted")


def test_a_migration_is_one_transaction(tmp_path: Path) -> None:
    """pysqlite would commit before each DDL statement; ours begins real transactions."""
    with ScanStore.open(f"sqlite:///{tmp_path / 'scans.db'}") as store, store.engine.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")
        connection.rollback()
        tables = sa.inspect(connection).get_table_names()
    assert "scratch" not in tables


def test_readers_run_while_a_writer_writes(tmp_path: Path) -> None:
    # Given a writer storing 40 batches of 250, one transaction each
    url = f"sqlite:///{tmp_path / 'scans.db'}"
    batches, size = 40, 250
    with ScanStore.open(url) as writer_store:
        scan_id = writer_store.create_scan({}, targets_estimated=batches * size, tool_version="test")
        errors: list[BaseException] = []
        seen: list[list[int]] = [[] for _ in range(3)]
        writing = threading.Event()
        writing.set()

        def write() -> None:
            try:
                for index in range(batches):
                    start = index * size
                    writer_store.write_batch(
                        scan_id, batch(start, size), low_water_mark=start + size, endpoints_done=start + size
                    )
            except BaseException as exc:
                errors.append(exc)
            finally:
                writing.clear()

        def read(slot: int) -> None:
            # each reader is another store (another connection pool), as another process would be
            try:
                with ScanStore.open(url) as reader:
                    while writing.is_set():
                        record = reader.scan(scan_id)
                        assert record is not None
                        # a snapshot: every observation it counts is covered by its mark
                        count = sum(1 for _ in reader.observations(scan_id, batch=500))
                        seen[slot].append(count)
                        time.sleep(0.001)
            except BaseException as exc:
                errors.append(exc)

        # When three readers stream the scan over and over meanwhile
        threads = [threading.Thread(target=read, args=(slot,)) for slot in range(3)]
        threads.append(threading.Thread(target=write))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        # Then nobody waited for a lock or failed, and every read saw whole batches only
        assert not errors, errors
        for counts in seen:
            assert counts == sorted(counts)
            assert all(count % size == 0 for count in counts)
        assert any(0 < count < batches * size for counts in seen for count in counts), "no read overlapped"
        assert sum(1 for _ in writer_store.observations(scan_id)) == batches * size


def test_a_long_read_does_not_block_the_writer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'scans.db'}"
    with ScanStore.open(url) as store:
        scan_id = store.create_scan({}, targets_estimated=None, tool_version="test")
        store.write_batch(scan_id, batch(0, 100), low_water_mark=100, endpoints_done=100)
        # Given a reader in the middle of a stream (a read transaction held open)
        stream = store.observations(scan_id, batch=10)
        first = next(stream)
        # When the writer commits more
        started = time.monotonic()
        store.write_batch(scan_id, batch(100, 100), low_water_mark=200, endpoints_done=200)
        assert time.monotonic() - started < 5
        # Then the reader keeps its snapshot, and a new read sees everything
        assert 1 + sum(1 for _ in stream) == 100
        assert first.ip == "127.0.0.0"
        assert sum(1 for _ in store.observations(scan_id)) == 200
