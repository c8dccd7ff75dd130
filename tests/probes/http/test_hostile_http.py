"""Hostile HTTP peers (pacsaudit.lab.hostile_http) over real loopback sockets: each ends with a
clear status within its bound, and reads stay under their byte caps."""

from __future__ import annotations

import asyncio
import time

import pytest

from pacsaudit.config import ScanSettings
from pacsaudit.lab.hostile_http import HostileHttpKind, start_hostile_http
from pacsaudit.model import HttpBlock, Status
from pacsaudit.probes.http import probe_http
from pacsaudit.probes.http.client import JSON_BYTES, PAGE_BYTES

TIMEOUT = 0.5
DEADLINE = 3.0
CENSUS_TIME = 3.0
SLACK = 1.0  # scheduling on a loaded 2-core CI machine


async def _probe(kind: HostileHttpKind) -> tuple[HttpBlock, float]:
    server = await start_hostile_http(kind)
    settings = ScanSettings(
        timeout=TIMEOUT, deadline=DEADLINE, census=True, census_time=CENSUS_TIME, query_pause=0.0
    )
    try:
        started = time.monotonic()
        block = await probe_http(server.host, server.port, tls=False, settings=settings)
        return block, time.monotonic() - started
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("kind", "status", "detected", "bound", "words"),
    [
        (HostileHttpKind.SLOW_HEADERS, Status.IO_TIMEOUT, False, 2 * TIMEOUT, "no complete HTTP answer"),
        (HostileHttpKind.REDIRECT_LOOP, Status.PROTOCOL_ERROR, True, 0.5, "redirect loop"),
        (HostileHttpKind.HUGE_HEADERS, Status.PROTOCOL_ERROR, False, 0.5, "headers over the size limit"),
        (HostileHttpKind.GARBAGE_STATUS, Status.PROTOCOL_ERROR, False, 0.5, "malformed HTTP status line"),
        (HostileHttpKind.ENDLESS_BODY, Status.SUCCESS, True, DEADLINE, ""),
    ],
)
def test_hostile_http_peer_gets_a_clear_status_in_time(
    kind: HostileHttpKind, status: Status, detected: bool, bound: float, words: str
) -> None:
    block, elapsed = asyncio.run(_probe(kind))
    assert block.status is status
    assert block.detected is detected
    assert words in (block.error or "")
    assert elapsed < bound + SLACK
    assert block.services == [] and block.counts is None


def test_a_body_dripped_after_the_headers_is_still_an_answer() -> None:
    # Given a server that sends its status, headers and a page's head at once, then drips the rest
    block, elapsed = asyncio.run(_probe(HostileHttpKind.SLOW_BODY))
    # Then it is detected and described from what came, within the deadline (not an io-timeout)
    assert block.status is Status.SUCCESS and block.detected
    assert block.status_code == 200 and block.server_header == "slowpacs"
    assert "deadline" in (block.error or "")  # every path drips: detection ends at the deadline
    assert elapsed < DEADLINE + SLACK


def test_endless_body_is_read_only_up_to_the_cap_per_request() -> None:
    block, _ = asyncio.run(_probe(HostileHttpKind.ENDLESS_BODY))
    assert block.status_code == 200
    # the socket may deliver a little past the cap in its last chunk, never a whole extra page
    assert block.bytes_read <= block.requests * 2 * PAGE_BYTES


def test_json_bomb_ends_the_census_at_the_byte_cap() -> None:
    block, elapsed = asyncio.run(_probe(HostileHttpKind.JSON_BOMB))
    assert block.status is Status.SUCCESS and block.dicomweb_root == "/dicom-web"
    assert block.counts is not None and not block.counts.complete
    assert "cap" in (block.counts.incomplete_reason or "")
    assert block.counts.queries == 1
    assert block.bytes_read < block.requests * PAGE_BYTES + 2 * JSON_BYTES
    assert elapsed < DEADLINE + CENSUS_TIME + SLACK


def test_a_closed_port_is_connection_refused() -> None:
    async def go() -> HttpBlock:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await probe_http("127.0.0.1", port, tls=False, settings=ScanSettings(timeout=TIMEOUT))

    block = asyncio.run(go())
    assert block.status is Status.CONNECTION_REFUSED and not block.detected
    assert block.requests == 1


def test_https_to_a_plain_http_port_is_a_tls_failure_not_a_crash() -> None:
    async def answer_400(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)  # a ClientHello, to a plain HTTP server
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    async def go() -> HttpBlock:
        server = await asyncio.start_server(answer_400, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await probe_http("127.0.0.1", port, tls=True, settings=ScanSettings(timeout=TIMEOUT))
        finally:
            server.close()
            await server.wait_closed()

    block = asyncio.run(go())
    assert block.status is Status.PROTOCOL_ERROR and "TLS handshake failed" in (block.error or "")
    assert block.tls_verified is False and not block.detected
