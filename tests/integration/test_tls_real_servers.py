"""DICOM over TLS against real Orthanc (Debian's 1.10, DCMTK's TLS layer underneath).

Two configurations, each with a certificate made for the run: Orthanc's default, which demands
a client certificate it trusts (`DicomTlsRemoteCertificateRequired: true`), and one that does
not. In the first, a stranger learns the TLS facts and that mutual TLS guards the port, and the
DICOM block must not pretend to know more; in the second, the association probe runs inside
TLS as it would in the clear.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import RunningServer, orthanc, orthanc_binary

from pacsaudit.config import ScanSettings
from pacsaudit.discovery import Connector
from pacsaudit.engine import scan_endpoint, scan_plain_dicom
from pacsaudit.engine.runner import run
from pacsaudit.model import EndpointResult, Status, TlsBlock
from pacsaudit.probes import DicomProbeContext
from pacsaudit.probes.dicom_tls import DicomOverTls, answered_like_tls, merge_tls_result, probe_dicom_over_tls
from pacsaudit.probes.tls import probe_tls
from probes.test_tls_certificates import TestCertificate, make_certificate
from scanning import missing_software

pytestmark = pytest.mark.integration

DCMTK_UID = "1.2.276.0.7230010.3.0.3.6.7"


def _settings() -> ScanSettings:
    return ScanSettings(timeout=3.0, deadline=15.0, rate=0, ae_pause=0.0)


def _context() -> DicomProbeContext:
    settings = _settings()
    return DicomProbeContext.create(settings, Connector(timeout=settings.timeout, rate=0, per_host=4))


def _tls(server: RunningServer) -> TlsBlock:
    settings = _settings()
    connector = Connector(timeout=settings.timeout, rate=0, per_host=4)
    return run(probe_tls(server.host, server.port, connector=connector, settings=settings))


def _dicom_over_tls(server: RunningServer) -> DicomOverTls:
    return run(probe_dicom_over_tls(server.host, server.port, _context()))


def _plain(server: RunningServer) -> EndpointResult:
    """Plain DICOM only, as the scan's first attempt on an ordinary port."""
    return run(scan_plain_dicom(server.host, server.port, _context()))


def _scanned(server: RunningServer) -> EndpointResult:
    """What `pacsaudit scan` reports for the port: plain DICOM, then TLS where that looked worth it."""
    return run(scan_endpoint(server.host, server.port, _context()))


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestCertificate, TestCertificate]:
    """Orthanc's certificate (CN=localhost, as its manual makes one) and a client's it trusts."""
    directory = tmp_path_factory.mktemp("orthanc-tls-certs")
    return (
        make_certificate(directory, common_name="localhost", stem="orthanc"),
        make_certificate(directory, common_name="pacsaudit-tests-client", stem="client"),
    )


def _trusted_client(client: TestCertificate) -> ssl.SSLContext:
    """The fixture's own client context for readiness: a certificate Orthanc trusts, no verification."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(client.cert_file, client.key_file)
    return context


def _orthanc_tls(
    tmp: Path, certificates: tuple[TestCertificate, TestCertificate], *, client_certificate_required: bool
) -> Iterator[RunningServer]:
    if orthanc_binary() is None:
        missing_software("Orthanc is not installed")
    server_cert, client_cert = certificates
    config: dict[str, Any] = {
        "DicomTlsEnabled": True,
        "DicomTlsCertificate": str(server_cert.cert_file),
        "DicomTlsPrivateKey": str(server_cert.key_file),
        # Orthanc 1.10 wants this file even when client certificates are not required.
        "DicomTlsTrustedCertificates": str(client_cert.cert_file),
        "DicomTlsRemoteCertificateRequired": client_certificate_required,
    }
    with orthanc(tmp, extra_config=config, ready_tls=_trusted_client(client_cert)) as server:
        yield server


@pytest.fixture(scope="module")
def orthanc_tls_mutual(
    tmp_path_factory: pytest.TempPathFactory, certificates: tuple[TestCertificate, TestCertificate]
) -> Iterator[RunningServer]:
    """Orthanc's DICOM port in TLS, client certificate required (Orthanc's default)."""
    yield from _orthanc_tls(
        tmp_path_factory.mktemp("orthanc-tls-mutual"), certificates, client_certificate_required=True
    )


@pytest.fixture(scope="module")
def orthanc_tls_open(
    tmp_path_factory: pytest.TempPathFactory, certificates: tuple[TestCertificate, TestCertificate]
) -> Iterator[RunningServer]:
    """Orthanc's DICOM port in TLS, no client certificate required: anyone may associate."""
    yield from _orthanc_tls(
        tmp_path_factory.mktemp("orthanc-tls-open"), certificates, client_certificate_required=False
    )


