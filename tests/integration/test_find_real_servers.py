"""C-FIND against a real Orthanc: what pacsaudit's wire layer sends, and what Orthanc 1.10 answers.

Pinned facts (Orthanc 1.10.1, plugins off):
- With ``DicomAlwaysAllowFind: true`` a stranger's STUDY-level C-FIND gets one pending
  (0xFF00) response per study, each identifier holding the keys asked for plus
  SpecificCharacterSet, QueryRetrieveLevel and RetrieveAETitle, then Success (0x0000).
- With the default (``false``) the Query/Retrieve contexts are still accepted, and the
  C-FIND-RQ is answered by A-ABORT (source 0, reason 0) with no C-FIND-RSP at all.
- ``LimitFindResults: N`` ends a longer answer after N matches with Cancel (0xFE00), although
  nobody cancelled: a capped answer, told apart from ours by ``discarded == 0``.
- C-CANCEL-RQ after 1 of 3 matches arrives too late: all 3 were already sent, the final
  status is Success, and the association stays usable (Orthanc logs "cannot handle
  command: 0xfff" and carries on). On long answers it stops with Cancel (0xFE00) some
  hundred matches later.
"""

from __future__ import annotations

import asyncio
import io
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from servers import RunningServer, orthanc, orthanc_binary

from pacsaudit.dicom.association import (
    Association,
    AssociationAbortedError,
    FindResponse,
    request_association,
)
from pacsaudit.dicom.constants import (
    CT_IMAGE_STORAGE,
    EXPLICIT_VR_LE,
    IMPLEMENTATION_CLASS_UID,
    IMPLICIT_VR_LE,
    MR_IMAGE_STORAGE,
    STUDY_ROOT_FIND,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
    VERIFICATION,
)
from pacsaudit.dicom.dimse import STATUS_CANCEL, STATUS_PENDING, STATUS_SUCCESS
from pacsaudit.dicom.identifier import decode_identifier, encode_identifier
from pacsaudit.dicom.pdu import AssociateRequest, PresentationContext
from pacsaudit.dicom.reader import PduLimits
from pacsaudit.dicom.transport import PduTransport
from pacsaudit.discovery import Connector
from scanning import missing_software

pytestmark = pytest.mark.integration

SPECIFIC_CHARACTER_SET = 0x00080005
STUDY_DATE = 0x00080020
QUERY_RETRIEVE_LEVEL = 0x00080052
RETRIEVE_AE_TITLE = 0x00080054
MODALITIES_IN_STUDY = 0x00080061
PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
PATIENT_BIRTH_DATE = 0x00100030
STUDY_INSTANCE_UID = 0x0020000D
NUMBER_OF_SERIES = 0x00201206
NUMBER_OF_INSTANCES = 0x00201208

STUDY_KEYS: list[tuple[int, str, str | list[str]]] = [
    (QUERY_RETRIEVE_LEVEL, "CS", "STUDY"),
    (STUDY_INSTANCE_UID, "UI", ""),
    (STUDY_DATE, "DA", ""),
    (MODALITIES_IN_STUDY, "CS", ""),
    (NUMBER_OF_SERIES, "IS", ""),
    (NUMBER_OF_INSTANCES, "IS", ""),
    (PATIENT_ID, "LO", ""),
]
EVERYTHING_WE_LOOK_FOR = frozenset(
    {tag for tag, _, _ in STUDY_KEYS}
    | {SPECIFIC_CHARACTER_SET, RETRIEVE_AE_TITLE, PATIENT_NAME, PATIENT_BIRTH_DATE}
)


@dataclass(frozen=True)
class Study:
    uid: str
    date: str
    modality: str
    patient_id: str


STUDIES = [
    Study(generate_uid(), "20190305", "CT", "PAT-A"),
    Study(generate_uid(), "20200611", "MR", "PAT-A"),
    Study(generate_uid(), "20211224", "CT", "PAT-B"),
]


