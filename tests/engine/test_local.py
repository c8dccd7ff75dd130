"""The local engine: bounded in flight whatever the stream size; IPv6; hostnames and exclusions."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import pytest

from pacsaudit.config import ScanSettings
from pacsaudit.engine import run_scan
from pacsaudit.lab.simulator import PacsPolicy, start_simulated_pacs
from pacsaudit.model import EndpointResult
from pacsaudit.targets import ExclusionList, TargetStream


def test_in_flight_endpoints_stay_within_concurrency() -> None:
    """4096 closed loopback endpoints, concurrency 16: never more than 16 jobs alive at once."""

    async def go() -> tuple[int, int]:
        peak = 0

        def watch(_totals: object) -> None:
            nonlocal peak
            peak = max(peak, len(asyncio.all_tasks()))

        settings = ScanSettings(ports=[9], concurrency=16, rate=0, timeout=1, emit_all=False)
        results: list[EndpointResult] = []
        totals = await run_scan(TargetStream(["127.81.0.0/20"], [9]), settings, results.append, on_done=watch)
        assert results == [], "closed ports are not emitted without --all"
        return peak, totals.endpoints

    peak, done = asyncio.run(go())
    assert done == 4096
    assert peak <= 16 + 1  # the jobs, plus the scan's own task


def test_ipv6_loopback_is_scanned() -> None:
    async def go() -> EndpointResult:
        pacs = await start_simulated_pacs(PacsPolicy(), host="::1")
        try:
            settings = ScanSettings(ports=[pacs.port], rate=0, timeout=2)
            results: list[EndpointResult] = []
            await run_scan(TargetStream(["::1"], [pacs.port]), settings, results.append)
        finally:
            await pacs.close()
        (result,) = results
        return result

    result = asyncio.run(go())
    assert result.ip == "::1"
    assert result.dicom is not None and result.dicom.open_to_any_ae is True


def test_hostname_is_resolved_then_checked_against_exclusions() -> None:
    async def go(exclusions: ExclusionList) -> tuple[list[EndpointResult], int]:
        pacs = await start_simulated_pacs(PacsPolicy())
        try:
            settings = ScanSettings(ports=[pacs.port], rate=0, timeout=2)
            results: list[EndpointResult] = []
            totals = await run_scan(
                TargetStream(["localhost"], [pacs.port]), settings, results.append, exclusions=exclusions
            )
            seen = pacs.associations
        finally:
            await pacs.close()
        return results, seen + 1000 * totals.excluded

    results, seen = asyncio.run(go(ExclusionList()))
    assert [(r.hostname, r.dicom is not None and r.dicom.detected) for r in results] == [("localhost", True)]
    results, seen = asyncio.run(go(ExclusionList.from_specs(["127.0.0.0/8", "::1"])))
    assert results == [] and seen == 1000, "resolved into an excluded range: counted, never contacted"


def test_a_sweep_leaves_no_reference_cycles_behind() -> None:
    """Each accepted endpoint's protocol, transport and association go by reference counting:
    the scan's garbage collections are rare (engine/runner.py), so cycles would pile up."""
    import gc

    from pacsaudit.engine.runner import run
    from pacsaudit.lab.fleet import many_members, start_fleet_in_thread

    with start_fleet_in_thread(many_members(PacsPolicy(), 30, base="127.93.0.1")):
        settings = ScanSettings(ports=[11112], rate=0, timeout=5, deadline=5, ae_dictionary=False)
        results: list[EndpointResult] = []
        gc.collect()
        gc.disable()
        try:
            run(run_scan(TargetStream(["127.93.0.1-30"], [11112]), settings, results.append))
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            kinds = {type(o).__name__ for o in gc.garbage}
            left = sorted(kinds & {"FirstContact", "Association", "TCPTransport"})
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    assert [r.dicom.echo for r in results if r.dicom] == [True] * 30
    assert left == []


def _unanswered_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A loopback port whose accept queue is full: the kernel drops further SYNs, so a connect
    to it never completes (a filtered port, without leaving loopback)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    queued = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(listener.getsockname())
        queued.append(filler)
    return listener, queued


@pytest.mark.parametrize(
    ("timeout", "deadline", "error"),
    [(0.4, 5.0, "TCP connect timed out"), (3.0, 0.4, "endpoint deadline reached")],
)
def test_a_connect_that_never_completes_ends_at_the_sooner_limit(
    timeout: float, deadline: float, error: str
) -> None:
    listener, queued = _unanswered_listener()
    port = listener.getsockname()[1]
    settings = ScanSettings(ports=[port], rate=0, timeout=timeout, deadline=deadline, emit_all=True)
    try:
        results: list[EndpointResult] = []
        started = time.monotonic()
        asyncio.run(run_scan(TargetStream(["127.0.0.1"], [port]), settings, results.append))
        took = time.monotonic() - started
    finally:
        for sock in (listener, *queued):
            sock.close()
    [result] = results
    assert (result.status, result.error, result.dicom) == ("connection-timeout", error, None)
    assert 0.4 <= took < 0.4 + 2.0  # the sooner limit, not the later one (5 s or 3 s)


def test_a_result_that_could_not_be_written_out_is_still_handed_to_the_store() -> None:
    """A full disk or a closed pipe ends the scan, but the result already made is recorded:
    otherwise the resume mark would pass an endpoint whose result exists nowhere."""
    finished: list[tuple[int, EndpointResult | None]] = []

    class Recording:
        def started(self, position: int) -> None:
            pass

        def finished(self, position: int, result: EndpointResult | None) -> None:
            finished.append((position, result))

    def full_disk(_result: EndpointResult) -> None:
        raise OSError(28, "No space left on device")

    async def go() -> None:
        pacs = await start_simulated_pacs(PacsPolicy())
        try:
            settings = ScanSettings(ports=[pacs.port], rate=0, timeout=2, ae_dictionary=False)
            await run_scan(TargetStream([pacs.host], [pacs.port]), settings, full_disk, recorder=Recording())
        finally:
            await pacs.close()

    with pytest.raises(OSError, match="No space left"):
        asyncio.run(go())
    [(position, result)] = finished
    assert position == 0 and result is not None and result.status == "success"
