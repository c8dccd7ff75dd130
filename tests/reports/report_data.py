"""The fixed stored scans the report tests (and their golden files) are made from.

Addresses are documentation ranges (RFC 5737, RFC 3849), one private, one loopback and one
well-known registry address (RIPE NCC's 193.0.0.0/21, registered to NL), as *data only*: none
of them is ever sent a packet. Some results carry a stored `attribution` (a scan with
attribution on), the others are attributed at report time (older scans). One product string
is hostile: markup, a Markdown table breaker and a spreadsheet formula, as a server could send.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from pacsaudit.model import (
    Attribution,
    DicomBlock,
    EndpointResult,
    HttpBlock,
    HttpService,
    RejectInfo,
    SensitiveShapes,
    ServiceEvidence,
    Services,
    Status,
    StudyCounts,
    StudyYears,
)
from pacsaudit.storage import ScanStore
from pacsaudit.storage.schema import scans

__all__ = ["HOSTILE_PRODUCT", "HOSTILE_VERSION", "earlier_results", "later_results", "make_store"]

STAMP = "2026-03-01T10:00:00Z"
HOSTILE_PRODUCT = "Evil|PACS <script>alert(1)</script> [x](http://example.invalid)"
HOSTILE_VERSION = '=HYPERLINK("http://example.invalid")'

DE = Attribution(scope="public", country="DE", asn=64500, as_org="Example Clinic Network")
US = Attribution(scope="public", country="US", asn=64501, as_org="Example Imaging LLC")
FR = Attribution(scope="public", country="FR")


def _open_archive(
    ip: str,
    port: int,
    *,
    attribution: Attribution | None,
    product: str,
    version: str,
    counts: StudyCounts | None,
    modalities: dict[str, int] | None = None,
    years: dict[str, int] | None = None,
    undated: int = 0,
    ssn: int = 0,
    military: int = 0,
    store: bool = True,
) -> EndpointResult:
    return EndpointResult(
        ip=ip,
        port=port,
        status=Status.SUCCESS,
        elapsed_ms=120.0,
        timestamp=STAMP,
        attribution=attribution,
        dicom=DicomBlock(
            detected=True,
            association="accepted",
            open_to_any_ae=True,
            called_ae_check=False,
            calling_ae_check=False,
            accepted_called_ae="PAQWERTYUIOP",
            accepted_calling_ae="PAASDFGHJKLZ",
            ae_attempts=1,
            product=product,
            version=version,
            echo=True,
            services=Services(find=True, move=True, get=False, store=store),
            services_evidence=ServiceEvidence(
                find="verified", move="negotiated", get="not-accepted", store="negotiated" if store else None
            ),
            counts=counts,
            modalities=modalities,
            study_dates=None
            if years is None
            else StudyYears(
                min=min(map(int, years)), max=max(map(int, years)), per_year=years, undated=undated
            ),
            sensitive=None
            if counts is None
            else SensitiveShapes(ssn_shaped=ssn, military_id_shaped=military),
        ),
    )


def _years(per_year: dict[str, int], undated: int) -> StudyYears:
    years = [int(year) for year in per_year]
    return StudyYears(min=min(years), max=max(years), per_year=per_year, undated=undated)


def _counts(studies: int, patients: int, instances: int | None, *, complete: bool = True) -> StudyCounts:
    return StudyCounts(
        patients=patients,
        studies=studies,
        series=studies * 3,
        instances=instances,
        complete=complete,
        queries=4,
        counted_from="study-keys",
        incomplete_reason=None if complete else "query budget spent",
    )


def _rejecting(ip: str, port: int, attribution: Attribution | None) -> EndpointResult:
    return EndpointResult(
        ip=ip,
        port=port,
        status=Status.SUCCESS,
        elapsed_ms=40.0,
        timestamp=STAMP,
        attribution=attribution,
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
            ae_attempts=12,
        ),
    )


def _dictionary_title(ip: str, port: int, attribution: Attribution | None) -> EndpointResult:
    """Refused a stranger, accepted a vendor-default called AE title; no census."""
    return EndpointResult(
        ip=ip,
        port=port,
        status=Status.SUCCESS,
        elapsed_ms=300.0,
        timestamp=STAMP,
        attribution=attribution,
        dicom=DicomBlock(
            detected=True,
            association="accepted",
            open_to_any_ae=False,
            called_ae_check=True,
            calling_ae_check=False,
            accepted_called_ae="ORTHANC",
            accepted_calling_ae="PAASDFGHJKLZ",
            ae_attempts=3,
            product="Orthanc",
            vendor="Osimis",
            version="1.12.1",
            echo=True,
            services=Services(find=True, move=False, get=False, store=False),
        ),
    )


def _orthanc_rest(ip: str, port: int, attribution: Attribution | None, counts: StudyCounts) -> EndpointResult:
    return EndpointResult(
        ip=ip,
        port=port,
        status=Status.NOT_DICOM,
        elapsed_ms=80.0,
        timestamp=STAMP,
        attribution=attribution,
        http=HttpBlock(
            detected=True,
            scheme="http",
            status_code=200,
            product="Orthanc",
            version="1.12.1",
            auth_required=False,
            studies_listable=True,
            services=[HttpService(kind="orthanc-rest", path="/system", status_code=200, auth_required=False)],
            counts=counts,
        ),
    )


def _other(ip: str, port: int, status: Status) -> EndpointResult:
    return EndpointResult(ip=ip, port=port, status=status, elapsed_ms=2.0, timestamp=STAMP)


def later_results() -> list[EndpointResult]:
    """Scan 2. Sorted by (ip as text, port), the store's order, as a real scan is read back."""
    results = [
        # DE, two endpoints of one archive: DICOM counts 300 studies, its REST API 310 (larger wins).
        _open_archive(
            "192.0.2.10", 104, attribution=DE, product="Orthanc", version="1.12.1",
            counts=_counts(300, 120, 45_000), modalities={"CT": 120, "MR": 100, "CR": 80},
            years={"2015": 50, "2019": 100, "2023": 150}, ssn=12, military=3,
        ),
        _orthanc_rest("192.0.2.10", 8042, DE, _counts(310, 125, 45_500)),
        # DE, a census cut short: lower bounds, no instance count.
        _open_archive(
            "192.0.2.20", 11112, attribution=DE, product="DCMTK", version="3.6.7",
            counts=_counts(1_000, 400, None, complete=False), modalities={"MR": 600},
            years={"2020": 900}, undated=100, store=False,
        ),
        _other("192.0.2.30", 104, Status.NOT_DICOM),
        _other("192.0.2.31", 104, Status.CONNECTION_REFUSED),
        # RIPE NCC's block (NL), no stored attribution: attributed at report time.
        _open_archive(
            "193.0.0.1", 104, attribution=None, product="dcm4chee-arc", version="5.31",
            counts=_counts(75, 30, 3_000), modalities={"DX": 75}, years={"2021": 75},
        ),
        # US: one refuses strangers, one takes a dictionary title (no census).
        _rejecting("198.51.100.7", 4242, US),
        _dictionary_title("198.51.100.8", 104, US),
        # Private, no stored attribution.
        _open_archive(
            "10.1.2.3", 104, attribution=None, product="Orthanc", version="1.9.7",
            counts=_counts(12, 5, 400), modalities={"US": 12}, years={"2022": 12},
        ),
        # FR: hostile product text.
        _open_archive(
            "203.0.113.5", 104, attribution=FR, product=HOSTILE_PRODUCT, version=HOSTILE_VERSION,
            counts=_counts(50, 20, 2_000), modalities={"US": 50}, years={"2024": 50}, ssn=1,
        ),
        # An IPv6 documentation address with a stored attribution.
        _open_archive(
            "2001:db8::5", 4242, attribution=DE, product="Orthanc", version="1.12.1",
            counts=_counts(8, 4, 160), modalities={"CT": 8}, years={"2023": 8},
        ),
    ]  # fmt: skip
    return sorted(results, key=lambda r: (r.ip.encode(), r.port))


