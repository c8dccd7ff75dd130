"""The synthetic archive: deterministic, truthful, and shaped the way the census tests need it.

Every file is read back with pydicom (with warnings as errors, so an invalid value fails) and the
truth is recounted from what the files say, with an SSN rule written independently of the one in
`pacsaudit.lab.testdata`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from pacsaudit.lab import testdata
from pacsaudit.lab.testdata import (
    ArchiveSpec,
    ArchiveTruth,
    archive_files,
    capped_archive_spec,
    find_identifying_values,
    generate_archive,
    is_military_shaped,
    is_ssn_shaped,
)

SMALL = ArchiveSpec()


@dataclass(frozen=True)
class Generated:
    truth: ArchiveTruth
    files: list[Path]
    datasets: list[Dataset]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    out = tmp_path_factory.mktemp("small")
    truth = generate_archive(SMALL, out)
    files = archive_files(out)
    return Generated(truth, files, [dcmread(path) for path in files])


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> ArchiveTruth:
    return generate_archive(capped_archive_spec(), tmp_path_factory.mktemp("capped"))


def _independent_ssn(value: str) -> bool:
    digits = value.replace("-", "") if re.fullmatch(r"\d{3}-\d{2}-\d{4}", value) else value
    if not re.fullmatch(r"\d{9}", digits):
        return False
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    return 0 < area < 900 and area != 666 and group > 0 and serial > 0


def _looks_like_ssn(value: str) -> bool:
    return re.fullmatch(r"\d{3}-\d{2}-\d{4}|\d{9}", value) is not None


def _other_ids(ds: Dataset) -> list[str]:
    value = ds.get("OtherPatientIDs")
    if value is None:
        return []
    return [str(v) for v in value] if not isinstance(value, str) else [value]


def test_same_seed_writes_same_bytes_and_truth(tmp_path: Path, small: Generated) -> None:
    # Given the spec the module fixture used, When it is generated again elsewhere
    truth = generate_archive(SMALL, tmp_path)
    files = archive_files(tmp_path)
    # Then the truth and every file are identical
    assert truth == small.truth
    assert [p.name for p in files] == [p.name for p in small.files]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(files, small.files, strict=True))


def test_another_seed_writes_another_archive(tmp_path: Path, small: Generated) -> None:
    truth = generate_archive(ArchiveSpec(seed=SMALL.seed + 1), tmp_path)
    names = {value for value in small.truth.identifying_values if value.count("^") == 2}
    assert len(names) == SMALL.patients
    assert truth.identifying_values.isdisjoint(names)
    first = dcmread(archive_files(tmp_path)[0])
    assert first.StudyInstanceUID != small.datasets[0].StudyInstanceUID


def test_truth_matches_what_the_files_say(small: Generated) -> None:
    truth, datasets = small.truth, small.datasets
    studies: dict[str, list[Dataset]] = {}
    for ds in datasets:
        studies.setdefault(ds.StudyInstanceUID, []).append(ds)
    assert truth.instances == len(datasets)
    assert truth.series == len({ds.SeriesInstanceUID for ds in datasets})
    assert truth.studies == len(studies)
    assert truth.patients == len({ds.PatientID for ds in datasets})

    modalities: Counter[str] = Counter()
    years: Counter[int] = Counter()
    days: Counter[str] = Counter()
    undated = with_institution = 0
    for members in studies.values():
        modalities.update({ds.Modality for ds in members})
        # Study-level values are the same in every instance of a study.
        assert len({(ds.get("StudyDate"), ds.get("InstitutionName"), ds.PatientID) for ds in members}) == 1
        date = members[0].get("StudyDate")
        if date:
            years[int(date[:4])] += 1
            days[date] += 1
        else:
            undated += 1
        with_institution += bool(members[0].get("InstitutionName"))
    assert truth.modalities == dict(modalities)
    assert sum(truth.modalities.values()) > truth.studies  # some studies mix modalities
    assert truth.study_years == dict(years)
    assert truth.studies_per_day == dict(days)
    assert truth.undated_studies == undated == round(truth.studies * SMALL.undated_fraction)
    assert truth.studies_with_institution == with_institution == round(truth.studies * 0.5)

    ids = {ds.PatientID: [ds.PatientID, *_other_ids(ds)] for ds in datasets}
    assert truth.ssn_shaped_patients == sum(any(map(_independent_ssn, v)) for v in ids.values())
    assert truth.military_shaped_patients == sum(
        any(re.fullmatch(r"\d{10}", x) for x in v) for v in ids.values()
    )

    identifying: set[str] = set()
    for ds in datasets:
        name = str(ds.PatientName)
        identifying.update([name, *name.split("^"), ds.PatientID, ds.PatientBirthDate, ds.AccessionNumber])
        identifying.update(_other_ids(ds))
    assert truth.identifying_values == identifying


def test_patient_id_kinds_have_exact_counts(small: Generated) -> None:
    patient_ids = {ds.PatientID for ds in small.datasets}
    n = SMALL.patients
    assert sum(map(_independent_ssn, patient_ids)) == round(n * SMALL.ssn_fraction)
    assert sum(map(is_military_shaped, patient_ids)) == round(n * SMALL.military_fraction)
    invalid = [p for p in patient_ids if _looks_like_ssn(p) and not _independent_ssn(p)]
    assert len(invalid) == round(n * SMALL.invalid_ssn_fraction)
    assert not any(map(is_ssn_shaped, invalid))
    # Both spellings of both kinds occur.
    assert {"-" in p for p in patient_ids if _independent_ssn(p)} == {True, False}
    assert {"-" in p for p in invalid} == {True, False}


def test_some_ssns_hide_in_other_patient_ids(small: Generated) -> None:
    by_patient = {ds.PatientID: _other_ids(ds) for ds in small.datasets}
    hidden = {pid: others for pid, others in by_patient.items() if any(map(is_ssn_shaped, others))}
    assert len(hidden) == round(SMALL.patients * SMALL.other_ids_ssn_fraction)
    assert not any(is_ssn_shaped(pid) or is_military_shaped(pid) for pid in hidden)
    assert any(len(others) == 2 and is_ssn_shaped(others[1]) for others in hidden.values())
    harmless = [o for o in by_patient.values() if o and not any(map(is_ssn_shaped, o))]
    assert len(harmless) == len(hidden)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("123-45-6789", True),
        ("123456789", True),
        (" 001-01-0001 ", True),
        ("899-99-9999", True),
        ("665-12-3456", True),
        ("667123456", True),
        ("000-12-3456", False),
        ("666-12-3456", False),
        ("666123456", False),
        ("900-12-3456", False),
        ("999123456", False),
        ("123-00-4567", False),
        ("123-45-0000", False),
        ("1234567890", False),
        ("12345678", False),
        ("123-456-789", False),
        ("ID 123-45-6789", False),
        ("", False),
    ],
)
def test_ssn_shape_rules(value: str, expected: bool) -> None:
    assert is_ssn_shaped(value) is expected
    assert _independent_ssn(value.strip()) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1234567890", True), ("123456789", False), ("12345678901", False), ("12-34567890", False)],
)
def test_military_shape(value: str, expected: bool) -> None:
    assert is_military_shaped(value) is expected


def test_busiest_day_is_a_cluster(small: Generated) -> None:
    truth = small.truth
    cluster = round(truth.studies * SMALL.busiest_day_fraction)
    assert truth.studies_on_busiest_day >= cluster
    assert truth.studies_per_day[truth.busiest_day] == truth.studies_on_busiest_day
    others = [n for day, n in truth.studies_per_day.items() if day != truth.busiest_day]
    assert max(others) < truth.studies_on_busiest_day / 2


def test_capped_spec_defeats_a_cap_of_100_by_date(capped: ArchiveTruth) -> None:
    assert capped.studies >= 3000
    assert 5000 <= capped.instances <= 8000
    # Neither the busiest day nor the undated studies fit in one capped answer.
    assert capped.studies_on_busiest_day > 100
    assert capped.undated_studies > 100
    assert len(capped.study_years) == 16


def test_no_pixel_data_and_small_files(small: Generated) -> None:
    assert all(0x7FE00010 not in ds for ds in small.datasets)
    assert max(path.stat().st_size for path in small.files) < 2048
    sop_classes = {ds.SOPClassUID for ds in small.datasets}
    assert sop_classes == {testdata.CT_IMAGE_STORAGE, testdata.SECONDARY_CAPTURE_IMAGE_STORAGE}
    for ds in small.datasets:
        assert ds.file_meta.TransferSyntaxUID == testdata.EXPLICIT_VR_LITTLE_ENDIAN
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert (ds.SOPClassUID == testdata.CT_IMAGE_STORAGE) == (ds.Modality == "CT")


def test_uids_share_a_2_25_root_and_fit_64_chars(small: Generated) -> None:
    uids = {
        u for ds in small.datasets for u in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    }
    roots = {".".join(uid.split(".")[:3]) for uid in uids}
    assert len(roots) == 1 and next(iter(roots)).startswith("2.25.")
    assert all(len(uid) <= 64 and re.fullmatch(r"(0|[1-9]\d*)(\.(0|[1-9]\d*))+", uid) for uid in uids)


def test_names_are_unique_and_never_english(small: Generated) -> None:
    names = [str(ds.PatientName) for ds in small.datasets]
    assert len(set(names)) == small.truth.patients
    components = {c for name in names for c in name.split("^")}
    assert all(len(c) >= 10 and c.isalpha() for c in components)


def test_find_identifying_values() -> None:
    values = ["ZEVRIKAAAB^QUOLANAAAC^XANDORAAAD", "QUOLANAAAC", "123-45-6789", "19840517", "1234567890"]
    blob = b'{"patients": 3, "note": "quolanaaac", "t": 2019840517, "id": "x123-45-6789y"}'
    assert find_identifying_values(blob, values) == {"QUOLANAAAC", "123-45-6789"}
    assert find_identifying_values(b"1234567890", values) == {"1234567890"}
    assert find_identifying_values(b"", values) == set()


@pytest.mark.parametrize(
    "spec",
    [
        {"patients": 0},
        {"studies_per_patient": (0, 2)},
        {"series_per_study": (3, 1)},
        {"ssn_fraction": 0.6, "military_fraction": 0.5},
        {"undated_fraction": 0.9, "busiest_day_fraction": 0.2},
        {"years": (99, 2000)},
        {"modalities": ()},
    ],
)
def test_spec_rejects_nonsense(spec: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ArchiveSpec(**spec)  # type: ignore[arg-type]


def test_all_is_sorted_and_complete() -> None:
    assert testdata.__all__ == sorted(testdata.__all__, key=lambda n: (not n.isupper(), n))
    assert all(hasattr(testdata, name) for name in testdata.__all__)
