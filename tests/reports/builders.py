"""Hand-built `EndpointResult`s for the diff tests, on loopback addresses (never scanned)."""

from __future__ import annotations

from pacsaudit.model import AssociationOutcome, DicomBlock, EndpointResult, Services, Status, StudyCounts

STAMP = "2026-01-01T00:00:00Z"


def system(
    ip: str,
    port: int = 104,
    *,
    open_to_any_ae: bool | None = True,
    called_ae_check: bool | None = False,
    calling_ae_check: bool | None = False,
    find: bool | None = True,
    move: bool | None = True,
    get: bool | None = False,
    store: bool | None = True,
    product: str | None = "Orthanc",
    version: str | None = "1.12.1",
    studies: int | None = None,
    instances: int | None = None,
    patients: int | None = None,
    series: int | None = None,
    complete: bool = True,
    census: bool = True,
    status: Status = Status.SUCCESS,
    association: AssociationOutcome | None = "accepted",
) -> EndpointResult:
    """A DICOM system; with `census` (and any count given) it carries a `counts` block."""
    counted = census and any(v is not None for v in (studies, instances, patients, series))
    return EndpointResult(
        ip=ip,
        port=port,
        status=status,
        elapsed_ms=12.5,
        timestamp=STAMP,
        dicom=DicomBlock(
            detected=True,
            association=association,
            open_to_any_ae=open_to_any_ae,
            called_ae_check=called_ae_check,
            calling_ae_check=calling_ae_check,
            product=product,
            vendor=None,
            version=version,
            services=Services(find=find, move=move, get=get, store=store),
            counts=StudyCounts(
                patients=patients,
                studies=studies,
                series=series,
                instances=instances,
                complete=complete,
                queries=1,
            )
            if counted
            else None,
        ),
    )


def not_dicom(ip: str, port: int = 104, status: Status = Status.NOT_DICOM) -> EndpointResult:
    """An open port that answered in another protocol (or, with `status`, did not answer)."""
    return EndpointResult(
        ip=ip,
        port=port,
        status=status,
        elapsed_ms=3.0,
        timestamp=STAMP,
        dicom=None if status is Status.NOT_DICOM else DicomBlock(status=status, detected=False),
    )
