"""A chunk of endpoints as one synchronous call (the unit a distributed worker runs)."""

from __future__ import annotations

from pacsaudit.config import ScanSettings
from pacsaudit.engine import scan_chunk
from pacsaudit.lab.fleet import LabMember, start_fleet_in_thread
from pacsaudit.lab.simulator import PacsPolicy
from pacsaudit.targets import Endpoint


def test_a_chunk_runs_its_own_loop_and_gives_sorted_records_twice_alike() -> None:
    members = [
        LabMember(name=f"m{i}", description="", host=f"127.92.0.{i}", port=11112, behaviour=PacsPolicy(),
                  expected="", expected_status=None)
        for i in (3, 1, 2)
    ]  # fmt: skip
    chunk = [Endpoint(position=i, ip=m.host, port=m.port, hostname=None) for i, m in enumerate(members)]
    chunk.append(Endpoint(position=3, ip="127.92.0.9", port=11112, hostname=None))  # closed
    settings = ScanSettings(rate=0, timeout=2)
    with start_fleet_in_thread(members):
        first = scan_chunk(chunk, settings)
        second = scan_chunk(chunk, settings)
    assert [(r.ip, r.port) for r in first] == [(f"127.92.0.{i}", 11112) for i in (1, 2, 3)], (
        "closed not emitted"
    )
    assert all(r.dicom is not None and r.dicom.open_to_any_ae for r in first)
    assert [(r.ip, r.status) for r in second] == [(r.ip, r.status) for r in first], (
        "a rerun gives the same records"
    )
