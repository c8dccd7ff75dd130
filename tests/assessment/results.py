"""Hand-built results for the assessment tests (documentation and loopback addresses: never scanned)."""

from __future__ import annotations

from typing import Any

from pacsaudit.model import (
    Attribution,
    CertificateInfo,
    DicomBlock,
    EndpointResult,
    HttpBlock,
    HttpService,
    SensitiveShapes,
    ServiceEvidence,
    Services,
    Status,
    StudyCounts,
    TlsBlock,
)

STAMP = "2026-03-04T05:06:07Z"
PUBLIC_NL = Attribution(scope="public", country="NL", asn=64500, as_org="Example Hospital Network")


def open_archive(
    ip: str = "193.0.6.139",
    port: int = 104,
    *,
    attribution: Attribution | None = PUBLIC_NL,
    find: str | None = "verified",
    move: str | None = "negotiated",
    get: str | None = None,
    store: str | None = "negotiated",
    patients: int | None = 120,
    ssn: int = 0,
    military: int = 0,
    product: str | None = "DCMTK-based",
    version: str | None = "3.6.7",
    **dicom: Any,
) -> EndpointResult:
    """An archive that accepted a stranger, with the given service evidence and census."""
    levels = {"find": find, "move": move, "get": get, "store": store}
    block = DicomBlock(
        detected=True,
        association="accepted",
        open_to_any_ae=True,
        called_ae_check=False,
        calling_ae_check=False,
        accepted_called_ae="PAQWERTYUIOP",
        accepted_calling_ae="PAASDFGHJKLZ",
        ae_attempts=1,
        echo=True,
        product=product,
        version=version,
        services=Services(**{k: v in ("verified", "negotiated") for k, v in levels.items()}),
        services_evidence=ServiceEvidence(**levels),  # type: ignore[arg-type]
        counts=StudyCounts(
            patients=patients, studies=300, series=900, instances=45000, complete=True, queries=3
        )
        if patients is not None
        else None,
        sensitive=SensitiveShapes(ssn_shaped=ssn, military_id_shaped=military, studies_with_institution=4)
        if patients is not None
        else None,
    )
    block = block.model_copy(update=dicom)
    return EndpointResult(
        ip=ip,
        port=port,
        status=Status.SUCCESS,
        elapsed_ms=40.0,
        timestamp=STAMP,
        attribution=attribution,
        dicom=block,
    )


def refusing_archive(ip: str = "127.0.0.1", port: int = 11112, **attrs: Any) -> EndpointResult:
    """A DICOM service that rejected the stranger (it checks AE titles)."""
    return EndpointResult(
        ip=ip,
        port=port,
        status=Status.SUCCESS,
        elapsed_ms=20.0,
        timestamp=STAMP,
        attribution=attrs.get("attribution", Attribution(scope="loopback")),
        dicom=DicomBlock(detected=True, association="rejected", open_to_any_ae=False, called_ae_check=True),
    )


def web_front_end(
    ip: str = "193.0.6.140",
    port: int = 8042,
    *,
    scheme: str = "http",
    auth_required: bool | None = False,
    studies_listable: bool | None = True,
    default_credentials_accepted: bool | None = None,
    product: str | None = "Orthanc",
    version: str | None = "1.12.10",
    tls: TlsBlock | None = None,
) -> EndpointResult:
    return EndpointResult(
        ip=ip,
        port=port,
        status=Status.NOT_DICOM,
        elapsed_ms=30.0,
        timestamp=STAMP,
        attribution=PUBLIC_NL,
        http=HttpBlock(
            detected=True,
            scheme=scheme,  # type: ignore[arg-type]
            status_code=200,
            product=product,
            version=version,
            auth_required=auth_required,
            dicomweb_root="/dicom-web",
            studies_listable=studies_listable,
            default_credentials_accepted=default_credentials_accepted,
            services=[
                HttpService(kind="orthanc-rest", path="/system", status_code=200, auth_required=auth_required)
            ],
            counts=StudyCounts(patients=7, studies=9, complete=True, queries=1) if studies_listable else None,
        ),
        tls=tls,
    )


def weak_tls(version: str = "TLSv1", *, self_signed: bool = True, expired: bool = True) -> TlsBlock:
    return TlsBlock(
        detected=True,
        version=version,
        cipher="AES128-SHA",
        client_certificate_required=False,
        certificate=CertificateInfo(
            subject="CN=pacs",
            issuer="CN=pacs",
            not_before="2019-01-01T00:00:00Z",
            not_after="2020-01-01T00:00:00Z",
            self_signed=self_signed,
            expired=expired,
            sha256="ab" * 32,
        ),
    )
