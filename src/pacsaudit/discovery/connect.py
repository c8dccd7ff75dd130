"""TCP connect (and TLS handshake) under the scan's limits; a failure is a status, not an exception."""

from __future__ import annotations

import asyncio
import copy
import errno
import ssl as _ssl
from collections.abc import Callable
from typing import Generic, TypeVar, cast

from pacsaudit.discovery.limits import HostLimiter, RateLimiter
from pacsaudit.model import Status
from pacsaudit.timers import Expiry

__all__ = [
    "CONNECT_TIMED_OUT",
    "ConnectFailedError",
    "Connector",
    "TlsHandshakeError",
    "connect_failure",
    "status_of_lost_handshake",
    "status_of_os_error",
]


P = TypeVar("P", bound=asyncio.BaseProtocol)

CONNECT_TIMED_OUT = "TCP connect timed out"


class ConnectFailedError(Exception):
    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status


class TlsHandshakeError(ConnectFailedError):
    """TCP connected, but the TLS handshake failed; `cause` is what it raised (for `tls_failure`)."""

    def __init__(self, status: Status, message: str, cause: BaseException) -> None:
        super().__init__(status, message)
        self.cause = cause


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


def connect_failure(exc: OSError) -> ConnectFailedError:
    """What a TCP connect that raised `exc` is reported as (the kernel's ETIMEDOUT included)."""
    if isinstance(exc, TimeoutError):
        return ConnectFailedError(Status.CONNECTION_TIMEOUT, CONNECT_TIMED_OUT)
    return ConnectFailedError(status_of_os_error(exc), exc.strerror or str(exc))


def status_of_lost_handshake(exc: OSError) -> Status:
    """A socket error during a TLS handshake; the loop reports a plain FIN as a reset without errno."""
    if isinstance(exc, ConnectionError) and exc.errno is None:
        return Status.CONNECTION_CLOSED
    return status_of_os_error(exc)


class Connector:
    """Opens connections for probes: rate-limited, per-host-capped, bounded in time.

    The probe brings its own asyncio protocol (`protocol_factory`): DICOM's PDU reader, an
    HTTP client's, a TLS wrapper; the connector only decides when and whether to connect.
    """

    def __init__(self, *, timeout: float, rate: float, per_host: int) -> None:
        self.timeout = timeout
        self.rate = RateLimiter(rate)
        self.hosts = HostLimiter(per_host)
        self._tls: tuple[_ssl.SSLContext, str | None] | None = None
        """Set by `over_tls`: every connection wrapped in TLS with this context and SNI."""

    @property
    def wraps_tls(self) -> bool:
        """Whether every connection is wrapped in TLS (a connector made by `over_tls`)."""
        return self._tls is not None

    def try_admit(self, ip: str) -> bool:
        """`admit` when nothing has to wait (a free host slot, no rate limit): no coroutine."""
        return not self.rate.interval and self.hosts.try_acquire(ip)

    async def admit(self, ip: str) -> None:
        """Wait for what one connection to `ip` needs first: a host slot, then a rate slot.

        `open` does this itself; a caller whose time limit should start only once its turn has
        come (a queue behind `--rate` or the per-host cap is not the peer's slowness) admits
        first, connects itself, and gives the host slot back (`hosts.release`) when done.
        """
        if not self.hosts.try_acquire(ip):
            await self.hosts.acquire(ip)
        if self.rate.interval:
            try:
                await self.rate.wait()
            except BaseException:
                self.hosts.release(ip)
                raise

    def open(
        self,
        ip: str,
        port: int,
        protocol_factory: Callable[[], P],
        ssl: _ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> _Opening[P]:
        """`async with connector.open(...) as protocol:` the connected protocol, closed on exit.

        With `ssl`, the protocol is connected only once a TLS handshake (SNI `server_hostname`,
        none if `None`) has completed, inside the same host cap and rate, each phase bounded by
        `timeout`; its transport then answers `get_extra_info("ssl_object")`.
        Raises `ConnectFailedError` with the status when there is no connection, its subclass
        `TlsHandshakeError` when TCP connected but the handshake failed.
        """
        if self._tls is not None:
            context, name = self._tls
            ssl, server_hostname = ssl or context, server_hostname or name
        if ssl is None:
            return _Opening(self, ip, port, protocol_factory)
        return _TlsOpening(self, ip, port, protocol_factory, ssl, server_hostname)

    def over_tls(self, context: _ssl.SSLContext, server_hostname: str | None = None) -> Connector:
        """A connector sharing this one's limits whose every connection is wrapped in TLS.

        Lets a probe that opens its own follow-up connections (the AE-title search) run inside
        TLS unchanged.
        """
        wrapped = copy.copy(self)  # the same timeout, rate and host limits
        wrapped._tls = (context, server_hostname)
        return wrapped


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
        if not connector.try_admit(self._ip):
            await connector.admit(self._ip)
        try:
            transport, protocol = await self._connect(asyncio.get_running_loop(), connector.timeout)
        except BaseException:
            connector.hosts.release(self._ip)
            raise
        self._transport = transport
        return protocol

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, timeout: float
    ) -> tuple[asyncio.BaseTransport, P]:
        expiry = Expiry(loop, loop.time() + timeout)
        try:
            connected = await loop.create_connection(self._factory, self._ip, self._port)
        except BaseException as exc:
            if expiry.caused(exc):
                raise ConnectFailedError(Status.CONNECTION_TIMEOUT, CONNECT_TIMED_OUT) from None
            if isinstance(exc, OSError):
                raise connect_failure(exc) from None
            raise
        expiry.disarm()
        return connected

    async def __aexit__(self, *exc_info: object) -> None:
        if self._transport is not None:
            self._transport.close()
        self._connector.hosts.release(self._ip)


