"""One endpoint, one job: the probes its port calls for, and always one result back.

The deadline is total: connect, every association attempt, every read, and every protocol
tried on the port (plain DICOM, then TLS or HTTP; HTTPS, then HTTP) share it, so a peer that
drips a byte a second ends at the deadline with what was learnt before it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Coroutine
from typing import Any

from pacsaudit.config import DICOM_TLS_PORTS, ScanSettings
from pacsaudit.discovery import CONNECT_TIMED_OUT, ConnectFailedError, connect_failure
from pacsaudit.model import DicomBlock, EndpointResult, HttpBlock, Status
from pacsaudit.probes.dicom_association import (
    DicomProbeContext,
    after_first_contact,
    random_ae_titles,
    settle_dicom,
    status_of_exception,
)
from pacsaudit.timers import Expiry

__all__ = ["is_open", "scan_endpoint", "scan_plain_dicom", "utc_now"]

_CLOSED = frozenset({Status.CONNECTION_REFUSED, Status.CONNECTION_TIMEOUT, Status.UNREACHABLE})
_HTTPS_PORTS = frozenset({443, 2443, 4443, 8443, 9443})
"""Web ports where HTTPS is tried first."""


_SECOND: list[tuple[int, str]] = [(-1, "")]


def utc_now() -> str:
    """ISO 8601 UTC to the millisecond; the text of the current second is made once per second."""
    now = time.time()
    second = int(now)
    cached, prefix = _SECOND[0]
    if second != cached:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _SECOND[0] = (second, prefix)
    return f"{prefix}.{int((now - second) * 1000):03d}Z"


def scan_endpoint(
    ip: str, port: int, ctx: DicomProbeContext, hostname: str | None = None
) -> Coroutine[Any, Any, EndpointResult]:
    """Probe (ip, port) with what its port suggests, and always come back with one record.

    Web ports (`settings.web_ports`) get the HTTP(S) probe; IANA's DICOM-over-TLS port gets
    TLS first, then plain DICOM if no TLS answered; every other port gets plain DICOM first,
    then TLS if the answer looked like a TLS server's, or HTTP if it was HTTP.

    A plain function returning the coroutine to await, so the sweep's common case (a DICOM
    port) is that one coroutine, `scan_plain_dicom`, with no wrapper around it.
    """
    if port in ctx.settings.web_ports or port in DICOM_TLS_PORTS:
        return _scan_not_plain(ip, port, ctx, hostname)
    return scan_plain_dicom(ip, port, ctx, hostname, follow_up=True)


async def _scan_not_plain(ip: str, port: int, ctx: DicomProbeContext, hostname: str | None) -> EndpointResult:
    started = time.monotonic()
    timestamp = utc_now()
    if port in ctx.settings.web_ports:
        result = await _scan_web(ip, port, ctx, hostname, timestamp, started)
    else:
        result = await _scan_tls_first(ip, port, ctx, hostname, timestamp, started)
    result.elapsed_ms = round((time.monotonic() - started) * 1000, 3)
    return result


async def _follow_up(
    ip: str, port: int, ctx: DicomProbeContext, hostname: str | None, result: EndpointResult
) -> EndpointResult:
    """After plain DICOM on a DICOM port failed short of a closed port: TLS if the answer looked
    like a TLS server's, HTTP if it was HTTP, within what is left of the endpoint's time."""
    started = time.monotonic() - result.elapsed_ms / 1000  # its turn, not its place in a queue
    # Loaded on first use: the TLS and HTTP stacks (cryptography, httpx) are a third of the
    # start-up time, and most scans never need them.
    from pacsaudit.probes.dicom_tls import answered_like_tls, merge_tls_result, probe_dicom_over_tls

    rest = _remaining(ctx, started)
    if rest is not None and answered_like_tls(result):
        result = merge_tls_result(result, await probe_dicom_over_tls(ip, port, rest, hostname))
    elif rest is not None and _answered_like_http(result):
        # The endpoint stays `not-dicom` (that is what its DICOM port did); the block says
        # what the web server behind it is.
        result.http = await _probe_http(ip, port, rest, hostname, tls=False)
    result.elapsed_ms = round((time.monotonic() - started) * 1000, 3)
    return result


async def scan_plain_dicom(
    ip: str,
    port: int,
    ctx: DicomProbeContext,
    hostname: str | None = None,
    timestamp: str | None = None,
    *,
    follow_up: bool = False,
) -> EndpointResult:
    """Plain DICOM: the stranger test on the discovery connection, then whatever it leads to;
    with `follow_up`, TLS or HTTP too when the answer suggests them (`scan_endpoint`'s DICOM port).

    The sweep's hottest path, written flat: the connection is opened, played and closed here
    rather than through `Connector.open` and `probe_dicom`, two coroutines fewer per endpoint,
    with the same limits, statuses and errors.
    """
    timestamp = timestamp or utc_now()
    # The stranger's request is sent by `FirstContact` as soon as it connects: counted now,
    # as `probe_dicom` counts it before the answer (the block is dropped if no connection).
    block = DicomBlock(ae_attempts=1)
    status = Status.SUCCESS
    error: str | None = None
    settings = ctx.settings
    connector = ctx.connector
    if connector.wraps_tls:
        raise ValueError("scan_plain_dicom connects in the clear: give it a plain connector")
    loop = asyncio.get_running_loop()
    stranger = random_ae_titles()
    factory = ctx.first_contact(stranger, loop)
    # The deadline starts when the endpoint's turn comes: waiting behind `--rate` or the
    # per-host cap says nothing about the peer, and a queued endpoint must not "time out"
    # without a packet sent.
    if not connector.try_admit(ip):
        await connector.admit(ip)
    started = time.monotonic()  # elapsed, like the deadline, from the endpoint's turn on
    # One limit for the whole endpoint: first the connect's (the sooner of the connect timeout
    # and the deadline), then, once connected, the deadline's.
    now = loop.time()
    connect_by, deadline = now + connector.timeout, now + settings.endpoint_budget
    limit = Expiry(loop, min(connect_by, deadline))
    transport: asyncio.BaseTransport | None = None
    try:
        try:
            transport, conn = await loop.create_connection(factory, ip, port)
        except OSError as exc:
            raise connect_failure(exc) from None
        limit.postpone(deadline)
        await conn.finished
        rest = after_first_contact(conn, ip, port, ctx, block, stranger)
        if rest is not None:
            await rest
    except ConnectFailedError as exc:
        status, error = exc.status, str(exc)
    except asyncio.CancelledError as exc:
        if not limit.caused(exc):
            raise
        connected = transport is not None
        status = Status.IO_TIMEOUT if connected else Status.CONNECTION_TIMEOUT
        error = CONNECT_TIMED_OUT if not connected and connect_by < deadline else "endpoint deadline reached"
    except Exception as exc:  # errors are data: nothing a peer does may end the scan
        status, error = status_of_exception(exc)
    finally:
        limit.disarm()
        if transport is not None:
            transport.close()
        connector.hosts.release(ip)
    if transport is not None:
        status, error = settle_dicom(block, status, error)
    result = EndpointResult(
        ip=ip,
        port=port,
        hostname=hostname,
        status=status,
        error=error,
        elapsed_ms=round((time.monotonic() - started) * 1000, 3),
        timestamp=timestamp,
        dicom=block if transport is not None else None,
    )
    if follow_up and status is not Status.SUCCESS and status not in _CLOSED:
        return await _follow_up(ip, port, ctx, hostname, result)
    return result


def _remaining(ctx: DicomProbeContext, started: float) -> DicomProbeContext | None:
    """The context for the next protocol tried on an endpoint: what is left of its time budget.

    None when too little is left to try anything. With `--census` the rest is split between
    finding the service and counting, as the whole budget was.
    """
    settings = ctx.settings
    total = settings.endpoint_budget
    left = total - (time.monotonic() - started)
    if left < min(settings.timeout, 0.5):
        return None
    update: dict[str, float] = {"deadline": min(settings.deadline, left)}
    if settings.census:
        share = settings.deadline / total
        update = {"deadline": left * share, "census_time": left * (1 - share)}
    narrowed: ScanSettings = settings.model_copy(update=update)
    return dataclasses.replace(ctx, settings=narrowed)


async def _scan_tls_first(
    ip: str, port: int, ctx: DicomProbeContext, hostname: str | None, timestamp: str, started: float
) -> EndpointResult:
    """DICOM inside TLS; when nothing on the port speaks TLS, plain DICOM as on any other port."""
    from pacsaudit.probes.dicom_tls import merge_tls_result, probe_dicom_over_tls

    over_tls = await probe_dicom_over_tls(ip, port, ctx, hostname)
    spoke_tls = over_tls.tls.detected or over_tls.tls.client_certificate_required
    rest = None if spoke_tls or over_tls.status in _CLOSED else _remaining(ctx, started)
    if rest is None:
        return EndpointResult(
            ip=ip,
            port=port,
            hostname=hostname,
            status=over_tls.status,
            error=over_tls.error,
            elapsed_ms=0.0,
            timestamp=timestamp,
            dicom=over_tls.dicom,
            tls=over_tls.tls,
        )
    return merge_tls_result(await scan_plain_dicom(ip, port, rest, hostname, timestamp), over_tls)


async def _scan_web(
    ip: str, port: int, ctx: DicomProbeContext, hostname: str | None, timestamp: str, started: float
) -> EndpointResult:
    """HTTPS first on the usual TLS web ports, HTTP first elsewhere; the other scheme if no server
    answered the first; the TLS facts of an HTTPS endpoint from one more handshake."""
    from pacsaudit.probes.tls import probe_tls

    https_first = port in _HTTPS_PORTS
    http = await _probe_http(ip, port, ctx, hostname, tls=https_first)
    if not http.detected and http.status not in _CLOSED and (rest := _remaining(ctx, started)):
        other = await _probe_http(ip, port, rest, hostname, tls=not https_first)
        if other.detected:
            http = other
    tls = None
    if http.detected and http.scheme == "https" and (rest := _remaining(ctx, started)):
        tls = await probe_tls(
            ip, port, connector=rest.connector, settings=rest.settings, server_hostname=hostname
        )
    return EndpointResult(
        ip=ip,
        port=port,
        hostname=hostname,
        status=Status.SUCCESS if http.detected else http.status,
        error=None if http.detected else http.error,
        elapsed_ms=0.0,
        timestamp=timestamp,
        http=http,
        tls=tls,
    )


async def _probe_http(
    ip: str, port: int, ctx: DicomProbeContext, hostname: str | None, *, tls: bool
) -> HttpBlock:
    """The HTTP probe under the scan's politeness: one rate slot and one host slot for its requests."""
    from pacsaudit.probes.http import probe_http

    connector = ctx.connector
    await connector.hosts.acquire(ip)
    try:
        if connector.rate.interval:
            await connector.rate.wait()
        return await probe_http(ip, port, tls=tls, settings=ctx.settings, hostname=hostname)
    finally:
        connector.hosts.release(ip)


def _answered_like_http(result: EndpointResult) -> bool:
    """A DICOM port whose peer answered our A-ASSOCIATE-RQ with HTTP (a web front end on 104...)."""
    return result.status is Status.NOT_DICOM and "HTTP" in (result.error or "")


def is_open(result: EndpointResult) -> bool:
    """Whether the port was open (worth emitting without `--all`)."""
    return result.status not in _CLOSED and result.status is not Status.NAME_ERROR
