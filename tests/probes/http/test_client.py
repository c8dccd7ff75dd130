"""The bounded client: byte caps (compressed bombs included), redirects, budget, failures as data."""

from __future__ import annotations

import asyncio
import errno
import gzip
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pacsaudit.config import ScanSettings
from pacsaudit.model import Status
from pacsaudit.probes.http.client import (
    MAX_REDIRECTS,
    PAGE_BYTES,
    BoundedHttp,
    BudgetSpent,
    Fetched,
    failure_of,
)
from probes.test_tls_certificates import make_certificate, server_context


def _get(handler: httpx.MockTransport, path: str = "/", **kwargs: object) -> tuple[Fetched, BoundedHttp]:
    async def go() -> tuple[Fetched, BoundedHttp]:
        http = BoundedHttp(
            "127.0.0.1", 8042, tls=False, settings=ScanSettings(query_pause=0, timeout=1), transport=handler
        )
        try:
            return await http.get(path, budget=10, **kwargs), http  # type: ignore[arg-type]
        finally:
            await http.aclose()

    return asyncio.run(go())


def test_bodies_stop_at_the_cap() -> None:
    fetched, _ = _get(httpx.MockTransport(lambda r: httpx.Response(200, content=b"x" * (PAGE_BYTES * 3))))
    assert len(fetched.observed.body) == PAGE_BYTES and fetched.observed.truncated


def test_a_gzip_bomb_is_inflated_only_up_to_the_cap() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    assert len(bomb) < 100_000

    class RawStream(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            for start in range(0, len(bomb), 8192):
                yield bomb[start : start + 8192]

    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"content-encoding": "gzip"}, stream=RawStream())
    )
    fetched, http = _get(transport, max_bytes=1024)
    assert len(fetched.observed.body) == 1024 and fetched.observed.truncated
    assert http.bytes_read < len(bomb)


def test_same_origin_redirects_are_followed_a_few_times_only() -> None:
    seen: list[str] = []

    def loop(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(302, headers={"location": f"/hop{len(seen)}"})

    fetched, _ = _get(httpx.MockTransport(loop))
    assert len(seen) == MAX_REDIRECTS + 1
    assert fetched.redirect_error == f"more than {MAX_REDIRECTS} redirects"


def test_relative_redirect_reaches_the_page() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/":
            return httpx.Response(301, headers={"location": "app/explorer.html"})
        return httpx.Response(200, text=f"at {request.url.path}")

    fetched, _ = _get(httpx.MockTransport(handle))
    assert fetched.observed.status == 200 and fetched.observed.body == b"at /app/explorer.html"
    assert fetched.observed.path == "/" and fetched.redirects == 1


def test_login_redirects_and_other_origins_are_not_followed() -> None:
    login = httpx.MockTransport(lambda r: httpx.Response(302, headers={"location": "/login?next=/"}))
    fetched, http = _get(login)
    assert fetched.observed.status == 302 and http.requests == 1
    away = httpx.MockTransport(lambda r: httpx.Response(302, headers={"location": "https://127.0.0.1:8042/"}))
    fetched, http = _get(away)
    assert http.requests == 1 and fetched.redirect_error == "redirect to another origin not followed"


def test_budget() -> None:
    async def go() -> None:
        http = BoundedHttp(
            "127.0.0.1",
            80,
            tls=False,
            settings=ScanSettings(query_pause=0),
            transport=httpx.MockTransport(lambda r: httpx.Response(204)),
        )
        await http.get("/", budget=1)
        with pytest.raises(BudgetSpent):
            await http.get("/", budget=1)
        await http.aclose()

    asyncio.run(go())


def test_the_budget_is_checked_once_per_get_not_per_redirect_hop() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/dicom-web/studies":
            return httpx.Response(301, headers={"location": "/pacs/dicom-web/studies"})
        return httpx.Response(200, json=[])

    async def go() -> None:
        http = BoundedHttp(
            "127.0.0.1",
            80,
            tls=False,
            settings=ScanSettings(query_pause=0),
            transport=httpx.MockTransport(handle),
        )
        fetched = await http.get("/dicom-web/studies", budget=1)
        assert fetched.observed.status == 200 and fetched.redirects == 1 and http.requests == 2
        with pytest.raises(BudgetSpent):
            await http.get("/dicom-web/studies", budget=2)
        await http.aclose()

    asyncio.run(go())


def test_a_body_dripping_past_the_time_cap_keeps_the_status_headers_and_what_came() -> None:
    class Drip(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"<html><title>PACS</title>"
            await asyncio.sleep(30)
            yield b"never"

    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"server": "slowpacs"}, stream=Drip())
    )

    async def go() -> tuple[Fetched, float]:
        http = BoundedHttp(
            "127.0.0.1", 80, tls=False, settings=ScanSettings(timeout=0.3), transport=transport
        )
        started = time.monotonic()
        try:
            return await http.get("/", budget=10), time.monotonic() - started
        finally:
            await http.aclose()

    fetched, elapsed = asyncio.run(go())
    observed = fetched.observed
    assert observed.status == 200 and observed.headers["server"] == "slowpacs"
    assert observed.body == b"<html><title>PACS</title>"
    assert observed.timed_out and observed.truncated
    assert elapsed < 0.6 + 0.5