class _TlsOpening(_Opening[P]):
    """One connection wrapped in TLS: TCP connect, then the handshake, each bounded by the timeout.

    TCP is connected first and upgraded after, so a stalled handshake (`io-timeout`: something
    listens) is told apart from a connect that never completes.
    """

    __slots__ = ("_context", "_server_hostname")

    def __init__(
        self,
        connector: Connector,
        ip: str,
        port: int,
        factory: Callable[[], P],
        context: _ssl.SSLContext,
        server_hostname: str | None,
    ) -> None:
        super().__init__(connector, ip, port, factory)
        self._context = context
        self._server_hostname = server_hostname

    async def __aexit__(self, *exc_info: object) -> None:
        # Abort, not close: a graceful close waits (up to 30 s) for the peer's close_notify, a
        # wait a hostile peer can stretch; the probe is done with the session either way.
        if self._transport is not None:
            cast(asyncio.Transport, self._transport).abort()  # uvloop's: alike, not a subclass
        self._connector.hosts.release(self._ip)

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, timeout: float
    ) -> tuple[asyncio.BaseTransport, P]:
        """TCP first (the loop owns the socket from the start), then TLS on top with `start_tls`.

        Handing the loop a socket of our own (`create_connection(sock=...)`) left uvloop holding
        a reference to it when a handshake failed: the descriptor outlived the attempt.
        """
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_connection(asyncio.Protocol, self._ip, self._port)
        except TimeoutError:
            raise ConnectFailedError(Status.CONNECTION_TIMEOUT, CONNECT_TIMED_OUT) from None
        except OSError as exc:
            raise ConnectFailedError(status_of_os_error(exc), exc.strerror or str(exc)) from None
        protocol = self._factory()
        try:
            try:
                async with asyncio.timeout(timeout):
                    secure = await loop.start_tls(
                        transport,
                        protocol,
                        self._context,
                        server_hostname=self._server_hostname or "",
                        ssl_handshake_timeout=2 * timeout,  # the bound above is the one that acts
                    )
            except TimeoutError as exc:
                raise TlsHandshakeError(
                    Status.IO_TIMEOUT, "TLS handshake not finished within the timeout", exc
                ) from None
            except _ssl.SSLError as exc:
                raise TlsHandshakeError(
                    Status.PROTOCOL_ERROR, f"TLS handshake failed: {exc.reason or type(exc).__name__}", exc
                ) from None
            except OSError as exc:
                status = status_of_lost_handshake(exc)
                raise TlsHandshakeError(
                    status, f"TLS handshake failed: {exc.strerror or type(exc).__name__}", exc
                ) from None
            if secure is None:  # the loop's contract allows it, though neither loop does it
                raise TlsHandshakeError(Status.CONNECTION_CLOSED, "TLS session closed at once", EOFError())
        except BaseException:
            transport.abort()
            raise
        protocol.connection_made(secure)  # start_tls leaves that call to us
        return secure, protocol
