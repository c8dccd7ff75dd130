"""Orthanc and dcmqrscp loaded with synthetic archives: they hold what the truth says, seen by DCMTK findscu.

These tests also pin what each server does with the queries a census sends, because the census
is designed around it: who may C-FIND, what a result cap looks like, which keys are filled, and
how an undated study meets a StudyDate range.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections import Counter

import pytest
from archives import (
    CAPPED_FIND_RESULTS,
    STRANGER_AET,
    FindscuOutcome,
    GeneratedArchive,
    findscu,
)
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.pdu import A_ABORT_RQ, A_ASSOCIATE_AC
from servers import ACME_CALLING_AET, LOOPBACK, RunningServer, orthanc_binary

from pacsaudit.lab.testdata import (
    ArchiveTruth,
    is_military_shaped,
    is_ssn_shaped,
)

pytestmark = pytest.mark.integration

SUCCESS, CANCEL, PENDING, UNABLE_TO_PROCESS = 0x0000, 0xFE00, 0xFF00, 0xC000
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


def _require_orthanc() -> None:
    if orthanc_binary() is None:
        pytest.skip("Orthanc is not installed")


def _require_dcmqrscp() -> None:
    if shutil.which("dcmqrscp") is None or shutil.which("dcmqridx") is None:
        pytest.skip("dcmqrscp / dcmqridx (DCMTK) are not installed")


STUDY_KEYS = {
    "QueryRetrieveLevel": "STUDY",
    "StudyInstanceUID": "",
    "StudyDate": "",
    "ModalitiesInStudy": "",
    "NumberOfStudyRelatedSeries": "",
    "NumberOfStudyRelatedInstances": "",
    "PatientID": "",
    "0010,1000": "",  # OtherPatientIDs: DCMTK's dictionary only knows the retired name
    "InstitutionName": "",
}


def _values(ds: Dataset, keyword: str) -> list[str]:
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    return [str(v) for v in value] if not isinstance(value, str) else [value]


def _complete(outcome: FindscuOutcome) -> list[Dataset]:
    assert outcome.final_status == SUCCESS, outcome.log[-2000:]
    assert set(outcome.statuses[:-1]) <= {PENDING}
    return outcome.answers


def _check_patient_level_truth(answers: list[Dataset], truth: ArchiveTruth) -> None:
    """What the STUDY-level answers of either server say about patients, dates and identifiers."""
    assert len(answers) == truth.studies
    assert len({ds.StudyInstanceUID for ds in answers}) == truth.studies
    ids = {ds.PatientID: [ds.PatientID, *_values(ds, "OtherPatientIDs")] for ds in answers}
    assert len(ids) == truth.patients
    assert sum(any(map(is_ssn_shaped, v)) for v in ids.values()) == truth.ssn_shaped_patients
    assert sum(any(map(is_military_shaped, v)) for v in ids.values()) == truth.military_shaped_patients
    dates = [str(ds.get("StudyDate", "")) for ds in answers]
    assert Counter(int(d[:4]) for d in dates if d) == truth.study_years
    assert dates.count("") == truth.undated_studies


def _undated_kinds(archive: GeneratedArchive) -> dict[str, str]:
    """StudyInstanceUID -> ``"empty"`` (StudyDate present, zero length) or ``"absent"``."""
    kinds = {}
    for path in archive.files:
        if path.name.endswith("_01_01.dcm"):
            ds = dcmread(path)
            if not ds.get("StudyDate"):
                kinds[ds.StudyInstanceUID] = "empty" if "StudyDate" in ds else "absent"
    return kinds


def _day_range_with(truth: ArchiveTruth, studies: int) -> str:
    """A StudyDate range ``first-last`` matching exactly ``studies`` dated studies."""
    days = list(truth.studies_per_day)
    for start in range(len(days)):
        total = 0
        for end in range(start, len(days)):
            total += truth.studies_per_day[days[end]]
            if total == studies:
                return f"{days[start]}-{days[end]}"
            if total > studies:
                break
    raise AssertionError(f"no run of days holds exactly {studies} studies")


# Orthanc, open to any C-FIND


def test_orthanc_fills_every_census_key_at_study_level(
    orthanc_open_loaded: RunningServer, small_archive: GeneratedArchive
) -> None:
    truth = small_archive.truth
    answers = _complete(findscu(orthanc_open_loaded, STUDY_KEYS))
    _check_patient_level_truth(answers, truth)
    # Orthanc computes the NumberOf... keys and ModalitiesInStudy, and answers OtherPatientIDs and
    # InstitutionName (not in its index) from the stored files.
    assert sum(int(ds.NumberOfStudyRelatedSeries) for ds in answers) == truth.series
    assert sum(int(ds.NumberOfStudyRelatedInstances) for ds in answers) == truth.instances
    assert Counter(m for ds in answers for m in _values(ds, "ModalitiesInStudy")) == truth.modalities
    assert sum(1 for ds in answers if ds.get("InstitutionName")) == truth.studies_with_institution


def test_orthanc_answers_each_level_in_one_query(
    orthanc_open_loaded: RunningServer, small_archive: GeneratedArchive
) -> None:
    truth = small_archive.truth
    series = _complete(
        findscu(orthanc_open_loaded, {"QueryRetrieveLevel": "SERIES", "SeriesInstanceUID": ""})
    )
    images = _complete(findscu(orthanc_open_loaded, {"QueryRetrieveLevel": "IMAGE", "SOPInstanceUID": ""}))
    patients = _complete(
        findscu(orthanc_open_loaded, {"QueryRetrieveLevel": "PATIENT", "PatientID": ""}, model="-P")
    )
    assert (len(series), len(images), len(patients)) == (truth.series, truth.instances, truth.patients)


def test_orthanc_rest_api_counts_the_archive(
    orthanc_open_loaded: RunningServer, small_archive: GeneratedArchive
) -> None:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{orthanc_open_loaded.http_port}/statistics") as reply:
        stats = json.load(reply)
    truth = small_archive.truth
    counts = (stats["CountPatients"], stats["CountStudies"], stats["CountSeries"], stats["CountInstances"])
    assert counts == (truth.patients, truth.studies, truth.series, truth.instances)


# Orthanc's default find policy


def test_orthanc_default_policy_aborts_a_strangers_find(orthanc_refusing_find_loaded: RunningServer) -> None:
    # Given Orthanc's default find policy, When an AE missing from DicomModalities sends C-FIND
    outcome = findscu(orthanc_refusing_find_loaded, {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": ""})
    # Then the association was accepted, but no C-FIND-RSP comes back: an A-ABORT does
    assert "Association Accepted" in outcome.log
    assert outcome.aborted and outcome.final_status is None and not outcome.answers
    assert "Rejected Find request" in orthanc_refusing_find_loaded.log.read_text(errors="replace")


def test_orthanc_default_policy_abort_is_a_service_user_abort(
    orthanc_refusing_find_loaded: RunningServer,
) -> None:
    received: list[object] = []
    ae = AE(ae_title=STRANGER_AET)
    ae.add_requested_context(STUDY_ROOT_FIND)
    assoc = ae.associate(
        LOOPBACK,
        orthanc_refusing_find_loaded.port,
        ae_title=orthanc_refusing_find_loaded.aet,
        evt_handlers=[(evt.EVT_PDU_RECV, lambda event: received.append(event.pdu))],
    )
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    responses = list(assoc.send_c_find(query, STUDY_ROOT_FIND))
    if assoc.is_established:
        assoc.release()
    # pynetdicom yields one empty status when the association ends without a C-FIND-RSP.
    assert [status for status, _ in responses if status] == []
    assert [type(pdu) for pdu in received] == [A_ASSOCIATE_AC, A_ABORT_RQ]
    abort = received[-1]
    assert isinstance(abort, A_ABORT_RQ)
    assert (abort.source, abort.reason_diagnostic) == (0, 0)  # service user, no reason given


def test_orthanc_default_policy_answers_a_known_modality(
    orthanc_refusing_find_loaded: RunningServer, small_archive: GeneratedArchive
) -> None:
    outcome = findscu(
        orthanc_refusing_find_loaded,
        {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": ""},
        calling=ACME_CALLING_AET,
    )
    assert len(_complete(outcome)) == small_archive.truth.studies


# Orthanc with LimitFindResults


def test_orthanc_cap_ends_with_cancel_status(
    orthanc_capped_loaded: RunningServer, capped_archive: GeneratedArchive
) -> None:
    truth = capped_archive.truth

    def ask(**keys: str) -> FindscuOutcome:
        return findscu(orthanc_capped_loaded, {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "", **keys})

    # Over the cap: exactly 100 pending answers, then 0xFE00 ("matching terminated due to cancel").
    for outcome in (ask(), ask(StudyDate=truth.busiest_day), ask(StudyDate=_day_range_with(truth, 101))):
        assert len(outcome.answers) == CAPPED_FIND_RESULTS
        assert outcome.statuses == [PENDING] * CAPPED_FIND_RESULTS + [CANCEL]
    # Exactly at the cap the answer is complete: Orthanc looks one match further before cutting.
    at_cap = ask(StudyDate=_day_range_with(truth, CAPPED_FIND_RESULTS))
    assert len(_complete(at_cap)) == CAPPED_FIND_RESULTS
    assert "Too many results" in orthanc_capped_loaded.log.read_text(errors="replace")


def test_orthanc_cap_covers_patient_and_series_but_not_image_level(
    orthanc_capped_loaded: RunningServer, capped_archive: GeneratedArchive
) -> None:
    patients = findscu(orthanc_capped_loaded, {"QueryRetrieveLevel": "PATIENT", "PatientID": ""}, model="-P")
    series = findscu(orthanc_capped_loaded, {"QueryRetrieveLevel": "SERIES", "SeriesInstanceUID": ""})
    for outcome in (patients, series):
        assert (len(outcome.answers), outcome.final_status) == (CAPPED_FIND_RESULTS, CANCEL)
    # LimitFindInstances is a separate option (0 = no limit).
    images = findscu(orthanc_capped_loaded, {"QueryRetrieveLevel": "IMAGE", "SOPInstanceUID": ""})
    assert len(_complete(images)) == capped_archive.truth.instances


def test_orthanc_capped_holds_the_whole_archive(
    orthanc_capped_loaded: RunningServer, capped_archive: GeneratedArchive
) -> None:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{orthanc_capped_loaded.http_port}/statistics") as reply:
        stats = json.load(reply)
    assert (stats["CountStudies"], stats["CountInstances"]) == (
        capped_archive.truth.studies,
        capped_archive.truth.instances,
    )


# dcmqrscp


def test_dcmqrscp_answers_only_its_own_keys_at_study_level(
    dcmqrscp_loaded: RunningServer, small_archive: GeneratedArchive
) -> None:
    answers = _complete(findscu(dcmqrscp_loaded, STUDY_KEYS))
    _check_patient_level_truth(answers, small_archive.truth)
    # Keys dcmqrscp does not support are left out of the answers altogether.
    unsupported = {"ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"}
    assert all(unsupported.isdisjoint(ds.dir()) and "InstitutionName" not in ds for ds in answers)


def test_dcmqrscp_counts_series_and_instances_with_a_universal_study_uid(
    dcmqrscp_loaded: RunningServer, small_archive: GeneratedArchive
) -> None:
    truth = small_archive.truth
    keys = {"StudyInstanceUID": "", "SeriesInstanceUID": ""}
    series = _complete(findscu(dcmqrscp_loaded, {"QueryRetrieveLevel": "SERIES", **keys, "Modality": ""}))
    images = _complete(
        findscu(dcmqrscp_loaded, {"QueryRetrieveLevel": "IMAGE", **keys, "SOPInstanceUID": ""})
    )
    assert (len(series), len(images)) == (truth.series, truth.instances)
    per_study = {(ds.StudyInstanceUID, ds.Modality) for ds in series}
    assert Counter(modality for _, modality in per_study) == truth.modalities


def test_dcmqrscp_refuses_lower_levels_without_the_study_uid_key(dcmqrscp_loaded: RunningServer) -> None:
    for level, key in (("SERIES", "SeriesInstanceUID"), ("IMAGE", "SOPInstanceUID")):
        outcome = findscu(dcmqrscp_loaded, {"QueryRetrieveLevel": level, key: ""})
        assert (outcome.answers, outcome.final_status) == ([], UNABLE_TO_PROCESS)


def test_dcmqrscp_ignores_a_filter_on_a_key_it_does_not_support(
    dcmqrscp_loaded: RunningServer, small_archive: GeneratedArchive
) -> None:
    outcome = findscu(
        dcmqrscp_loaded, {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "", "ModalitiesInStudy": "CT"}
    )
    assert len(_complete(outcome)) == small_archive.truth.studies  # not truth.modalities["CT"]


# Undated studies against StudyDate ranges


@pytest.mark.parametrize(
    ("server", "matches"),
    [
        # Orthanc compares the empty string: it falls below any upper bound. An absent StudyDate
        # never matches a range.
        ("orthanc_open_loaded", {"-20101231": ["empty"], "20100101-": [], "20100101-20101231": []}),
        ("dcmqrscp_loaded", {"-20101231": [], "20100101-": [], "20100101-20101231": []}),
    ],
)
def test_undated_studies_against_date_ranges(
    server: str,
    matches: dict[str, list[str]],
    request: pytest.FixtureRequest,
    small_archive: GeneratedArchive,
) -> None:
    running: RunningServer = request.getfixturevalue(server)
    kinds = _undated_kinds(small_archive)
    assert sorted(kinds.values()) == ["absent", "empty"]
    days = small_archive.truth.studies_per_day
    for date_range, undated_matched in matches.items():
        low, _, high = date_range.partition("-")
        dated = sum(n for day, n in days.items() if (not low or day >= low) and (not high or day <= high))
        keys = {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "", "StudyDate": date_range}
        answers = _complete(findscu(running, keys))
        got = sorted(kinds[ds.StudyInstanceUID] for ds in answers if ds.StudyInstanceUID in kinds)
        assert (len(answers) - len(got), got) == (dated, undated_matched), date_range
