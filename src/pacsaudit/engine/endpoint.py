"""One endpoint, one job: connect, run the DICOM probe, and always come back with a result.

The deadline is total: connect, every association attempt and every read share it, so a peer
that drips a byte a second ends exactly at the deadline with what was learnt before it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from pacsaudit.discovery import ConnectFailedError
from pacsaudit.model import DicomBlock, EndpointResult, Status
from pacsaudit.probes.dicom_association import DicomProbeContext, probe_dicom, status_of_exception

__all__ = ["is_open", "scan_endpoint", "utc_now"]

_CLOSED = frozenset({Status.CONNECTION_REFUSED, Status.CONNECTION_TIMEOUT, Status.UNREACHABLE})


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def scan_endpoint(
    ip: str, port: int, ctx: DicomProbeContext, hostname: str | None = None
) -> EndpointResult:
    """Probe (ip, port); the status says what happened, `dicom` what was learnt (None if closed)."""
    started = time.monotonic()
    timestamp = utc_now()
    block = DicomBlock()
    status = Status.SUCCESS
    error: str | None = None
    connected = False
    settings = ctx.settings
    deadline = asyncio.timeout(settings.deadline + (settings.census_time if settings.census else 0.0))
    try:
        async with deadline, ctx.connector.open(ip, port, ctx.transport) as conn:
            connected = True
            await probe_dicom(conn, ip, port, ctx, block)
    except ConnectFailedError as exc:
        status, error = exc.status, str(exc)
    except TimeoutError as exc:
        if deadline.expired():
            status = Status.IO_TIMEOUT if connected else Status.CONNECTION_TIMEOUT
            error = "endpoint deadline reached"
        else:
            status, error = status_of_exception(exc)
    except Exception as exc:  # errors are data: nothing a peer does may end the scan
        status, error = status_of_exception(exc)
    if connected:
        status, error = _settle(block, status, error)
    return EndpointResult(
        ip=ip,
        port=port,
        hostname=hostname,
        status=status,
        error=error,
        elapsed_ms=round((time.monotonic() - started) * 1000, 3),
        timestamp=timestamp,
        dicom=block if connected else None,
    )


def _settle(block: DicomBlock, status: Status, error: str | None) -> tuple[Status, str | None]:
    """The endpoint's status once connected: `success` whenever the peer spoke DICOM at all.

    What went wrong after that (the deadline in the AE search, say) stays in the block.
    """
    if status is not Status.SUCCESS:
        if block.detected:
            block.error = block.error or error
            if block.status is Status.SUCCESS and status is Status.IO_TIMEOUT:
                block.status = Status.IO_TIMEOUT
        else:
            block.status, block.error = status, error
    return (Status.SUCCESS, None) if block.detected else (status, error)


def is_open(result: EndpointResult) -> bool:
    """Whether the port was open (worth emitting without `--all`)."""
    return result.status not in _CLOSED and result.status is not Status.NAME_ERROR