def earlier_results() -> list[EndpointResult]:
    """Scan 1: 192.0.2.20 and 2001:db8::5 are not there yet; 192.0.2.10 had fewer studies;
    203.0.113.9 was there and is gone."""
    keep = {
        "192.0.2.10",
        "192.0.2.30",
        "193.0.0.1",
        "198.51.100.7",
        "198.51.100.8",
        "10.1.2.3",
        "203.0.113.5",
    }
    results = [r for r in later_results() if r.ip in keep]
    results = [
        r.model_copy(update={"dicom": r.dicom.model_copy(update={"counts": _counts(250, 100, 40_000)})})
        if r.ip == "192.0.2.10" and r.dicom is not None
        else r
        for r in results
        if not (r.ip == "192.0.2.10" and r.port == 8042)
    ]
    results.append(
        _open_archive(
            "203.0.113.9", 104, attribution=FR, product="Orthanc", version="1.5.8",
            counts=_counts(40, 10, 900), modalities={"CR": 40}, years={"2012": 40},
        )
    )  # fmt: skip
    return sorted(results, key=lambda r: (r.ip.encode(), r.port))


_TARGETS = ["192.0.2.0/24", "193.0.0.1", "198.51.100.0/24", "10.1.2.3", "203.0.113.0/24", "2001:db8::5"]
_PORTS = [104, 4242, 8042, 11112]


def make_store(where: Path | str) -> ScanStore:
    """A store (a SQLite file, or an empty database's URL) holding scan 1 (earlier) and scan 2
    (later), with fixed times."""
    store = ScanStore.open(f"sqlite:///{where}" if isinstance(where, Path) else where)
    for number, results in ((1, earlier_results()), (2, later_results())):
        scan_id = store.create_scan(
            {"targets": _TARGETS, "ports": _PORTS}, targets_estimated=len(results), tool_version="0.1.0"
        )
        assert scan_id == number
        store.write_batch(
            scan_id, list(enumerate(results)), low_water_mark=len(results), endpoints_done=len(results)
        )
        store.finish_scan(scan_id, "finished")
        with store.engine.begin() as conn:
            conn.execute(
                sa.update(scans)
                .where(scans.c.id == scan_id)
                .values(
                    started_at=datetime(2026, 3, number, 10, 0, tzinfo=UTC),
                    finished_at=datetime(2026, 3, number, 10, 30, tzinfo=UTC),
                )
            )
    return store
