"""TCP connect with the scan's limits, and the failure turned into a status, not an exception."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable
from typing import Generic, TypeVar

from pacsaudit.discovery.limits import HostLimiter, RateLimiter
from pacsaudit.model import Status

__all__ = ["ConnectFailedError", "Connector", "status_of_os_error"]


P = TypeVar("P", bound=asyncio.BaseProtocol)


class ConnectFailedError(Exception):
    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status


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
    """Opens connections for probes: rate-limited, per-host-capped, bounded in time.

    The probe brings its own asyncio protocol (`protocol_factory`): DICOM's PDU reader, an
    HTTP client's, a TLS wrapper; the connector only decides when and whether to connect.
    """

    def __init__(self, *, timeout: float, rate: float, per_host: int) -> None:
        self.timeout = timeout
        self.rate = RateLimiter(rate)
        self.hosts = HostLimiter(per_host)

    def open(self, ip: str, port: int, protocol_factory: Callable[[], P]) -> _Opening[P]:
        """`async with connector.open(...) as protocol:` the connected protocol, closed on exit.

        Raises `ConnectFailedError` with the status when there is no connection.
        """
        return _Opening(self, ip, port, protocol_factory)


class _Opening(Generic[P]):
    """The async context manager of one connection (a class: the scan's hottest path)."""

    __slots__ = ("_connector", "_factory", "_ip", "_port", "_transport")

    def __init__(self, connector: Connector, ip: str, port: int, factory: Callable[[], P]) -> None:
        self._connector = connector
        self._ip = ip
        self._port = port
        self._factory = factory
        self._transport: asyncio.BaseTransport | None = None

    async def __aenter__(self) -> P:
        connector = self._connector
        await connector.hosts.acquire(self._ip)
        try:
            if connector.rate.interval:
                await connector.rate.wait()
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(connector.timeout):
                    transport, protocol = await loop.create_connection(self._factory, self._ip, self._port)
            except TimeoutError:
                raise ConnectFailedError(Status.CONNECTION_TIMEOUT, "TCP connect timed out") from None
            except OSError as exc:
                raise ConnectFailedError(status_of_os_error(exc), exc.strerror or str(exc)) from None
        except BaseException:
            connector.hosts.release(self._ip)
            raise
        self._transport = transport
        return protocol

    async def __aexit__(self, *exc_info: object) -> None:
        if self._transport is not None:
            self._transport.close()
        self._connector.hosts.release(self._ip)