def _instance(study: Study, *, name: str = "Invented^Person") -> bytes:
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE if study.modality == "CT" else MR_IMAGE_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study.uid
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyDate = study.date
    ds.Modality = study.modality
    ds.PatientID = study.patient_id
    ds.PatientName = name
    ds.PatientBirthDate = "19700101"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _store(server: RunningServer, studies: list[Study]) -> None:
    """Load through the REST API (POST /instances), which is on loopback only."""
    for study in studies:
        request = urllib.request.Request(
            f"http://{server.host}:{server.http_port}/instances", data=_instance(study), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200


def _orthanc(tmp: Path, studies: list[Study], **config: object) -> Iterator[RunningServer]:
    if orthanc_binary() is None:
        missing_software("Orthanc is not installed")
    with orthanc(tmp, extra_config=config) as server:
        _store(server, studies)
        yield server


@pytest.fixture(scope="module")
def orthanc_find_open(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Orthanc that lets any AE C-FIND, holding the three STUDIES."""
    yield from _orthanc(tmp_path_factory.mktemp("orthanc-find"), STUDIES, DicomAlwaysAllowFind=True)


@pytest.fixture(scope="module")
def orthanc_find_capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The same, answering at most 2 matches per C-FIND."""
    yield from _orthanc(
        tmp_path_factory.mktemp("orthanc-capped"), STUDIES, DicomAlwaysAllowFind=True, LimitFindResults=2
    )


@pytest.fixture(scope="module")
def orthanc_find_many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """600 one-instance studies: long enough an answer for a C-CANCEL-RQ to land mid-stream."""
    many = [Study(generate_uid(), "20200101", "CT", f"P{n:04d}") for n in range(600)]
    yield from _orthanc(tmp_path_factory.mktemp("orthanc-many"), many, DicomAlwaysAllowFind=True)


@asynccontextmanager
async def _associated(
    server: RunningServer, transfer_syntax: str = IMPLICIT_VR_LE
) -> AsyncIterator[Association]:
    """A stranger's association proposing Study Root FIND/MOVE/GET and Verification."""
    connector = Connector(timeout=5.0, rate=0, per_host=4)
    async with connector.open(server.host, server.port, lambda: PduTransport(PduLimits(), 5.0)) as conn:
        request = AssociateRequest(
            called_ae=server.aet,
            calling_ae="STRANGER",
            contexts=(
                PresentationContext(1, STUDY_ROOT_FIND, (transfer_syntax,)),
                PresentationContext(3, STUDY_ROOT_MOVE, (transfer_syntax,)),
                PresentationContext(5, STUDY_ROOT_GET, (transfer_syntax,)),
                PresentationContext(7, VERIFICATION, (IMPLICIT_VR_LE,)),
            ),
            max_pdu_length=16384,
            implementation_class_uid=IMPLEMENTATION_CLASS_UID,
        )
        reply, assoc = await request_association(conn, request)
        assert reply.accept is not None and assoc is not None
        yield assoc


async def _study_find(assoc: Association, max_responses: int) -> list[FindResponse]:
    ts = assoc.transfer_syntax_for(STUDY_ROOT_FIND)
    assert ts is not None
    identifier = encode_identifier(STUDY_KEYS, ts)
    return [r async for r in assoc.find(STUDY_ROOT_FIND, identifier, max_responses=max_responses)]


@pytest.mark.parametrize("transfer_syntax", [IMPLICIT_VR_LE, EXPLICIT_VR_LE])
def test_study_level_find_returns_every_study(orthanc_find_open: RunningServer, transfer_syntax: str) -> None:
    async def go() -> tuple[str | None, list[FindResponse], bool]:
        async with _associated(orthanc_find_open, transfer_syntax) as assoc:
            responses = await _study_find(assoc, max_responses=100)
            return assoc.transfer_syntax_for(STUDY_ROOT_FIND), responses, await assoc.release()

    ts, responses, released = asyncio.run(go())
    assert ts == transfer_syntax
    assert [r.status for r in responses] == [STATUS_PENDING] * 3 + [STATUS_SUCCESS]
    assert responses[-1] == FindResponse(STATUS_SUCCESS, None, 0)
    answers = [
        decode_identifier(r.identifier or b"", transfer_syntax, EVERYTHING_WE_LOOK_FOR) for r in responses[:3]
    ]
    by_uid = {a[STUDY_INSTANCE_UID]: a for a in answers}
    assert by_uid == {
        s.uid: {
            STUDY_INSTANCE_UID: s.uid,
            STUDY_DATE: s.date,
            MODALITIES_IN_STUDY: s.modality,
            NUMBER_OF_SERIES: "1",
            NUMBER_OF_INSTANCES: "1",
            PATIENT_ID: s.patient_id,
            # what Orthanc adds unasked; never the patient's name or birth date
            SPECIFIC_CHARACTER_SET: "ISO_IR 100",
            QUERY_RETRIEVE_LEVEL: "STUDY",
            RETRIEVE_AE_TITLE: orthanc_find_open.aet,
        }
        for s in STUDIES
    }
    assert released


def test_cancel_after_one_of_three_arrives_too_late_and_the_association_survives(
    orthanc_find_open: RunningServer,
) -> None:
    async def go() -> tuple[list[FindResponse], int | None, list[FindResponse]]:
        async with _associated(orthanc_find_open) as assoc:
            capped = await _study_find(assoc, max_responses=1)
            echo = await assoc.echo()
            again = await _study_find(assoc, max_responses=100)
            await assoc.release()
            return capped, echo, again

    capped, echo, again = asyncio.run(go())
    assert [r.status for r in capped] == [STATUS_PENDING, STATUS_SUCCESS]
    assert capped[-1].discarded == 2
    assert echo == 0
    assert [r.status for r in again] == [STATUS_PENDING] * 3 + [STATUS_SUCCESS]


def test_limit_find_results_ends_with_an_unrequested_cancel_status(
    orthanc_find_capped: RunningServer,
) -> None:
    async def go() -> list[FindResponse]:
        async with _associated(orthanc_find_capped) as assoc:
            responses = await _study_find(assoc, max_responses=100)
            await assoc.release()
            return responses

    responses = asyncio.run(go())
    assert [r.status for r in responses] == [STATUS_PENDING, STATUS_PENDING, STATUS_CANCEL]
    assert responses[-1].discarded == 0


def test_long_answer_is_read_whole_or_cancelled_with_the_association_intact(
    orthanc_find_many: RunningServer,
) -> None:
    async def go() -> tuple[list[FindResponse], list[FindResponse], int | None]:
        async with _associated(orthanc_find_many, EXPLICIT_VR_LE) as assoc:
            whole = await _study_find(assoc, max_responses=1000)
            cut = await _study_find(assoc, max_responses=1)
            echo = await assoc.echo()
            await assoc.release()
            return whole, cut, echo

    whole, cut, echo = asyncio.run(go())
    assert len(whole) == 601 and whole[-1].status == STATUS_SUCCESS
    patients = {
        decode_identifier(r.identifier or b"", EXPLICIT_VR_LE, frozenset({PATIENT_ID}))[PATIENT_ID]
        for r in whole[:-1]
    }
    assert len(patients) == 600
    # Cancelled mid-stream (Orthanc stops with 0xFE00) or, on a fast host, already done (0x0000).
    assert [r.status for r in cut[:-1]] == [STATUS_PENDING]
    assert cut[-1].status in (STATUS_CANCEL, STATUS_SUCCESS)
    assert 1 <= cut[-1].discarded <= 599
    assert echo == 0


def test_default_orthanc_accepts_the_contexts_then_aborts_a_strangers_find(
    orthanc_open: RunningServer,
) -> None:
    """DicomAlwaysAllowFind defaults to false: negotiation says yes, the request gets A-ABORT."""

    async def go() -> tuple[list[str], AssociationAbortedError]:
        async with _associated(orthanc_open) as assoc:
            accepted = assoc.accepted_abstract_syntaxes()
            with pytest.raises(AssociationAbortedError) as caught:
                await _study_find(assoc, max_responses=100)
            return accepted, caught.value

    accepted, aborted = asyncio.run(go())
    assert accepted == [STUDY_ROOT_FIND, STUDY_ROOT_MOVE, STUDY_ROOT_GET, VERIFICATION]
    assert aborted.abort is not None
    assert (aborted.abort.source, aborted.abort.reason) == (0, 0)
