"""The census against real archives loaded with known synthetic data: exact counts, caps, refusals.

Every expected number comes from the generator's truth (`pacsaudit.lab.testdata`), never from
what pacsaudit said before.
"""

from __future__ import annotations

from typing import Any

import pytest
from archives import GeneratedArchive
from servers import RunningServer

from pacsaudit.lab.testdata import ArchiveTruth
from pacsaudit.model import DicomBlock
from scanning import scan_one

pytestmark = pytest.mark.integration


def _census(server: RunningServer, **settings: Any) -> DicomBlock:
    options: dict[str, Any] = {"census": True, "query_pause": 0.0, "deadline": 30.0, "timeout": 10.0}
    result = scan_one(server.host, server.port, **(options | settings))
    assert result.dicom is not None
    return result.dicom


def _assert_exact(d: DicomBlock, truth: ArchiveTruth) -> None:
    assert d.counts is not None and d.counts.complete, d.counts
    c = d.counts
    assert (c.patients, c.studies, c.series, c.instances) == (
        truth.patients, truth.studies, truth.series, truth.instances,
    )  # fmt: skip
    assert d.modalities == dict(sorted(truth.modalities.items()))
    assert d.study_dates is not None
    assert d.study_dates.per_year == {str(y): n for y, n in sorted(truth.study_years.items())}
    assert (d.study_dates.min, d.study_dates.max) == (min(truth.study_years), max(truth.study_years))
    assert d.study_dates.undated == truth.undated_studies
    assert d.sensitive is not None
    assert d.sensitive.ssn_shaped == truth.ssn_shaped_patients
    assert d.sensitive.military_id_shaped == truth.military_shaped_patients


def test_open_orthanc_is_counted_exactly_in_one_query(
    orthanc_open_loaded: RunningServer, small_archive: GeneratedArchive
) -> None:
    d = _census(orthanc_open_loaded)
    _assert_exact(d, small_archive.truth)
    assert d.counts is not None
    assert (d.counts.queries, d.counts.capped, d.counts.counted_from) == (1, False, "study-keys")
    assert d.sensitive is not None
    assert d.sensitive.studies_with_institution == small_archive.truth.studies_with_institution
    assert d.services is not None and d.services.find is True
    assert d.services_evidence is not None and d.services_evidence.find == "verified"
    assert d.services_evidence.move == "negotiated", "MOVE is never sent, only negotiated"
    assert d.find_refusal is None


def test_default_orthanc_refuses_a_strangers_find_with_an_abort(
    orthanc_refusing_find_loaded: RunningServer,
) -> None:
    d = _census(orthanc_refusing_find_loaded)
    assert d.association == "accepted" and d.open_to_any_ae is True
    assert d.find_refusal is not None
    assert (d.find_refusal.kind, d.find_refusal.abort_source, d.find_refusal.abort_reason) == ("abort", 0, 0)
    assert d.services is not None and d.services.find is False
    assert d.services_evidence is not None and d.services_evidence.find == "refused"
    assert d.counts is None and d.sensitive is None


def test_result_cap_is_worked_around_to_exact_counts(
    orthanc_capped_loaded: RunningServer, capped_archive: GeneratedArchive
) -> None:
    truth = capped_archive.truth
    assert truth.studies >= 3000 and truth.studies_on_busiest_day > 100 and truth.undated_studies > 100
    d = _census(orthanc_capped_loaded, census_time=600.0, deadline=30.0)
    _assert_exact(d, truth)
    c = d.counts
    assert c is not None
    assert (c.capped, c.cap) == (True, 100)
    assert c.split == ["patient-birth-date", "study-date"]
    months = 12 * (max(truth.study_years) - min(truth.study_years) + 1)
    assert c.queries < months, f"{c.queries} queries; a naive month-by-month split needs {months} and more"


def test_query_budget_makes_lower_bounds(
    orthanc_capped_loaded: RunningServer, capped_archive: GeneratedArchive
) -> None:
    d = _census(orthanc_capped_loaded, max_queries=4)
    c = d.counts
    assert c is not None
    assert (c.complete, c.queries) == (False, 4)
    assert c.incomplete_reason == "query budget of 4 spent"
    assert c.studies is not None and 100 <= c.studies < capped_archive.truth.studies
    assert c.patients is not None and c.patients <= capped_archive.truth.patients


def test_dcmqrscp_without_number_of_keys_is_counted_below_study_level(
    dcmqrscp_loaded: RunningServer, small_archive: GeneratedArchive
) -> None:
    d = _census(dcmqrscp_loaded)
    _assert_exact(d, small_archive.truth)
    assert d.counts is not None
    assert d.counts.counted_from == "image-level"
    assert d.counts.queries == 3, "STUDY, then SERIES and IMAGE with the study left universal"
