"""The census against simulated archives whose every study is known: exact numbers, caps, refusals, budgets.

Each expected value is computed here from the `SimStudy` list, with the shape rules written out
again (not imported from pacsaudit), so the census is judged from outside.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from pacsaudit.config import ScanSettings
from pacsaudit.discovery import Connector
from pacsaudit.engine import scan_endpoint
from pacsaudit.lab.simulator import PacsPolicy, SimStudy, SimulatedPacs, start_simulated_pacs
from pacsaudit.model import DicomBlock, EndpointResult
from pacsaudit.probes import DicomProbeContext

ROOT = "1.2.826.0.1.3680043.10.543"


# -- what a correct census reports, worked out from the studies ---------------------------------


def _ssn_shaped(value: str) -> bool:
    match = re.fullmatch(r"(\d{3})-(\d{2})-(\d{4})|(\d{3})(\d{2})(\d{4})", value.strip())
    if match is None:
        return False
    area, group, serial = (g for g in match.groups() if g is not None)
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def _military_shaped(value: str) -> bool:
    return re.fullmatch(r"\d{10}", value.strip()) is not None


@dataclass(frozen=True)
class Truth:
    patients: int
    studies: int
    series: int
    instances: int
    modalities: dict[str, int]
    per_year: dict[str, int]
    undated: int
    ssn_shaped: int
    military_id_shaped: int
    studies_with_institution: int


def truth(studies: Sequence[SimStudy]) -> Truth:
    ssn: set[str] = set()
    military: set[str] = set()
    for study in studies:
        identifiers = [study.patient_id, *(v for v in study.other_patient_ids.split("\\") if v)]
        if any(_ssn_shaped(v) for v in identifiers):
            ssn.add(study.patient_id)
        if any(_military_shaped(v) for v in identifiers):
            military.add(study.patient_id)
    modalities: Counter[str] = Counter(m for s in studies for m in set(s.modalities))
    years: Counter[str] = Counter(s.study_date[:4] for s in studies if s.study_date)
    return Truth(
        patients=len({s.patient_id for s in studies}),
        studies=len(studies),
        series=sum(s.series for s in studies),
        instances=sum(s.instances for s in studies),
        modalities=dict(sorted(modalities.items())),
        per_year=dict(sorted(years.items())),
        undated=sum(1 for s in studies if not s.study_date),
        ssn_shaped=len(ssn),
        military_id_shaped=len(military),
        studies_with_institution=sum(1 for s in studies if s.institution),
    )


def assert_exact(d: DicomBlock, expected: Truth) -> None:
    c = d.counts
    assert c is not None, (d.status, d.error, d.find_refusal)
    assert c.complete is True, c.incomplete_reason
    assert c.incomplete_reason is None
    assert (c.patients, c.studies, c.series, c.instances) == (
        expected.patients,
        expected.studies,
        expected.series,
        expected.instances,
    )
    assert d.modalities == expected.modalities
    assert d.study_dates is not None
    years = sorted(expected.per_year)
    assert d.study_dates.per_year == expected.per_year
    assert (d.study_dates.min, d.study_dates.max) == (int(years[0]), int(years[-1]))
    assert d.study_dates.undated == expected.undated
    assert d.sensitive is not None
    assert (
        d.sensitive.ssn_shaped,
        d.sensitive.military_id_shaped,
        d.sensitive.studies_with_institution,
    ) == (expected.ssn_shaped, expected.military_id_shaped, expected.studies_with_institution)
    assert d.services_evidence is not None and d.services_evidence.find == "verified"
    assert d.find_refusal is None


# -- archives -----------------------------------------------------------------------------------

MODALITY_SETS: tuple[tuple[str, ...], ...] = (("CT",), ("MR",), ("CR",), ("CT", "SR"), ("MR", "PR"), ("US",))


def _patient_id(rng: random.Random, mixed: bool = True) -> str:
    """Mostly MRNs, some SSN-shaped, some 10 digits (as real archives hold); only MRNs if not `mixed`."""
    kind = rng.random() if mixed else 1.0
    if kind < 0.15:
        return f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    if kind < 0.25:
        return f"{rng.randint(10**9, 10**10 - 1)}"
    return f"MRN{rng.randint(0, 9_999_999):07d}"


def archive(
    count: int,
    *,
    seed: int,
    first_year: int = 2014,
    last_year: int = 2023,
    undated: int = 0,
    busy_day: tuple[str, int] | None = None,
    undated_first: bool = True,
    mixed_ids: bool = True,
    newest_first: bool = False,
) -> tuple[SimStudy, ...]:
    """`count` studies, dates spread over the years, `undated` without a date, `busy_day` = (day, studies).

    The server answers in this order: undated studies first (or last), the rest shuffled (or newest first).
    """
    rng = random.Random(seed)
    span = (date(last_year, 12, 31) - date(first_year, 1, 1)).days
    patients = [_patient_id(rng, mixed_ids) for _ in range(max(count // 2, 1))]
    dates: list[str] = [""] * undated
    if busy_day is not None:
        dates += [busy_day[0]] * busy_day[1]
    rest = [
        (date(first_year, 1, 1) + timedelta(days=rng.randint(0, span))).strftime("%Y%m%d")
        for _ in range(count)
    ]
    rest = rest[: count - len(dates)]
    rng.shuffle(rest)
    if newest_first:
        rest.sort(reverse=True)
    dates = dates + rest if undated_first else rest + dates
    births = random.Random(-seed)  # its own stream: birth dates change nothing else
    born: dict[str, str] = {}
    studies = []
    for index, study_date in enumerate(dates):
        modalities = rng.choice(MODALITY_SETS)
        series = rng.randint(len(modalities), 4)
        # Patients never hold more studies than a cap: a PatientID is the finest split there is.
        patient_id = patients[index // 2 % len(patients)] if index % 3 else _patient_id(rng, mixed_ids)
        if patient_id not in born:  # one patient in ten without a birth date
            birth = date(1930, 1, 1) + timedelta(days=births.randint(0, 365 * 90))
            born[patient_id] = birth.strftime("%Y%m%d") if births.random() > 0.1 else ""
        studies.append(
            SimStudy(
                study_uid=f"{ROOT}.{seed}.{index + 1}",
                patient_id=patient_id,
                study_date=study_date,
                modalities=modalities,
                series=series,
                instances=rng.randint(series, 300),
                institution=rng.choice(["General Hospital", None, "St. Elsewhere", None]),
                other_patient_ids=rng.choice(
                    ["", "", "", f"{rng.randint(1, 665):03d}-{rng.randint(10, 99)}-1234"]
                ),
                patient_birth_date=born[patient_id],
            )
        )
    return tuple(studies)


SENSITIVE = (
    # PatientID shapes: SSNs with and without hyphens, then the invalid areas, group and serial.
    SimStudy(f"{ROOT}.100.1", "123-45-6789", "20190304", ("CT",), 2, 120, "General Hospital"),
    SimStudy(f"{ROOT}.100.2", "123-45-6789", "20210812", ("CT", "SR"), 3, 240, "General Hospital"),
    SimStudy(f"{ROOT}.100.3", "219099999", "20180101", ("MR",), 4, 600),
    SimStudy(f"{ROOT}.100.4", "666-12-3456", "20180102", ("MR",), 1, 30),  # area 666: never issued
    SimStudy(f"{ROOT}.100.5", "900123456", "20180103", ("CR",), 1, 2),  # area 9xx: ITINs, not SSNs
    SimStudy(f"{ROOT}.100.6", "000-12-3456", "20180104", ("CR",), 1, 1),  # area 000
    SimStudy(f"{ROOT}.100.7", "123-00-4567", "20180105", ("CR",), 1, 1),  # group 00
    SimStudy(f"{ROOT}.100.8", "123-45-0000", "20180106", ("CR",), 1, 1),  # serial 0000
    SimStudy(f"{ROOT}.100.9", "12-345-6789", "20180107", ("CR",), 1, 1),  # hyphens in the wrong places
    # Ten digits: DoD-ID-shaped (and MRN-shaped).
    SimStudy(f"{ROOT}.100.10", "1234567890", "20200202", ("US",), 1, 40, "St. Elsewhere"),
    SimStudy(f"{ROOT}.100.11", "1234567890", "", ("US",), 1, 12),
    SimStudy(f"{ROOT}.100.12", "12345678901", "20200203", ("US",), 1, 12),  # eleven: neither
    # Ordinary MRNs hiding an SSN or a ten-digit number in OtherPatientIDs.
    SimStudy(f"{ROOT}.100.13", "MRN0000007", "20170707", ("MR", "PR"), 2, 90, None, "078-05-1120\\OLD-77"),
    SimStudy(f"{ROOT}.100.14", "MRN0000008", "", ("CT",), 1, 50, "General Hospital", "4567890123"),
    SimStudy(f"{ROOT}.100.15", "MRN0000009", "20230101", ("CT",), 0, 0),  # a study without series yet
    *archive(25, seed=1, undated=2),
)


# -- running a census ---------------------------------------------------------------------------


@dataclass
class Scan:
    result: EndpointResult
    pacs: SimulatedPacs
    elapsed: float

    @property
    def dicom(self) -> DicomBlock:
        assert self.result.dicom is not None
        return self.result.dicom


def census(policy: PacsPolicy, *, artim_timeout: float = 0.5, **settings: Any) -> Scan:
    """A census of one simulated PACS; fails if anything reached the event loop's exception handler."""
    seen: list[dict[str, Any]] = []

    async def go() -> Scan:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: seen.append(context))
        pacs = await start_simulated_pacs(policy, artim_timeout=artim_timeout)
        try:
            options: dict[str, Any] = {
                "timeout": 2.0,
                "deadline": 20.0,
                "rate": 0.0,
                "ae_pause": 0.0,
                "census": True,
                "query_pause": 0.0,
                "census_time": 60.0,
            }
            config = ScanSettings(**(options | settings))
            ctx = DicomProbeContext.create(config, Connector(timeout=config.timeout, rate=0, per_host=2))
            started = time.monotonic()
            result = await scan_endpoint(pacs.host, pacs.port, ctx)
            elapsed = time.monotonic() - started
        finally:
            await pacs.close()
        return Scan(result, pacs, elapsed)

    scan = asyncio.run(go())
    assert not seen, f"the event loop's exception handler was called: {seen}"
    return scan