def test_https_reaches_an_old_front_end_as_the_tls_probe_does(tmp_path: Path) -> None:
    # Given an HTTPS server offering only a TLS 1.2 cipher outside OpenSSL's DEFAULT list (Camellia)
    certificate = make_certificate(tmp_path)
    context = server_context(certificate, tls_versions=("TLSv1_2", "TLSv1_2"))
    context.set_ciphers("CAMELLIA128-SHA256:@SECLEVEL=0")

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def go() -> Fetched:
        server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        http = BoundedHttp("127.0.0.1", port, tls=True, settings=ScanSettings(timeout=2.0))
        try:
            return await http.get("/", budget=1)
        finally:
            await http.aclose()
            server.close()
            await server.wait_closed()

    # Then the handshake succeeds (the TLS probe's context offers every cipher) and the page is read
    fetched = asyncio.run(go())
    assert fetched.observed.status == 200 and fetched.observed.body == b"ok"


def _caused(outer: Exception, inner: BaseException) -> Exception:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (
            _caused(httpx.ConnectError("x"), ConnectionRefusedError(errno.ECONNREFUSED, "r")),
            Status.CONNECTION_REFUSED,
        ),
        (_caused(httpx.ConnectError("x"), OSError(errno.EHOSTUNREACH, "u")), Status.UNREACHABLE),
        (_caused(httpx.ConnectError("x"), socket.gaierror(-2, "n")), Status.NAME_ERROR),
        (_caused(httpx.ConnectError("x"), ssl.SSLError(1, "wrong version")), Status.PROTOCOL_ERROR),
        (_caused(httpx.ReadError("x"), ConnectionResetError(errno.ECONNRESET, "r")), Status.CONNECTION_RESET),
        (httpx.ConnectTimeout("x"), Status.CONNECTION_TIMEOUT),
        (httpx.ReadTimeout("x"), Status.IO_TIMEOUT),
        (TimeoutError(), Status.IO_TIMEOUT),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            Status.CONNECTION_CLOSED,
        ),
        (httpx.RemoteProtocolError("illegal status line: bytearray(b'\\x00secret')"), Status.PROTOCOL_ERROR),
        (ValueError("anything else"), Status.UNKNOWN_ERROR),
    ],
)
def test_failures_are_a_status_and_our_own_words(exc: Exception, status: Status) -> None:
    failure = failure_of(exc)
    assert failure.status is status
    assert "secret" not in failure.message and "bytearray" not in failure.message
