"""Which protocols `scan_endpoint` tries on a port, and the one record that comes back.

Plain DICOM first on ordinary ports; TLS first on 2762 (IANA's DICOM over TLS); HTTP(S) on
web ports; and the crossings: a DICOM port that answers like a TLS server is retried inside
TLS, one that answers in HTTP gets the HTTP probe. Servers are the lab's simulator (plain and
inside TLS) and real Orthanc for HTTP.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from pacsaudit.config import ScanSettings
from pacsaudit.discovery import Connector
from pacsaudit.engine import scan_endpoint
from pacsaudit.engine.runner import run
from pacsaudit.lab.simulator import PacsPolicy, start_simulated_pacs
from pacsaudit.model import EndpointResult, Status
from pacsaudit.probes import DicomProbeContext
from probes.test_tls_certificates import TestCertificate, make_certificate, server_context

TLS_PORT = 2762


def _context(**overrides: object) -> DicomProbeContext:
    options: dict[str, object] = {"timeout": 2.0, "deadline": 8.0, "rate": 0.0, "ae_pause": 0.0}
    settings = ScanSettings(**(options | overrides))
    return DicomProbeContext.create(settings, Connector(timeout=settings.timeout, rate=0, per_host=4))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> TestCertificate:
    return make_certificate(tmp_path_factory.mktemp("endpoint-tls"), common_name="pacs.test")


def _free_loopback_for(port: int) -> str:
    """A loopback address where `port` is free (2762 is fixed by IANA; addresses vary instead)."""
    for last in range(2, 250):
        host = f"127.62.{last}.1"
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return host
    raise RuntimeError(f"no loopback address with port {port} free")


def test_a_tls_only_archive_on_an_ordinary_port_is_found_inside_tls(certificate: TestCertificate) -> None:
    # Given an accept-any archive that speaks only DICOM over TLS, on a port that is not 2762
    async def go() -> EndpointResult:
        async with await start_simulated_pacs(PacsPolicy(), tls=server_context(certificate)) as pacs:
            return await scan_endpoint(pacs.host, pacs.port, _context())

    result = run(go())
    # Then the plain attempt gives way to the TLS one: both blocks describe the archive
    assert result.status is Status.SUCCESS
    assert result.tls is not None and result.tls.detected
    assert result.tls.certificate is not None and result.tls.certificate.self_signed
    assert result.dicom is not None and result.dicom.open_to_any_ae is True
    assert result.dicom.echo is True
    assert result.http is None


def test_port_2762_is_tried_with_tls_first(certificate: TestCertificate) -> None:
    host = _free_loopback_for(TLS_PORT)

    async def go() -> EndpointResult:
        async with await start_simulated_pacs(
            PacsPolicy(), host, TLS_PORT, tls=server_context(certificate)
        ) as pacs:
            return await scan_endpoint(pacs.host, pacs.port, _context())

    result = run(go())
    assert result.status is Status.SUCCESS
    assert result.tls is not None and result.tls.detected and result.tls.version is not None
    assert result.dicom is not None and result.dicom.association == "accepted"
    assert result.dicom.ae_attempts == 1  # one association: no plain attempt went before it


def test_plain_dicom_on_2762_is_still_found_and_the_failed_tls_is_a_fact() -> None:
    host = _free_loopback_for(TLS_PORT)

    async def go() -> EndpointResult:
        async with await start_simulated_pacs(PacsPolicy(), host, TLS_PORT) as pacs:
            return await scan_endpoint(pacs.host, pacs.port, _context())

    result = run(go())
    assert result.status is Status.SUCCESS
    assert result.dicom is not None and result.dicom.open_to_any_ae is True
    assert result.tls is not None and not result.tls.detected
    assert result.tls.status is not Status.SUCCESS


def test_a_plain_archive_costs_no_tls_or_http_attempt() -> None:
    async def go() -> EndpointResult:
        async with await start_simulated_pacs(PacsPolicy()) as pacs:
            return await scan_endpoint(pacs.host, pacs.port, _context())

    result = run(go())
    assert result.status is Status.SUCCESS
    assert result.tls is None and result.http is None
    assert result.elapsed_ms > 0


def test_a_closed_web_port_is_closed() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        result = run(scan_endpoint("127.0.0.1", port, _context(web_ports=[port])))
    assert result.status is Status.CONNECTION_REFUSED
    assert result.dicom is None and result.http is not None and not result.http.detected


def test_the_deadline_is_total_across_the_protocols_tried() -> None:
    # Given a peer that answers the plain A-ASSOCIATE-RQ late with a TLS alert (so TLS is worth
    # a try), then stalls every later connection
    deadline = 2.0
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            if connections == 1:
                await asyncio.sleep(deadline * 0.7)
                writer.write(b"\x15\x03\x01\x00\x02\x02\x28")  # TLS alert: handshake failure
                await writer.drain()
            else:
                await asyncio.sleep(deadline * 3)
        finally:
            writer.close()

    async def go() -> tuple[EndpointResult, float]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            started = time.monotonic()
            result = await scan_endpoint("127.0.0.1", port, _context(timeout=deadline, deadline=deadline))
            return result, time.monotonic() - started

    result, elapsed = run(go())
    # Then the TLS attempt gets only what is left: the whole endpoint ends near the deadline
    assert connections == 2
    assert result.tls is not None and not result.tls.detected
    assert elapsed < deadline + 0.5, elapsed