# -- uncapped -----------------------------------------------------------------------------------


def test_uncapped_archive_is_counted_exactly_in_one_query() -> None:
    scan = census(PacsPolicy(studies=SENSITIVE))
    d = scan.dicom
    assert_exact(d, truth(SENSITIVE))
    assert d.counts is not None
    assert (d.counts.queries, d.counts.capped, d.counts.cap, d.counts.split) == (1, False, None, [])
    assert d.counts.counted_from == "study-keys"
    assert scan.pacs.finds == {"STUDY": 1}
    assert d.services is not None and d.services.find is True


def test_the_shapes_in_the_sensitive_archive_are_the_ones_intended() -> None:
    """Guards the test data itself: the hand-made studies carry exactly these shapes."""
    hand_made = SENSITIVE[:15]
    t = truth(hand_made)
    # SSN: 123-45-6789, 219099999, MRN0000007 (OtherPatientIDs); military: 1234567890, MRN0000008.
    assert (t.ssn_shaped, t.military_id_shaped, t.patients, t.undated) == (3, 2, 13, 2)


def test_explicit_vr_little_endian_identifiers_count_the_same() -> None:
    policy = PacsPolicy(studies=SENSITIVE, transfer_syntaxes=("1.2.840.10008.1.2.1",))
    d = census(policy).dicom
    assert_exact(d, truth(SENSITIVE))


