"""No loss, no duplicates: a writer killed with SIGKILL mid-scan, then resumed from the
low-water mark, ends with every result stored exactly once (both backends)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pacsaudit
from pacsaudit.storage import ScanState, ScanStore

from .crash_writer import emits
from .synthetic import synthetic_result

TOTAL = 3_000
TESTS = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("seed", [1, 2])
def test_kill_9_then_resume_loses_and_duplicates_nothing(url: str, seed: int) -> None:
    # Given a scan whose writer is killed with -9 once about a third of it is stored
    with ScanStore.open(url) as store:
        scan_id = store.create_scan(
            {"targets": ["127.0.0.0/20"]}, targets_estimated=TOTAL, tool_version="test"
        )
    source = Path(pacsaudit.__file__).resolve().parents[1]
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(source), str(TESTS)]))
    writer = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("crash_writer.py")),
            url,
            str(scan_id),
            str(TOTAL),
            str(seed),
        ],
        env=environment,
    )
    try:
        with ScanStore.open(url) as store:
            deadline = time.monotonic() + 60
            while (record := store.scan(scan_id)) is not None and record.endpoints_done < TOTAL // 3:
                assert writer.poll() is None, "the writer died on its own"
                assert time.monotonic() < deadline, "the writer made no progress"
                time.sleep(0.01)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    with ScanStore.open(url) as store:
        # When the scan is resumed from its low-water mark, skipping what is stored past it
        record = store.resume_scan(scan_id)
        assert record.state is ScanState.RUNNING
        mark = record.low_water_mark
        assert 0 < mark < TOTAL
        skip = store.observed_positions(scan_id, mark)
        redo = [p for p in range(mark, TOTAL) if p not in skip]
        results = [(p, synthetic_result(p)) for p in redo if emits(p)]
        for start in range(0, len(results), 500):
            store.write_batch(scan_id, results[start : start + 500], low_water_mark=None, endpoints_done=0)
        store.write_batch(scan_id, [], low_water_mark=TOTAL, endpoints_done=TOTAL)
        store.finish_scan(scan_id, "finished")
        # Then every emitted position is stored, once, and nothing else
        expected = {p for p in range(TOTAL) if emits(p)}
        assert store.observed_positions(scan_id, 0) == expected
        stored = list(store.observations(scan_id))
        assert len(stored) == len(expected)
        assert {(r.ip, r.port) for r in stored} == {(synthetic_result(p).ip, 104) for p in expected}
        final = store.scan(scan_id)
        assert final is not None
        assert final.low_water_mark == TOTAL
        assert final.dicom_found == sum(1 for p in expected if p % 4 in (0, 1))
