"""Misbehaving HTTP peers on loopback: what a web probe must survive within its bounds.

Each `HostileHttpKind` does exactly one thing wrong, on every path. The server reads the
request head (bounded), then misbehaves; every connection is one task that ends when the peer
leaves, after `HOLD_SECONDS`, or when the server closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from enum import StrEnum
from typing import Final

from pacsaudit.lab._net import IDLE_TIMEOUT, require_loopback

__all__ = [
    "DRIP_INTERVAL",
    "HOLD_SECONDS",
    "HUGE_HEADER_BYTES",
    "HostileHttpKind",
    "HostileHttpServer",
    "start_hostile_http",
]

HOLD_SECONDS: Final = 120.0
"""How long an endless answer goes on at most, should the peer never leave."""
DRIP_INTERVAL: Final = 0.2
"""Seconds between two bytes of a dripped status line and headers."""
HUGE_HEADER_BYTES: Final = 1024 * 1024
"""Size of the one header of `HUGE_HEADERS`."""
_MAX_REQUEST_HEAD = 16 * 1024
_CHUNK: Final = b"A" * 16384
_JSON_ITEM: Final = b'{"0020000D":{"vr":"UI","Value":["1.2.3"]}},'
_SLOW_PAGE_HEAD: Final = b"<html><head><title>PACS web viewer</title></head><body>"
_SLOW_PAGE_LENGTH: Final = 100_000


class HostileHttpKind(StrEnum):
    """One way of being a bad HTTP peer."""

    ENDLESS_BODY = "endless-body"
    """200 with no Content-Length, then body bytes until the peer leaves."""
    SLOW_HEADERS = "slow-headers"
    """The status line and headers one byte every `DRIP_INTERVAL` seconds, never finished."""
    SLOW_BODY = "slow-body"
    """200 with its headers and the head of a PACS landing page at once (`Server: slowpacs`, a long
    Content-Length), then the rest of the body one byte every `DRIP_INTERVAL` seconds, never finished."""
    REDIRECT_LOOP = "redirect-loop"
    """302 to another path of itself, forever (/a -> /b -> /a ...)."""
    HUGE_HEADERS = "huge-headers"
    """200 with one header of `HUGE_HEADER_BYTES` bytes."""
    GARBAGE_STATUS = "garbage-status"
    """An answer that is not HTTP at all: binary bytes where the status line should be."""
    JSON_BOMB = "json-bomb"
    """Under `/dicom-web/`: `application/dicom+json`, one endless array of studies, whatever `limit`
    says (404 elsewhere)."""

    @property
    def description(self) -> str:
        return (self.__doc__ or "").strip()


async def _read_head(reader: asyncio.StreamReader) -> str | None:
    """The request line of the peer's request, or ``None`` if it left or sent too much."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
        return None
    return head.split(b"\r\n", 1)[0].decode("latin-1")


async def _endless(writer: asyncio.StreamWriter, head: bytes, chunk: bytes, first: bytes = b"") -> None:
    writer.write(head + first)
    loop = asyncio.get_running_loop()
    stop = loop.time() + HOLD_SECONDS
    while loop.time() < stop:
        writer.write(chunk)
        await writer.drain()


async def _serve(kind: HostileHttpKind, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request_line = await _read_head(reader)
    if request_line is None:
        return
    if kind is HostileHttpKind.ENDLESS_BODY:
        await _endless(
            writer, b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n", _CHUNK
        )
    elif kind is HostileHttpKind.JSON_BOMB:
        if " /dicom-web/" not in request_line:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\nConnection: close\r\n\r\n"
        await _endless(writer, head, _JSON_ITEM * 256, first=b"[")
    elif kind is HostileHttpKind.SLOW_HEADERS:
        for byte in b"HTTP/1.1 200 OK\r\nServer: drip\r\n" + b"X-Drip: " + b"a" * 100_000:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(DRIP_INTERVAL)
    elif kind is HostileHttpKind.SLOW_BODY:
        writer.write(
            b"HTTP/1.1 200 OK\r\nServer: slowpacs\r\nContent-Type: text/html\r\n"
            + f"Content-Length: {_SLOW_PAGE_LENGTH}\r\n\r\n".encode()
            + _SLOW_PAGE_HEAD
        )
        await writer.drain()
        for _ in range(_SLOW_PAGE_LENGTH - len(_SLOW_PAGE_HEAD)):
            writer.write(b".")
            await writer.drain()
            await asyncio.sleep(DRIP_INTERVAL)
    elif kind is HostileHttpKind.REDIRECT_LOOP:
        parts = request_line.split(" ")
        path = parts[1] if len(parts) > 1 else "/"
        target = "/b" if path != "/b" else "/a"
        redirect = (
            f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        writer.write(redirect.encode())
        await writer.drain()
    elif kind is HostileHttpKind.HUGE_HEADERS:
        writer.write(
            b"HTTP/1.1 200 OK\r\nX-Huge: " + b"h" * HUGE_HEADER_BYTES + b"\r\nContent-Length: 0\r\n\r\n"
        )
        await writer.drain()
    elif kind is HostileHttpKind.GARBAGE_STATUS:
        writer.write(bytes(range(256)) * 4 + b"\r\n\r\n")
        await writer.drain()


class HostileHttpServer:
    """A running hostile HTTP server; `close()` stops it and every connection."""

    def __init__(self, kind: HostileHttpKind, server: asyncio.Server, host: str, port: int) -> None:
        self.kind = kind
        self.host = host
        self.port = port
        self._server = server
        self._tasks: set[asyncio.Task[None]] = set()

    def track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2.0)


async def start_hostile_http(
    kind: HostileHttpKind, host: str = "127.0.0.1", port: int = 0
) -> HostileHttpServer:
    """Listen on `host` (loopback only) and misbehave in the way `kind` says."""
    host = require_loopback(host)
    holder: list[HostileHttpServer] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None and holder:
            holder[0].track(task)
        try:
            await _serve(kind, reader, writer)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    server = await asyncio.start_server(handle, host, port, limit=_MAX_REQUEST_HEAD)
    bound = server.sockets[0].getsockname()
    hostile = HostileHttpServer(kind, server, host, int(bound[1]))
    holder.append(hostile)
    return hostile