def test_empty_archive_is_zero_complete() -> None:
    d = census(PacsPolicy(studies=())).dicom
    assert d.counts is not None
    assert (d.counts.patients, d.counts.studies, d.counts.series, d.counts.instances) == (0, 0, 0, 0)
    assert (d.counts.complete, d.counts.queries) == (True, 1)
    assert d.services_evidence is not None and d.services_evidence.find == "verified"


# -- result caps --------------------------------------------------------------------------------

BUSY_DAY = "20210615"
CAPPED = archive(300, seed=2, undated=8, busy_day=(BUSY_DAY, 30), mixed_ids=False)
"""Ten years, a day busier than the cap, undated studies among the first answers; MRNs only."""
CAPPED_MIXED = archive(300, seed=2, undated=8, busy_day=(BUSY_DAY, 30))
"""The same, with SSN-shaped and ten-digit PatientIDs among the MRNs."""


@pytest.mark.parametrize("studies", [CAPPED, CAPPED_MIXED], ids=["mrn", "mixed"])
def test_the_capped_archives_are_awkward_as_intended(studies: tuple[SimStudy, ...]) -> None:
    busy = sum(1 for s in studies if s.study_date == BUSY_DAY)
    per_patient = Counter(s.patient_id for s in studies)
    assert (len(studies), busy, truth(studies).undated) == (300, 30, 8)
    assert max(per_patient.values()) < 20, "a PatientID is the finest split there is"
    assert len(truth(studies).per_year) == 10
    assert all(not s.study_date for s in studies[:8]), "undated studies come first in the answers"


