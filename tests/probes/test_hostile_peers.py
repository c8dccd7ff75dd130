"""Hostile peers: each gets a precise status within its time bound, and none delays the others.

Every case runs the real scan path (connector, association probe, engine) against a real
socket served by `pacsaudit.lab.hostile`, with a short timeout and deadline.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from pacsaudit.config import ScanSettings
from pacsaudit.discovery import Connector
from pacsaudit.engine import scan_endpoint
from pacsaudit.engine.local import run_scan
from pacsaudit.lab.hostile import HostileKind, start_hostile
from pacsaudit.lab.simulator import PacsPolicy, start_simulated_pacs
from pacsaudit.model import EndpointResult, Status
from pacsaudit.probes import DicomProbeContext
from pacsaudit.targets import Endpoint

TIMEOUT = 1.0
DEADLINE = 2.5
SLACK = 0.75  # scheduling on a loaded 2-core CI machine


def _context(**overrides: float) -> DicomProbeContext:
    options = {"timeout": TIMEOUT, "deadline": DEADLINE, "rate": 0.0, "ae_pause": 0.0} | overrides
    settings = ScanSettings(**options)
    return DicomProbeContext.create(settings, Connector(timeout=settings.timeout, rate=0, per_host=4))


async def _scan_hostile(kind: HostileKind, **overrides: float) -> tuple[EndpointResult, float]:
    server = await start_hostile(kind)
    try:
        started = time.monotonic()
        result = await scan_endpoint(server.host, server.port, _context(**overrides))
        return result, time.monotonic() - started
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("kind", "status", "bound", "words"),
    [
        (HostileKind.TARPIT, Status.IO_TIMEOUT, TIMEOUT, "timeout"),
        (HostileKind.DRIP, Status.IO_TIMEOUT, TIMEOUT, "timeout"),
        (HostileKind.HUGE_LENGTH, Status.PROTOCOL_ERROR, 0.5, "announces 4294967280 bytes"),
        (HostileKind.TRUNCATED, Status.PROTOCOL_ERROR, 0.5, "truncated"),
        (HostileKind.UNKNOWN_PDU, Status.PROTOCOL_ERROR, 0.5, "PDU type 0x0a"),
        (HostileKind.BAD_AC, Status.PROTOCOL_ERROR, 0.5, "overruns"),
        (HostileKind.HTTP, Status.NOT_DICOM, 0.5, "HTTP"),
        (HostileKind.SSH_BANNER, Status.NOT_DICOM, 0.5, "SSH"),
        (HostileKind.GARBAGE, Status.NOT_DICOM, 0.5, "not DICOM"),
        (HostileKind.IMMEDIATE_CLOSE, Status.CONNECTION_CLOSED, 0.5, "closed"),
        (HostileKind.RST, Status.CONNECTION_RESET, 0.5, ""),
    ],
)
def test_hostile_peer_gets_a_precise_status_in_time(
    kind: HostileKind, status: Status, bound: float, words: str
) -> None:
    result, took = asyncio.run(_scan_hostile(kind))
    assert result.status is status, result.model_dump_json()
    assert result.dicom is not None and result.dicom.status is status
    assert result.dicom.detected is False
    assert words in (result.error or "")
    assert took < bound + SLACK
    assert result.elapsed_ms < (bound + SLACK) * 1000


def test_drip_is_cut_by_the_total_deadline_not_per_read() -> None:
    """One byte a second never trips a per-read timeout of 10 s; the 2.5 s deadline still holds."""
    result, took = asyncio.run(_scan_hostile(HostileKind.DRIP, timeout=10.0))
    assert result.status is Status.IO_TIMEOUT
    assert result.error == "endpoint deadline reached"
    assert DEADLINE - 0.1 <= took < DEADLINE + SLACK


def test_silent_after_accept_keeps_what_was_learnt() -> None:
    result, took = asyncio.run(_scan_hostile(HostileKind.SILENT_AFTER_AC))
    d = result.dicom
    assert result.status is Status.SUCCESS and d is not None
    assert (d.detected, d.association, d.open_to_any_ae) == (True, "accepted", True)
    assert d.echo is False
    assert d.status is Status.IO_TIMEOUT and d.error is not None and d.error.startswith("echo:")
    assert took < 2 * TIMEOUT + SLACK


def test_hostile_peers_do_not_delay_a_good_one() -> None:
    async def go() -> tuple[list[EndpointResult], float]:
        servers = [await start_hostile(kind) for kind in HostileKind]
        good = await start_simulated_pacs(PacsPolicy())
        ctx = _context()
        try:
            started = time.monotonic()
            results = await asyncio.gather(
                scan_endpoint(good.host, good.port, ctx),
                *(scan_endpoint(s.host, s.port, ctx) for s in servers),
            )
            return list(results), time.monotonic() - started
        finally:
            await good.close()
            for s in servers:
                await s.close()

    results, took = asyncio.run(go())
    good = results[0]
    assert good.dicom is not None and good.dicom.open_to_any_ae is True and good.dicom.echo is True
    assert good.elapsed_ms < 500
    assert len(results) == len(HostileKind) + 1
    assert took < DEADLINE + SLACK


async def _scan_all(endpoints: list[tuple[str, int]], **overrides: float) -> list[EndpointResult]:
    options = {"timeout": 0.5, "deadline": 0.5, "ae_pause": 0.0, "concurrency": 16} | overrides
    settings = ScanSettings(**options)
    results: list[EndpointResult] = []
    targets = [Endpoint(i, host, port, None) for i, (host, port) in enumerate(endpoints)]
    await run_scan(targets, settings, results.append)
    return sorted(results, key=lambda r: r.port)


def test_a_queue_behind_the_per_host_cap_does_not_count_against_the_deadline() -> None:
    """Four silent peers on one host, one connection at a time: each waits for the one before
    (about 0.5 s each), yet each is connected and then times out on its own silence, rather
    than being reported unreachable without a packet sent."""

    async def go() -> list[EndpointResult]:
        servers = [await start_hostile(HostileKind.TARPIT) for _ in range(4)]
        try:
            return await _scan_all([(s.host, s.port) for s in servers], per_host=1, rate=0.0)
        finally:
            for server in servers:
                await server.close()

    results = asyncio.run(go())
    assert [r.status for r in results] == [Status.IO_TIMEOUT] * 4
    assert all(r.elapsed_ms < 1000 * (0.5 + SLACK) for r in results)


def test_a_queue_behind_the_rate_does_not_count_against_the_deadline() -> None:
    """Six archives at 4 new connections a second: the last one's turn comes after about 1.25 s,
    well past its 0.5 s deadline, and it must still be scanned."""

    async def go() -> list[EndpointResult]:
        servers = [await start_simulated_pacs(PacsPolicy()) for _ in range(6)]
        try:
            return await _scan_all([(s.host, s.port) for s in servers], rate=4.0)
        finally:
            for server in servers:
                await server.close()

    results = asyncio.run(go())
    assert [r.status for r in results] == [Status.SUCCESS] * 6
    assert all(r.dicom is not None and r.dicom.open_to_any_ae for r in results)


def test_every_way_out_of_an_endpoint_gives_its_host_slot_back_once() -> None:
    """An answer, a refusal, a deadline and a cancellation from outside (Ctrl-C) each release
    the per-host slot exactly once and close the connection: the next endpoint is not queued."""

    async def go() -> list[tuple[str, int]]:
        ctx = _context(deadline=0.6)
        seen: list[tuple[str, int]] = []
        pacs = await start_simulated_pacs(PacsPolicy())
        tarpit = await start_hostile(HostileKind.TARPIT)
        try:
            for host, port in ((pacs.host, pacs.port), ("127.0.0.1", 9), (tarpit.host, tarpit.port)):
                result = await scan_endpoint(host, port, ctx)
                seen.append((result.status, len(ctx.connector.hosts)))
            stuck = asyncio.ensure_future(scan_endpoint(tarpit.host, tarpit.port, ctx))
            await asyncio.sleep(0.2)  # connected, waiting for an answer that never comes
            stuck.cancel()
            with pytest.raises(asyncio.CancelledError):
                await stuck
            seen.append(("cancelled", len(ctx.connector.hosts)))
            await asyncio.sleep(0.1)
            seen.append(("tarpit connections", tarpit.connections))
        finally:
            await pacs.close()
            await tarpit.close()
        return seen

    assert asyncio.run(go()) == [
        (Status.SUCCESS, 0),
        (Status.CONNECTION_REFUSED, 0),
        (Status.IO_TIMEOUT, 0),
        ("cancelled", 0),
        ("tarpit connections", 2),
    ]
