"""Run a stream of endpoints on this machine's event loop, in bounded memory.

The producer waits for room below the global concurrency before it pulls the next endpoint
from the lazy stream, so at most `concurrency` endpoints are in flight whatever the target count.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pacsaudit.assessment.attribution import Attributor
from pacsaudit.config import ScanSettings
from pacsaudit.discovery import Connector
from pacsaudit.engine.endpoint import is_open, scan_endpoint, utc_now
from pacsaudit.engine.recording import Recorder
from pacsaudit.model import EndpointResult, Status, assign
from pacsaudit.probes.dicom_association import DicomProbeContext
from pacsaudit.targets import Endpoint, ExclusionList

__all__ = ["ScanTotals", "run_scan"]


@dataclass
class ScanTotals:
    """Running totals for the progress bar and the closing summary."""

    endpoints: int = 0
    open: int = 0
    dicom: int = 0
    open_to_any_ae: int = 0
    web: int = 0
    """Endpoints where a PACS-related web service (Orthanc, DICOMweb, a viewer...) was recognised."""
    tls: int = 0
    """Endpoints where a TLS handshake completed (or wanted a client certificate)."""
    excluded: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_product: dict[str, int] = field(default_factory=dict)

    def add(self, result: EndpointResult) -> None:
        self.endpoints += 1
        self.by_status[result.status] = self.by_status.get(result.status, 0) + 1
        if is_open(result):
            self.open += 1
        d = result.dicom
        if d is not None and d.detected:
            self.dicom += 1
            self.open_to_any_ae += bool(d.open_to_any_ae)
            product = d.product or "unidentified"
            self.by_product[product] = self.by_product.get(product, 0) + 1
        h = result.http
        if h is not None and h.services:
            self.web += 1
            if h.product:
                product = f"{h.product} (web)"
                self.by_product[product] = self.by_product.get(product, 0) + 1
        t = result.tls
        if t is not None and (t.detected or t.client_certificate_required):
            self.tls += 1


async def _resolve(hostname: str) -> str | None:
    """The first address of a hostname, IPv4 preferred (as nmap does), without blocking the loop."""
    loop = asyncio.get_running_loop()
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            infos = await loop.getaddrinfo(hostname, None, family=family, type=socket.SOCK_STREAM)
        except OSError:
            continue
        if infos:
            return str(infos[0][4][0])
    return None


async def run_scan(
    endpoints: Iterable[Endpoint],
    settings: ScanSettings,
    emit: Callable[[EndpointResult], None],
    *,
    exclusions: ExclusionList | None = None,
    on_done: Callable[[ScanTotals], None] | None = None,
    recorder: Recorder | None = None,
) -> ScanTotals:
    """Scan every endpoint; `emit` gets open ones (all with `emit_all`); `on_done` sees each finish;
    `recorder` sees each stream position start and finish (with what was emitted), for storage."""
    connector = Connector(timeout=settings.timeout, rate=settings.rate, per_host=settings.per_host)
    ctx = DicomProbeContext.create(settings, connector)
    attributor = Attributor(settings.asn_database)  # one per process: it may hold the MMDB open
    totals = ScanTotals()
    concurrency = settings.concurrency
    loop = asyncio.get_running_loop()
    running: set[asyncio.Task[None]] = set()
    room: list[asyncio.Future[None]] = []
    """The producer's wait for a job to end, while `concurrency` are running."""

    def attributed(result: EndpointResult) -> EndpointResult:
        if result.attribution is None:
            assign(result, {"attribution": attributor.attribute(result.ip)})
        return result

    async def job(ep: Endpoint) -> None:
        emitted: EndpointResult | None = None
        try:
            ip = ep.ip
            if ip is None:
                assert ep.hostname is not None
                ip = await _resolve(ep.hostname)
                if ip is None:
                    result = EndpointResult(
                        ip="",
                        port=ep.port,
                        hostname=ep.hostname,
                        status=Status.NAME_ERROR,
                        error="hostname did not resolve",
                        elapsed_ms=0.0,
                        timestamp=utc_now(),
                    )
                    totals.add(result)
                    if settings.emit_all:
                        emitted = attributed(result)  # stored even if writing it out fails
                        emit(emitted)
                    return
                if exclusions is not None and exclusions.contains_ip(ip):
                    totals.excluded += 1
                    return
            result = await scan_endpoint(ip, ep.port, ctx, hostname=ep.hostname)
            totals.add(result)
            if settings.emit_all or is_open(result):
                emitted = attributed(result)  # stored even if writing it out fails
                emit(emitted)
        finally:
            if recorder is not None and not asyncio.current_task().cancelling():  # type: ignore[union-attr]
                recorder.finished(ep.position, emitted)
            if on_done is not None:
                on_done(totals)

    failures: list[BaseException] = []

    def settle(task: asyncio.Task[None]) -> None:
        running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            failures.append(task.exception())  # type: ignore[arg-type]
        if room and not room[0].done():
            room[0].set_result(None)

    try:
        for ep in endpoints:
            while len(running) >= concurrency and not failures:
                room[:] = [loop.create_future()]
                await room[0]
            if failures:
                break
            if recorder is not None:
                recorder.started(ep.position)
            task = loop.create_task(job(ep))
            running.add(task)
            task.add_done_callback(settle)
        while running:
            await asyncio.gather(*list(running), return_exceptions=True)
    finally:
        attributor.close()
    if failures:
        # Probes never raise (errors are data): this is our own failure (the output or the
        # history could not be written). Stop, and say so, rather than lose results quietly.
        raise failures[0]
    return totals
