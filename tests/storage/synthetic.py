"""Synthetic `EndpointResult`s for storage tests and measurements: varied, deterministic, and
on loopback addresses (these records are never scanned, but nothing here names a real network).
"""

from __future__ import annotations

from pacsaudit.model import (
    DicomBlock,
    EndpointResult,
    RejectInfo,
    SensitiveShapes,
    ServiceEvidence,
    Services,
    Status,
    StudyCounts,
    StudyYears,
)

PRODUCTS = (("Orthanc", "Osimis", "1.12.1"), ("DCMTK", "OFFIS", "3.6.7"), ("dcm4chee-arc", "dcm4che", "5.31"))


def loopback_address(index: int) -> str:
    """A distinct 127.x.y.z for every index below 2**24."""
    return f"127.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"


def synthetic_result(index: int, *, port: int = 104, timestamp: str | None = None) -> EndpointResult:
    """Every fourth endpoint is an open archive with a census, every fourth rejects strangers,
    the rest are not DICOM or time out: the mix a scan of a network with some PACS stores."""
    ip = loopback_address(index)
    stamp = timestamp or f"2026-01-{1 + index % 28:02d}T{index % 24:02d}:00:00.{index % 1000:03d}Z"
    kind = index % 4
    if kind == 2:
        return EndpointResult(
            ip=ip, port=port, status=Status.NOT_DICOM, elapsed_ms=3.5, timestamp=stamp, dicom=None
        )
    if kind == 3:
        return EndpointResult(
            ip=ip,
            port=port,
            status=Status.IO_TIMEOUT,
            error="no answer within 3.0 s",
            elapsed_ms=3000.0,
            timestamp=stamp,
            dicom=DicomBlock(status=Status.IO_TIMEOUT, detected=False),
        )
    product, vendor, version = PRODUCTS[index % len(PRODUCTS)]
    if kind == 1:
        return EndpointResult(
            ip=ip,
            port=port,
            status=Status.SUCCESS,
            elapsed_ms=41.25,
            timestamp=stamp,
            dicom=DicomBlock(
                detected=True,
                association="rejected",
                reject=RejectInfo(
                    result=1,
                    source=1,
                    reason=7,
                    result_text="rejected-permanent",
                    source_text="service-user",
                    reason_text="called-AE-title-not-recognized",
                ),
                open_to_any_ae=False,
                called_ae_check=True,
                calling_ae_check=None,
                ae_attempts=2,
            ),
        )
    return EndpointResult(
        ip=ip,
        port=port,
        status=Status.SUCCESS,
        elapsed_ms=812.125,
        timestamp=stamp,
        dicom=DicomBlock(
            detected=True,
            association="accepted",
            open_to_any_ae=True,
            called_ae_check=False,
            calling_ae_check=False,
            accepted_called_ae="PAQWERTYUIOP",
            accepted_calling_ae="PAASDFGHJKLZ",
            ae_attempts=1,
            implementation_class_uid="1.2.276.0.7230010.3.0.3.6.7",
            implementation_version_name="OFFIS_DCMTK_367",
            product=product,
            vendor=vendor,
            version=version,
            echo=True,
            max_pdu_length=16384,
            accepted_contexts=["1.2.840.10008.1.1", "1.2.840.10008.5.1.4.1.2.2.1"],
            services=Services(find=True, move=True, get=False, store=True),
            services_evidence=ServiceEvidence(
                find="verified", move="negotiated", get="not-accepted", store="negotiated"
            ),
            counts=StudyCounts(
                patients=10 + index % 90,
                studies=20 + index % 180,
                series=40 + index % 400,
                instances=800 + index,
                complete=index % 8 != 0,
                queries=3,
                counted_from="study-keys",
            ),
            modalities={"CT": 10, "MR": 10 + index % 7},
            study_dates=StudyYears(min=2010, max=2020, per_year={"2010": 10, "2020": 10 + index % 5}),
            sensitive=SensitiveShapes(ssn_shaped=index % 3, military_id_shaped=index % 2),
        ),
    )


def batch(start: int, count: int, *, port: int = 104) -> list[tuple[int, EndpointResult]]:
    """(position, result) pairs for positions start .. start+count-1, position == index."""
    return [(index, synthetic_result(index, port=port)) for index in range(start, start + count)]
