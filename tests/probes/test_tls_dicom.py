"""DICOM over TLS: the lab's simulated PACS served inside TLS, and the plain/TLS crossings.

The simulator runs behind Python's `ssl` with a certificate made for the test; servers that
demand a client certificate are blocking OpenSSL servers (they send the alert, as real ones do).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from pacsaudit.config import ScanSettings
from pacsaudit.discovery import Connector
from pacsaudit.engine import scan_endpoint, scan_plain_dicom
from pacsaudit.engine.runner import run
from pacsaudit.lab.hostile import HostileKind, start_hostile
from pacsaudit.lab.simulator import PacsPolicy, SimulatedPacs, start_simulated_pacs
from pacsaudit.model import EndpointResult, Status
from pacsaudit.probes import DicomProbeContext
from pacsaudit.probes.dicom_tls import (
    TLS_PORTS,
    DicomOverTls,
    answered_like_tls,
    merge_tls_result,
    probe_dicom_over_tls,
)
from probes.test_tls_certificates import TestCertificate, make_certificate, server_context
from probes.test_tls_probe import tls_server

TIMEOUT = 1.0
SLACK = 0.75


def _context(**overrides: object) -> DicomProbeContext:
    options: dict[str, object] = {"timeout": TIMEOUT, "deadline": 5.0, "rate": 0.0, "ae_pause": 0.0}
    settings = ScanSettings(**(options | overrides))
    return DicomProbeContext.create(settings, Connector(timeout=settings.timeout, rate=0, per_host=4))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> TestCertificate:
    return make_certificate(tmp_path_factory.mktemp("dicom-tls"), common_name="simulated-pacs.test")


async def _over_tls(
    policy: PacsPolicy, cert: TestCertificate, **overrides: object
) -> tuple[DicomOverTls, SimulatedPacs]:
    async with await start_simulated_pacs(policy, tls=server_context(cert)) as pacs:
        return await probe_dicom_over_tls(pacs.host, pacs.port, _context(**overrides)), pacs


@pytest.mark.parametrize("uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_open_archive_inside_tls_fills_both_blocks(certificate: TestCertificate, uvloop: bool) -> None:
    (tls, dicom, status, error), pacs = run(_over_tls(PacsPolicy(), certificate), use_uvloop=uvloop)
    assert (status, error) == (Status.SUCCESS, None)
    assert tls.detected and tls.status is Status.SUCCESS
    assert tls.version == "TLSv1.3"
    assert tls.certificate is not None and tls.certificate.subject == "CN=simulated-pacs.test"
    assert tls.certificate.self_signed is True
    assert tls.client_certificate_required is False
    assert dicom is not None and dicom.detected
    assert dicom.association == "accepted" and dicom.open_to_any_ae is True
    assert dicom.echo is True
    assert dicom.implementation_version_name == "OFFIS_DCMTK_367"
    assert pacs.associations == 1 and pacs.echoes == 1  # the simulator saw it all, through TLS


def test_ae_title_search_runs_inside_tls_too(certificate: TestCertificate) -> None:
    """Every follow-up association opens its own connection: each must be TLS, or the server would
    never see its A-ASSOCIATE-RQ."""
    policy = PacsPolicy(called_aets=frozenset({"ARCHIVE"}))
    (tls, dicom, status, _), pacs = asyncio.run(_over_tls(policy, certificate, called_ae=["ARCHIVE"]))
    assert status is Status.SUCCESS and tls.detected
    assert dicom is not None
    assert dicom.open_to_any_ae is False
    assert dicom.accepted_called_ae == "ARCHIVE" and dicom.called_ae_check is True
    assert dicom.ae_attempts == 2
    assert pacs.associations == 2  # both requests arrived, so both connections spoke TLS


def test_plain_dicom_tried_on_a_tls_port_gives_way_to_tls(certificate: TestCertificate) -> None:
    async def go() -> tuple[EndpointResult, DicomOverTls]:
        async with await start_simulated_pacs(PacsPolicy(), tls=server_context(certificate)) as pacs:
            plain = await scan_plain_dicom(pacs.host, pacs.port, _context())
            return plain, await probe_dicom_over_tls(pacs.host, pacs.port, _context())

    plain, over_tls = asyncio.run(go())
    # The TLS server hangs up on an A-ASSOCIATE-RQ: no DICOM, no error in DICOM's name.
    assert plain.status in (Status.CONNECTION_CLOSED, Status.CONNECTION_RESET, Status.NOT_DICOM), plain
    assert plain.dicom is not None and not plain.dicom.detected
    assert answered_like_tls(plain)
    merged = merge_tls_result(plain, over_tls)
    assert merged.status is Status.SUCCESS and merged.error is None
    assert merged.dicom is not None and merged.dicom.open_to_any_ae is True
    assert merged.tls is not None and merged.tls.detected
    assert (merged.ip, merged.port) == (plain.ip, plain.port)


def test_tls_tried_on_a_plain_dicom_port_leaves_the_endpoint_a_success() -> None:
    async def go() -> tuple[EndpointResult, DicomOverTls]:
        async with await start_simulated_pacs(PacsPolicy()) as pacs:
            over_tls = await probe_dicom_over_tls(pacs.host, pacs.port, _context())
            return await scan_endpoint(pacs.host, pacs.port, _context()), over_tls

    plain, over_tls = asyncio.run(go())
    assert over_tls.dicom is None and not over_tls.tls.detected
    assert over_tls.status is Status.PROTOCOL_ERROR
    assert over_tls.tls.error is not None and "not a TLS answer" in over_tls.tls.error
    assert not answered_like_tls(plain)
    merged = merge_tls_result(plain, over_tls)
    assert merged.status is Status.SUCCESS and merged.dicom == plain.dicom
    assert merged.tls is not None and merged.tls.status is Status.PROTOCOL_ERROR  # a fact, not the verdict


@pytest.mark.parametrize("versions", [None, ("TLSv1_2", "TLSv1_2")], ids=["tls13", "tls12"])
def test_client_certificate_required_is_reported_and_dicom_says_nothing(
    certificate: TestCertificate, versions: tuple[str, str] | None
) -> None:
    context = server_context(certificate, tls_versions=versions, client_certificate="required")
    with tls_server(context) as port:
        tls, dicom, status, error = asyncio.run(probe_dicom_over_tls("127.0.0.1", port, _context()))
    assert tls.client_certificate_required is True and tls.detected
    assert dicom is None  # no association was possible: nothing said about AE titles or services
    assert (status, error) == (Status.SUCCESS, None)


def test_stalled_handshake_is_bounded() -> None:
    async def go() -> tuple[DicomOverTls, float]:
        server = await start_hostile(HostileKind.TARPIT)
        try:
            started = time.monotonic()
            return await probe_dicom_over_tls(
                server.host, server.port, _context()
            ), time.monotonic() - started
        finally:
            await server.close()

    (tls, dicom, status, _), took = asyncio.run(go())
    assert status is Status.IO_TIMEOUT and tls.status is Status.IO_TIMEOUT
    assert dicom is None
    assert took < TIMEOUT + SLACK


def test_https_inside_tls_is_not_dicom(tmp_path: Path) -> None:
    """TLS completes, then the service inside answers HTTP: `not-dicom`, with the TLS facts kept."""
    cert = make_certificate(tmp_path)

    async def go() -> DicomOverTls:
        class Http(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def data_received(self, data: bytes) -> None:
                assert isinstance(self.transport, asyncio.Transport)
                self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                self.transport.close()

        server = await asyncio.get_running_loop().create_server(
            Http, "127.0.0.1", 0, ssl=server_context(cert)
        )
        try:
            return await probe_dicom_over_tls("127.0.0.1", server.sockets[0].getsockname()[1], _context())
        finally:
            server.close()
            await server.wait_closed()

    tls, dicom, status, error = asyncio.run(go())
    assert tls.detected and tls.certificate is not None
    assert status is Status.NOT_DICOM and error is not None and "HTTP" in error
    assert dicom is not None and not dicom.detected and dicom.status is Status.NOT_DICOM


def test_dicom_tls_port_is_ianas() -> None:
    assert 2762 in TLS_PORTS and 2761 not in TLS_PORTS  # 2761 is DICOM ISCL, another protocol


def test_a_port_speaking_dicom_both_ways_keeps_the_plain_answer_and_the_tls_facts(
    certificate: TestCertificate,
) -> None:
    """A server that accepts DICOM in the clear and inside TLS: the clear one is the exposure."""

    async def go() -> tuple[EndpointResult, DicomOverTls]:
        async with (
            await start_simulated_pacs(PacsPolicy()) as plain_pacs,
            await start_simulated_pacs(PacsPolicy(), tls=server_context(certificate)) as tls_pacs,
        ):
            plain = await scan_endpoint(plain_pacs.host, plain_pacs.port, _context())
            return plain, await probe_dicom_over_tls(tls_pacs.host, tls_pacs.port, _context())

    plain, over_tls = asyncio.run(go())
    merged = merge_tls_result(plain, over_tls)
    assert merged.status is Status.SUCCESS and merged.dicom is plain.dicom
    assert merged.tls is over_tls.tls and merged.tls.detected
