"""A real census of a simulated archive on loopback, through `run_scan`: every emitted result is
attributed, and neither the findings, the DefectDojo export nor the owner notices hold any of
the archive's patient IDs, other IDs, birth dates, institutions or study dates."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from pacsaudit.assessment import findings_for
from pacsaudit.config import ScanSettings
from pacsaudit.engine.local import run_scan
from pacsaudit.lab.simulator import PacsPolicy, SimStudy, start_simulated_pacs
from pacsaudit.lab.testdata import find_identifying_values
from pacsaudit.model import EndpointResult
from pacsaudit.reports.defectdojo import defectdojo_findings
from pacsaudit.reports.notify import write_owner_notices
from pacsaudit.targets.stream import Endpoint

from .mmdb import write_asn_mmdb

ROOT = "1.2.826.0.1.3680043.10.543.77"
STORAGE = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
MOVE = "1.2.840.10008.5.1.4.1.2.2.2"  # Study Root Q/R MOVE
FIND = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Q/R FIND
VERIFICATION = "1.2.840.10008.1.1"

STUDIES = (
    SimStudy(
        f"{ROOT}.1",
        "123-45-6789",
        "20190412",
        ("CT",),
        2,
        40,
        "Zorvik General",
        "MRN7731\\OLDX-4",
        "19610203",
    ),
    SimStudy(f"{ROOT}.2", "219099999", "20200517", ("MR",), 1, 12, None, "", "19720911"),
    SimStudy(
        f"{ROOT}.3", "4567890123", "20210102", ("CR",), 1, 3, "Quendal Clinic", "078-05-1120", "19850422"
    ),
    SimStudy(f"{ROOT}.4", "MRN0049217", "", ("US",), 1, 9, None, "", ""),
)
IDENTIFYING = {
    value
    for s in STUDIES
    for value in (
        s.patient_id,
        *s.other_patient_ids.split("\\"),
        s.patient_birth_date,
        s.study_date,
        s.institution,
    )
    if value
}


def _scan(tmp_path: Path) -> list[EndpointResult]:
    policy = PacsPolicy(studies=STUDIES, accept_contexts=frozenset({VERIFICATION, FIND, MOVE, STORAGE}))
    emitted: list[EndpointResult] = []

    async def go() -> None:
        pacs = await start_simulated_pacs(policy)
        try:
            settings = ScanSettings(
                ports=[pacs.port], timeout=2.0, deadline=20.0, rate=0.0, ae_pause=0.0, census=True,
                query_pause=0.0, census_time=30.0, asn_database=write_asn_mmdb(tmp_path / "asn.mmdb"),
            )  # fmt: skip
            await run_scan([Endpoint(0, pacs.host, pacs.port, None)], settings, emitted.append)
        finally:
            await pacs.close()

    asyncio.run(go())
    return emitted


def test_a_census_is_attributed_and_its_assessment_holds_no_patient_data(tmp_path: Path) -> None:
    # Given a census of an archive a stranger can query, with SSN-shaped identifiers
    results = _scan(tmp_path)
    assert len(results) == 1
    result = results[0]
    # Then the scan attributed the result where it was emitted
    assert result.attribution is not None and result.attribution.scope == "loopback"
    assert (result.attribution.country, result.attribution.asn) == (None, None)
    assert result.dicom is not None and result.dicom.sensitive is not None
    assert result.dicom.sensitive.ssn_shaped >= 2, "the census saw the SSN shapes"

    # When it is assessed, exported and notified
    found = findings_for(result)
    ids = {f.id for f in found}
    assert {"PACS-DICOM-OPEN-AE", "PACS-DICOM-CFIND-OPEN", "PACS-DICOM-SSN-SHAPES"} <= ids
    assert {"PACS-DICOM-CMOVE-OPEN", "PACS-DICOM-CSTORE-OPEN"} <= ids
    evidence = json.dumps([f.model_dump() for f in found]).encode()
    export = json.dumps(defectdojo_findings(results, scan_label="scan 1")).encode()
    paths = write_owner_notices(results, tmp_path / "owners", scan_label="scan 1")
    notices = b"".join(p.read_bytes() for p in paths)
    assert b"PACS-DICOM-SSN-SHAPES" in notices and b"PACS-DICOM-SSN-SHAPES" in export

    # Then none of the archive's identifying values appears anywhere
    assert len(IDENTIFYING) > 10
    for output in (evidence, export, notices):
        assert find_identifying_values(output, IDENTIFYING) == set()
