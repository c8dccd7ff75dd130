"""Several processes, one scan: every endpoint's line exactly once and whole, however it travels."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacsaudit.config import ScanSettings
from pacsaudit.engine.workers import run_scan_processes
from pacsaudit.lab.fleet import ThreadedFleet, many_members, start_fleet_in_thread
from pacsaudit.lab.simulator import PacsPolicy
from pacsaudit.output.jsonl import JsonlWriter, WholeLines
from pacsaudit.targets import TargetStream

FLEET = 60
TARGETS = "127.94.0.1-60"


@pytest.fixture(scope="module")
def fleet() -> Iterator[ThreadedFleet]:
    with start_fleet_in_thread(many_members(PacsPolicy(), FLEET, base="127.94.0.1")) as running:
        yield running


def _settings() -> ScanSettings:
    return ScanSettings(ports=[11112], rate=0, timeout=5, deadline=5, ae_dictionary=False, workers=2)


def _records(lines: list[str]) -> dict[str, dict[str, object]]:
    records = [json.loads(line) for line in lines]
    by_ip = {record["ip"]: record for record in records}
    assert len(by_ip) == len(records), "an endpoint written twice"
    return by_ip


def test_workers_append_their_lines_to_the_output_file_themselves(
    fleet: ThreadedFleet, tmp_path: Path
) -> None:
    output = tmp_path / "results.jsonl"
    relayed: list[str] = []
    with JsonlWriter(output) as writer:
        totals = run_scan_processes(
            TargetStream([TARGETS], [11112]),
            _settings(),
            2,
            relayed.append,
            output_fd=writer.shared_descriptor(),
        )

    assert relayed == [], "with a shared file nothing goes through the coordinator"
    by_ip = _records(output.read_text().splitlines())
    assert set(by_ip) == {f"127.94.0.{i}" for i in range(1, FLEET + 1)}
    assert all(record["status"] == "success" for record in by_ip.values())
    assert totals.endpoints == totals.dicom == FLEET


def test_without_a_shared_file_the_coordinator_relays_every_line(fleet: ThreadedFleet) -> None:
    relayed: list[str] = []

    totals = run_scan_processes(TargetStream([TARGETS], [11112]), _settings(), 2, relayed.append)

    assert set(_records(relayed)) == {f"127.94.0.{i}" for i in range(1, FLEET + 1)}
    assert totals.endpoints == FLEET


def test_only_a_regular_file_is_shared_with_the_workers(tmp_path: Path) -> None:
    with JsonlWriter(tmp_path / "out.jsonl") as regular, JsonlWriter(os.devnull) as device:
        assert regular.shared_descriptor() is not None
        assert device.shared_descriptor() is None
    with JsonlWriter("-") as stdout:
        assert stdout.shared_descriptor() is None


def _append(path: str, tag: str, count: int) -> None:
    lines = WholeLines(os.open(path, os.O_WRONLY | os.O_APPEND), batch=3000)
    for index in range(count):
        lines.add(f"{tag}{index:06d}" + tag * (index % 700))
    lines.close()


def test_whole_line_batches_from_several_processes_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    path.touch()
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_append, args=(str(path), tag, 4000)) for tag in "abc"]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()

    lines = path.read_text().splitlines()
    assert len(lines) == 3 * 4000
    for line in lines:
        tag, index = line[0], int(line[1:7])
        assert line == f"{tag}{index:06d}" + tag * (index % 700)
    assert sorted(lines) == sorted(f"{t}{i:06d}" + t * (i % 700) for t in "abc" for i in range(4000))


def _fill_past_a_size_limit(path: str, report: multiprocessing.connection.Connection) -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the kernel then cuts the write short instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
    lines = WholeLines(os.open(path, os.O_WRONLY | os.O_APPEND), batch=1 << 20)
    for index in range(40):
        lines.add(f"{index:04d}" + "x" * 46)
    try:
        lines.flush()
    except OSError as exc:
        report.send(str(exc))
    else:
        report.send("written")


def test_a_short_write_to_the_shared_file_is_an_error_not_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    path.touch()
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    writer = context.Process(target=_fill_past_a_size_limit, args=(str(path), send))
    writer.start()
    writer.join()

    outcome = receive.recv()
    assert "short write to the shared output file (1000 of 2040 bytes)" in outcome
    assert path.stat().st_size == 1000  # what the kernel took; nothing appended after it
