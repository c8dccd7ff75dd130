"""TCP connect with the scan's limits, and the failure turned into a status, not an exception."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from pacsaudit.discovery.limits import HostLimiter, RateLimiter
from pacsaudit.model import Status

__all__ = ["ConnectFailedError", "Connection", "Connector", "status_of_os_error"]

_READ_BUFFER = 256 * 1024


class ConnectFailedError(Exception):
    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


def status_of_os_error(exc: OSError) -> Status:
    """The status vocabulary for a socket error, during connect or after."""
    if isinstance(exc, ConnectionRefusedError):
        return Status.CONNECTION_REFUSED
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return Status.CONNECTION_RESET
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
        return Status.UNREACHABLE
    if exc.errno == errno.ETIMEDOUT:
        return Status.CONNECTION_TIMEOUT
    return Status.UNKNOWN_ERROR


class Connector:
    """Opens connections for probes: rate-limited, per-host-capped, bounded in time."""

    def __init__(self, *, timeout: float, rate: float, per_host: int) -> None:
        self.timeout = timeout
        self._rate = RateLimiter(rate)
        self._hosts = HostLimiter(per_host)

    @asynccontextmanager
    async def open(self, ip: str, port: int) -> AsyncIterator[Connection]:
        """Yield an open connection; raise `ConnectFailedError` with the status if there is none."""
        async with self._hosts.slot(ip):
            await self._rate.wait()
            try:
                async with asyncio.timeout(self.timeout):
                    reader, writer = await asyncio.open_connection(ip, port, limit=_READ_BUFFER)
            except TimeoutError:
                raise ConnectFailedError(Status.CONNECTION_TIMEOUT, "TCP connect timed out") from None
            except OSError as exc:
                raise ConnectFailedError(status_of_os_error(exc), exc.strerror or str(exc)) from None
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                yield Connection(reader, writer)
            finally:
                writer.close()