def test_status_marked_cap_is_split_by_birth_date_then_study_date_to_exact_counts() -> None:
    """One patient in ten has no birth date: those studies are reached by StudyDate, then PatientID."""
    scan = census(PacsPolicy(studies=CAPPED, find_cap=20), max_queries=1000)
    d = scan.dicom
    assert_exact(d, truth(CAPPED))
    c = d.counts
    assert c is not None
    assert (c.capped, c.cap) == (True, 20)
    assert c.split == ["patient-birth-date", "study-date", "patient-id"]
    assert c.queries == sum(scan.pacs.finds.values()) == scan.pacs.finds["STUDY"]


def test_status_marked_cap_counts_an_archive_of_mixed_id_shapes_exactly() -> None:
    d = census(PacsPolicy(studies=CAPPED_MIXED, find_cap=20)).dicom
    assert_exact(d, truth(CAPPED_MIXED))


def test_busy_day_split_finds_a_patient_id_with_a_character_never_seen() -> None:
    day = [
        SimStudy(f"{ROOT}.90.{n}", f"MRN{n:07d}", BUSY_DAY, ("CT",), 1, 1) for n in range(1, 30)
    ]  # fmt: skip
    hidden = SimStudy(f"{ROOT}.90.99", "X0000001", BUSY_DAY, ("CT",), 1, 1)  # answered last of the day
    studies = (*archive(60, seed=9, mixed_ids=False), *day, hidden)
    d = census(PacsPolicy(studies=studies, find_cap=20)).dicom
    assert_exact(d, truth(studies))


def test_capped_range_before_the_first_answers_is_split_by_date() -> None:
    """Many archives answer newest first: the first capped answer then spans a few weeks only."""
    studies = archive(200, seed=10, mixed_ids=False, newest_first=True)
    assert max(Counter(s.study_date for s in studies).values()) < 20, "no day needs a PatientID split"
    d = census(PacsPolicy(studies=studies, find_cap=20)).dicom
    assert_exact(d, truth(studies))
    assert d.counts is not None and "patient-id" not in d.counts.split


def test_status_marked_cap_finds_undated_studies_missing_from_the_first_answer() -> None:
    studies = archive(300, seed=3, undated=8, undated_first=False, mixed_ids=False)
    d = census(PacsPolicy(studies=studies, find_cap=20)).dicom
    assert_exact(d, truth(studies))


@pytest.mark.xfail(
    strict=True,
    reason="known cost (docs/census.md): one undated study of a patient without a birth date makes the "
    "census list the archive again by PatientID prefix (273 queries at cap 20 on 301 studies)",
)
def test_one_undated_study_does_not_cost_more_than_a_naive_month_by_month_split() -> None:
    studies = (
        SimStudy(f"{ROOT}.11.0", "MRN0000000", "", ("CT",), 1, 1),
        *archive(300, seed=11, mixed_ids=False),
    )
    d = census(PacsPolicy(studies=studies, find_cap=20)).dicom
    assert_exact(d, truth(studies))
    assert d.counts is not None and d.counts.queries <= 120, "10 years x 12 months"


def test_status_marked_cap_finds_studies_dated_far_in_the_future() -> None:
    studies = (
        *archive(100, seed=4, mixed_ids=False),
        SimStudy(f"{ROOT}.4.999", "MRN0004999", "20990101", ("CT",), 1, 1),
    )
    d = census(PacsPolicy(studies=studies, find_cap=20)).dicom
    assert_exact(d, truth(studies))


def test_silent_cap_at_a_round_number_is_detected_and_split_to_exact_counts() -> None:
    studies = archive(400, seed=5, undated=5)
    scan = census(PacsPolicy(studies=studies, find_silent_cap=50))
    d = scan.dicom
    assert_exact(d, truth(studies))
    c = d.counts
    assert c is not None
    assert (c.capped, c.cap) == (True, 50)
    assert c.split[0] == "patient-birth-date"
    assert c.queries == sum(scan.pacs.finds.values())


def test_cap_that_is_never_reached_is_not_a_cap() -> None:
    studies = archive(30, seed=6)
    d = census(PacsPolicy(studies=studies, find_cap=100, find_silent_cap=100)).dicom
    assert_exact(d, truth(studies))
    assert d.counts is not None and (d.counts.capped, d.counts.queries) == (False, 1)


# -- servers without the NumberOf... keys -------------------------------------------------------