def _assert_orthanc_certificate(
    block: TlsBlock, certificates: tuple[TestCertificate, TestCertificate]
) -> None:
    assert block.certificate is not None
    c = block.certificate
    assert (c.subject, c.issuer, c.self_signed, c.expired) == ("CN=localhost", "CN=localhost", True, False)
    assert (c.key_type, c.key_bits, c.signature_algorithm) == ("RSA", 2048, "rsa-with-sha256")
    assert c.sha256 == hashlib.sha256(certificates[0].der).hexdigest()


# Client certificate required (Orthanc's default)


def test_mutual_tls_is_reported_by_the_tls_probe(
    orthanc_tls_mutual: RunningServer, certificates: tuple[TestCertificate, TestCertificate]
) -> None:
    block = _tls(orthanc_tls_mutual)
    assert block.status is Status.SUCCESS and block.detected
    # DCMTK 3.6.7 offers TLS 1.3: the client finishes, then hears the refusal.
    assert block.version == "TLSv1.3"
    assert block.client_certificate_requested is True
    assert block.client_certificate_required is True
    assert block.alert == "certificate_required"
    _assert_orthanc_certificate(block, certificates)  # seen before the refusal


def test_mutual_tls_leaves_the_dicom_block_silent(orthanc_tls_mutual: RunningServer) -> None:
    tls, dicom, status, error = _dicom_over_tls(orthanc_tls_mutual)
    assert tls.client_certificate_required is True and tls.detected
    assert dicom is None, "no association was possible: nothing may be said about titles or services"
    assert (status, error) == (Status.SUCCESS, None)


def test_plain_dicom_on_the_tls_port_then_tls(orthanc_tls_mutual: RunningServer) -> None:
    """The scan's plain attempt fails without a DICOM word; the TLS attempt says why."""
    plain = _plain(orthanc_tls_mutual)
    assert plain.status is Status.CONNECTION_RESET, plain  # DCMTK resets on a plain A-ASSOCIATE-RQ
    assert plain.dicom is not None and not plain.dicom.detected
    assert answered_like_tls(plain)
    merged = merge_tls_result(plain, _dicom_over_tls(orthanc_tls_mutual))
    assert merged.status is Status.SUCCESS
    assert merged.dicom is None
    assert merged.tls is not None and merged.tls.client_certificate_required is True
    # and the scan does both by itself, on an ordinary port number
    scanned = _scanned(orthanc_tls_mutual)
    assert (scanned.status, scanned.dicom) == (Status.SUCCESS, None)
    assert scanned.tls is not None and scanned.tls.client_certificate_required is True


# No client certificate required


def test_association_facts_inside_tls(
    orthanc_tls_open: RunningServer, certificates: tuple[TestCertificate, TestCertificate]
) -> None:
    tls, dicom, status, error = _dicom_over_tls(orthanc_tls_open)
    assert (status, error) == (Status.SUCCESS, None)
    assert tls.detected and tls.version == "TLSv1.3"
    # Orthanc 1.10 still asks for a certificate (DCMTK's --verify-peer-cert), but lets us in without.
    assert (tls.client_certificate_requested, tls.client_certificate_required) == (True, False)
    _assert_orthanc_certificate(tls, certificates)
    assert dicom is not None and dicom.detected
    assert (dicom.association, dicom.open_to_any_ae) == ("accepted", True)
    assert (dicom.called_ae_check, dicom.calling_ae_check) == (False, False)
    assert (dicom.implementation_class_uid, dicom.implementation_version_name) == (
        DCMTK_UID,
        "OFFIS_DCMTK_367",
    )
    assert dicom.echo is True
    assert dicom.ae_attempts == 1


def test_tls_probe_alone_on_the_open_tls_port(orthanc_tls_open: RunningServer) -> None:
    block = _tls(orthanc_tls_open)
    assert block.status is Status.SUCCESS and block.detected
    assert block.client_certificate_required is False
    assert block.alert is None


# TLS tried on a plain Orthanc


def test_tls_attempt_on_plain_orthanc_does_not_make_it_an_error(orthanc_open: RunningServer) -> None:
    over_tls = _dicom_over_tls(orthanc_open)
    assert not over_tls.tls.detected and over_tls.dicom is None
    assert over_tls.status is not Status.SUCCESS
    plain = _plain(orthanc_open)
    merged = merge_tls_result(plain, over_tls)
    assert merged.status is Status.SUCCESS
    assert merged.dicom is not None and merged.dicom.open_to_any_ae is True
    assert merged.tls is not None and merged.tls.detected is False
