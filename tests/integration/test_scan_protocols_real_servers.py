"""Real Orthanc's web side through a scan: as a web port, and as a "DICOM" port that answers HTTP."""

from __future__ import annotations

from integration.servers import RunningServer
from pacsaudit.model import Status
from scanning import scan_one


def test_orthanc_http_port_scanned_as_a_web_port(orthanc_open: RunningServer) -> None:
    assert orthanc_open.http_port is not None
    result = scan_one(orthanc_open.host, orthanc_open.http_port, web_ports=[orthanc_open.http_port])
    assert result.status is Status.SUCCESS
    assert result.dicom is None and result.tls is None
    assert result.http is not None and result.http.detected
    assert result.http.scheme == "http"
    assert result.http.product == "Orthanc"
    assert result.http.auth_required is False


def test_orthanc_http_port_scanned_as_a_dicom_port_gets_the_http_probe(orthanc_open: RunningServer) -> None:
    assert orthanc_open.http_port is not None
    result = scan_one(orthanc_open.host, orthanc_open.http_port, web_ports=[])
    # The A-ASSOCIATE-RQ drew an HTTP answer: the port is not DICOM, the HTTP block says what it is
    assert result.status is Status.NOT_DICOM
    assert result.dicom is not None and result.dicom.status is Status.NOT_DICOM
    assert result.http is not None and result.http.detected and result.http.product == "Orthanc"


def test_orthanc_dicom_port_is_plain_dicom(orthanc_open: RunningServer) -> None:
    result = scan_one(orthanc_open.host, orthanc_open.port)
    assert result.status is Status.SUCCESS
    assert result.dicom is not None and result.dicom.detected
    assert result.http is None and result.tls is None