HIERARCHICAL = archive(12, seed=7, undated=1)


def test_without_number_of_keys_series_and_instances_are_counted_below_study_level() -> None:
    scan = census(PacsPolicy(studies=HIERARCHICAL, fills_number_of=False))
    d = scan.dicom
    assert_exact(d, truth(HIERARCHICAL))
    assert d.counts is not None
    assert d.counts.counted_from == "image-level"
    assert d.counts.queries == 3, "STUDY, then SERIES and IMAGE with the study left universal"
    assert scan.pacs.finds == {"STUDY": 1, "SERIES": 1, "IMAGE": 1}


def test_strictly_hierarchical_server_is_counted_one_study_and_one_series_at_a_time() -> None:
    policy = PacsPolicy(studies=HIERARCHICAL, fills_number_of=False, find_hierarchical=True)
    scan = census(policy)
    d = scan.dicom
    assert_exact(d, truth(HIERARCHICAL))
    expected = truth(HIERARCHICAL)
    assert d.counts is not None and d.counts.counted_from == "image-level"
    # STUDY, the relational SERIES query that found nothing, one SERIES query per study, one IMAGE per series.
    assert d.counts.queries == 2 + expected.studies + expected.series
    assert scan.pacs.finds == {"STUDY": 1, "SERIES": 1 + expected.studies, "IMAGE": expected.series}


def test_hierarchical_counting_within_a_query_budget_gives_lower_bounds() -> None:
    policy = PacsPolicy(studies=HIERARCHICAL, fills_number_of=False, find_hierarchical=True)
    d = census(policy, max_queries=10).dicom
    expected = truth(HIERARCHICAL)
    c = d.counts
    assert c is not None
    assert (c.complete, c.queries, c.incomplete_reason) == (False, 10, "query budget of 10 spent")
    assert (c.patients, c.studies) == (expected.patients, expected.studies)
    assert c.series is not None and 0 < c.series < expected.series
    assert c.instances is not None and 0 < c.instances < expected.instances


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (0xA700, "refused: out of resources (0xa700)"),
        (0x0124, "refused: not authorized (0x0124)"),
        (0xC000, "failed: unable to process (0xc000)"),
    ],
)
def test_refusal_by_status_is_reported_with_its_words(status: int, words: str) -> None:
    scan = census(PacsPolicy(find_status=status))
    d = scan.dicom
    assert d.find_refusal is not None
    assert (d.find_refusal.kind, d.find_refusal.status, d.find_refusal.status_text) == (
        "status",
        status,
        words,
    )
    assert d.services is not None and d.services.find is False
    assert d.services_evidence is not None and d.services_evidence.find == "refused"
    assert d.counts is None and d.modalities is None and d.sensitive is None
    assert scan.pacs.finds == {"STUDY": 1}


def test_refusal_by_abort_is_reported_as_an_abort() -> None:
    scan = census(PacsPolicy(find_abort=True))
    d = scan.dicom
    assert d.find_refusal is not None
    assert (d.find_refusal.kind, d.find_refusal.abort_source, d.find_refusal.abort_reason) == ("abort", 0, 0)
    assert d.services_evidence is not None and d.services_evidence.find == "refused"
    assert d.counts is None
    assert (d.association, d.open_to_any_ae, d.echo) == ("accepted", True, True)


def test_refusal_by_abort_ends_the_endpoint_at_once() -> None:
    scan = census(PacsPolicy(find_abort=True), artim_timeout=10.0, timeout=2.0)
    assert scan.dicom.find_refusal is not None and scan.dicom.find_refusal.kind == "abort"
    assert scan.elapsed < 0.5, f"took {scan.elapsed:.2f} s after the server had aborted"


# -- misbehaving servers ------------------------------------------------------------------------


def test_endless_answer_is_cancelled_and_the_census_ends_within_its_budget() -> None:
    scan = census(PacsPolicy(find_endless=True), max_answers_per_query=500, max_queries=4, census_time=10.0)
    d = scan.dicom
    c = d.counts
    assert c is not None, (d.status, d.error, d.find_refusal)
    assert 1 <= scan.pacs.cancels == c.queries, "every answer was cut short by a C-CANCEL-RQ"
    assert c.complete is False and c.incomplete_reason
    assert (c.patients, c.studies) == (1, 1), "the same fake match, counted once"
    assert scan.pacs.find_responses >= c.queries * 500
    assert d.find_refusal is None
    assert d.services_evidence is not None and d.services_evidence.find == "verified"
    assert scan.elapsed < 5.0, "well within the endpoint deadline (20 s + census time)"


def test_endless_answer_is_not_split_again_and_again() -> None:
    scan = census(PacsPolicy(find_endless=True), max_answers_per_query=500, census_time=10.0)
    c = scan.dicom.counts
    assert c is not None and c.complete is False
    assert c.queries <= 5, f"{c.queries} queries, {scan.pacs.find_responses} answers, {scan.elapsed:.1f} s"


def test_our_own_answer_budget_is_not_reported_as_the_servers_cap() -> None:
    scan = census(PacsPolicy(find_endless=True), max_answers_per_query=500, max_queries=1)
    c = scan.dicom.counts
    assert c is not None and c.complete is False
    assert c.cap != 500


GARBLED = archive(10, seed=8)


def test_garbage_identifier_gives_a_result_not_a_crash() -> None:
    scan = census(PacsPolicy(studies=GARBLED, find_garbage_identifier=True))
    assert scan.result.status == "success" and scan.result.error is None
    d = scan.dicom
    assert (d.association, d.echo) == ("accepted", True)
    assert scan.pacs.finds == {"STUDY": 1}
    assert scan.elapsed < 3.0


def test_garbage_identifier_is_an_error_not_a_refusal() -> None:
    d = census(PacsPolicy(studies=GARBLED, find_garbage_identifier=True)).dicom
    assert d.find_refusal is None
    assert d.services_evidence is not None and d.services_evidence.find != "refused"
    incomplete = d.counts is not None and d.counts.complete is False and d.counts.incomplete_reason
    assert incomplete or (d.status == "protocol-error" and d.error)


# -- budgets ------------------------------------------------------------------------------------


def test_query_budget_gives_lower_bounds() -> None:
    scan = census(PacsPolicy(studies=CAPPED, find_cap=20), max_queries=3)
    d = scan.dicom
    expected = truth(CAPPED)
    c = d.counts
    assert c is not None
    assert (c.complete, c.queries, c.incomplete_reason) == (False, 3, "query budget of 3 spent")
    assert sum(scan.pacs.finds.values()) == 3
    assert c.studies is not None and 20 <= c.studies < expected.studies
    assert c.patients is not None and c.patients <= expected.patients
    assert c.instances is not None and c.instances < expected.instances
    assert (c.capped, c.cap) == (True, 20)


def test_time_budget_gives_lower_bounds() -> None:
    scan = census(PacsPolicy(studies=CAPPED, find_cap=20), census_time=0.5, query_pause=0.2)
    d = scan.dicom
    c = d.counts
    assert c is not None
    assert (c.complete, c.incomplete_reason) == (False, "census time of 0.5 s spent")
    assert 2 <= c.queries <= 5
    assert c.studies is not None and 20 <= c.studies < len(CAPPED)
    assert scan.elapsed < 3.0


def test_modalities_are_code_strings_only_and_a_name_there_never_reaches_the_result() -> None:
    """A server may put anything in ModalitiesInStudy; only Code Strings are counted."""
    studies = (
        SimStudy(
            f"{ROOT}.77.1", "MRN0000001", "20200101", ("CT", "DOE^JANE"), 2, 2, patient_birth_date="19700101"
        ),
        SimStudy(f"{ROOT}.77.2", "MRN0000002", "20200102", ("MR",), 1, 1, patient_birth_date="19800101"),
    )
    scan = census(PacsPolicy(studies=studies))
    d = scan.dicom
    assert d.modalities == {"CT": 1, "MR": 1}
    assert "DOE" not in scan.result.model_dump_json()


def test_a_census_changes_only_its_own_endpoints_services_matrix() -> None:
    """Endpoints with the same accepted contexts share one immutable matrix; the census of one
    replaces that endpoint's blocks with what its C-FIND proved, and nobody else's."""
    verified = census(PacsPolicy(find_endless=True), max_answers_per_query=20, max_queries=1).dicom
    refused = census(PacsPolicy(find_status=0xA700)).dicom

    assert verified.accepted_contexts == refused.accepted_contexts  # the same negotiated matrix
    assert verified.services_evidence is not None and verified.services_evidence.find == "verified"
    assert refused.services_evidence is not None and refused.services_evidence.find == "refused"
    assert verified.services is not None and verified.services.find is True
    assert refused.services is not None and refused.services.find is False
    with pytest.raises(ValidationError, match="frozen"):
        verified.services.find = False
