"""Synthetic DICOM archives whose census is known exactly, for tests and benchmarks.

`generate_archive` writes one small DICOM file per instance (no pixel data) and returns the
`ArchiveTruth`: the numbers a correct census of that archive must report, and every
identifying value the files hold, so a privacy test can search a program's output for them.

Everything is invented and drawn from one seeded `random.Random`: the same spec writes the
same bytes. Names are made of invented stems plus a letter code (``ZEVRIKBACD^QUOLANDEFG^...``)
so that each one is unique and never occurs in ordinary text by accident. Identifier shapes
follow the census rules in CLARIFICATIONS.md: a valid US SSN shape is ``NNN-NN-NNNN`` or nine
digits whose area is not 000, 666 or 900-999, whose group is not 00 and whose serial is not
0000; a military-ID shape is ten digits.

Files are encoded here rather than by pydicom's ``dcmwrite``: every element is a short text
one, and skipping pydicom's per-file validation and copying makes a 7,000-file archive take
about 3 s instead of 10 (the tests read every file back with pydicom).

The archive is built to be awkward for a census: a few hundred studies can sit on one day (no
StudyDate range splits them), some studies have no StudyDate (empty or absent), a study can
hold series of several modalities, and some patients carry an SSN only in OtherPatientIDs,
sometimes as the second of two values.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import struct
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = [
    "CT_IMAGE_STORAGE",
    "EXPLICIT_VR_LITTLE_ENDIAN",
    "SECONDARY_CAPTURE_IMAGE_STORAGE",
    "ArchiveSpec",
    "ArchiveTruth",
    "archive_files",
    "capped_archive_spec",
    "find_identifying_values",
    "generate_archive",
    "is_military_shaped",
    "is_ssn_shaped",
]

CT_IMAGE_STORAGE: Final = "1.2.840.10008.5.1.4.1.1.2"
SECONDARY_CAPTURE_IMAGE_STORAGE: Final = "1.2.840.10008.5.1.4.1.1.7"
EXPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2.1"

_IMPLEMENTATION_CLASS_UID: Final = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'pacsaudit-testdata').int}"
_IMPLEMENTATION_VERSION_NAME: Final = "PACSAUDIT_TD"

# Invented stems with rare letters: no stem, and no stem plus code, is an English word.
_STEMS: Final = (
    "XANDOR", "ZEVRIK", "QUOLAN", "JAXTER", "VORZEN", "KYZMEL", "ZORVAK", "XELBIN",
    "QIRVAL", "JOZLIN", "VEXMOR", "KAZRIL", "ZYLVEN", "XOMBRA", "QUENDIX", "JUVRAK",
)  # fmt: skip
_INSTITUTIONS: Final = (
    "ZEVRIK GENERAL HOSPITAL", "QUOLAN IMAGING CENTER", "XANDOR VALLEY CLINIC",
    "JOZLIN MEMORIAL", "KYZMEL RADIOLOGY",
)  # fmt: skip
_MRN_PREFIXES: Final = "HKPRT"
_CODES: Final = 26**4

_SSN_DASHED: Final = re.compile(r"(\d{3})-(\d{2})-(\d{4})")
_SSN_PLAIN: Final = re.compile(r"(\d{3})(\d{2})(\d{4})")
_MILITARY: Final = re.compile(r"\d{10}")


def is_ssn_shaped(value: str) -> bool:
    """True for ``NNN-NN-NNNN`` or nine digits that could be an SSN issued since June 2011.

    The whole (blank-trimmed) value must have the shape; a longer digit string is not an SSN.
    """
    match = _SSN_DASHED.fullmatch(value.strip()) or _SSN_PLAIN.fullmatch(value.strip())
    if match is None:
        return False
    area, group, serial = match.groups()
    return area != "000" and area != "666" and not area.startswith("9") and group != "00" and serial != "0000"


def is_military_shaped(value: str) -> bool:
    """True for exactly ten digits (a DoD ID / EDIPI shape; many MRNs share it)."""
    return _MILITARY.fullmatch(value.strip()) is not None


@dataclass(frozen=True)
class ArchiveSpec:
    """What to generate. Fractions are turned into exact counts (rounded), not probabilities."""

    patients: int = 50
    studies_per_patient: tuple[int, int] = (1, 3)
    """Inclusive range."""
    series_per_study: tuple[int, int] = (1, 3)
    instances_per_series: tuple[int, int] = (1, 4)
    years: tuple[int, int] = (2009, 2024)
    """Inclusive range of study years."""
    modalities: tuple[str, ...] = ("CT", "MR", "CR", "US", "DX")
    ssn_fraction: float = 0.1
    """Patients whose PatientID is a valid SSN shape (dashed and plain alternate)."""
    military_fraction: float = 0.05
    """Patients whose PatientID is ten digits."""
    invalid_ssn_fraction: float = 0.05
    """Patients whose PatientID looks like an SSN but breaks a rule (area 666 ...)."""
    other_ids_ssn_fraction: float = 0.05
    """Patients with an ordinary PatientID but a valid SSN shape in OtherPatientIDs."""
    institution_fraction: float = 0.5
    """Studies whose instances carry InstitutionName."""
    undated_fraction: float = 0.02
    """Studies without a StudyDate: every other one has it empty, the rest lack the element."""
    busiest_day_fraction: float = 0.1
    """Studies put on one single day, so that no StudyDate range can split them."""
    seed: int = 1

    def __post_init__(self) -> None:
        for name in ("studies_per_patient", "series_per_study", "instances_per_series", "years"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"{name} must be an inclusive range of positive numbers, not {low, high}")
        if self.patients < 1 or not self.modalities:
            raise ValueError("an archive needs at least one patient and one modality")
        patient_share = self.ssn_fraction + self.military_fraction + self.invalid_ssn_fraction
        study_share = self.undated_fraction + self.busiest_day_fraction
        fractions = (patient_share, self.other_ids_ssn_fraction, self.institution_fraction, study_share)
        if not all(0.0 <= f <= 1.0 for f in fractions):
            raise ValueError("fractions must lie in [0, 1] (PatientID kinds and undated+busiest-day add up)")
        if not 1900 < self.years[0] <= self.years[1] < 10000:
            raise ValueError(f"years must be four-digit years, not {self.years}")


@dataclass(frozen=True)
class ArchiveTruth:
    """The exact census of a generated archive."""

    patients: int
    studies: int
    series: int
    instances: int
    modalities: dict[str, int]
    """Studies per modality; a study counts once for each distinct modality among its series
    (ModalitiesInStudy semantics)."""
    study_years: dict[int, int]
    """Studies per year of StudyDate; undated studies are not in here."""
    undated_studies: int
    ssn_shaped_patients: int
    """Distinct patients whose PatientID or any OtherPatientIDs value is a valid SSN shape."""
    military_shaped_patients: int
    """Distinct patients whose PatientID or any OtherPatientIDs value has ten digits."""
    studies_with_institution: int
    busiest_day: str
    """YYYYMMDD of the day holding the most studies (the earliest, on a tie)."""
    studies_on_busiest_day: int
    studies_per_day: dict[str, int] = field(repr=False)
    """Studies per StudyDate (YYYYMMDD): for tests that pick date ranges; never census output."""
    identifying_values: frozenset[str] = field(repr=False)
    """Every PatientName and each of its components, PatientID, OtherPatientIDs value,
    PatientBirthDate (YYYYMMDD) and AccessionNumber, as written in the files."""


def capped_archive_spec(seed: int = 2) -> ArchiveSpec:
    """An archive of over 3,000 studies (about 7,000 instances) for result-cap tests and benchmarks.

    About 300 studies share one day and about 125 have no StudyDate: with a cap of 100 answers
    per query, neither set can be counted without splitting on something other than the date.
    """
    return ArchiveSpec(
        patients=1250,
        studies_per_patient=(2, 3),
        series_per_study=(1, 2),
        instances_per_series=(1, 2),
        undated_fraction=0.04,
        busiest_day_fraction=0.1,
        seed=seed,
    )


def archive_files(out_dir: Path) -> list[Path]:
    """The files `generate_archive` wrote into ``out_dir``, in a stable order."""
    return sorted(out_dir.glob("*.dcm"))


@dataclass
class _Patient:
    name: str
    patient_id: str
    birth_date: str
    sex: str
    other_ids: list[str]


@dataclass
class _Study:
    patient: _Patient
    date: str | None
    """``None``: no StudyDate at all; ``""``: the element is there but empty."""
    modalities: list[str]
    """One per series."""
    instances: list[int]
    """Instance count per series."""
    institution: str | None = None
    study_id: str = ""
    accession: str = ""
    time: str = ""


def generate_archive(spec: ArchiveSpec, out_dir: Path) -> ArchiveTruth:
    """Write the archive for ``spec`` into ``out_dir`` (created if missing) and return its census.

    Files are named ``<study>_<series>_<instance>.dcm``; `archive_files` lists them.
    """
    rng = random.Random(spec.seed)
    root = f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, f'pacsaudit-testdata/{spec.seed}').int}"
    patients = _make_patients(spec, rng)
    studies = _make_studies(spec, rng, patients)
    out_dir.mkdir(parents=True, exist_ok=True)
    for study_no, study in enumerate(studies, start=1):
        _write_study(out_dir, root, study_no, study)
    return _truth(patients, studies)


def _code(number: int) -> str:
    """Four letters for ``number`` modulo 26**4."""
    letters = []
    for _ in range(4):
        number, digit = divmod(number, 26)
        letters.append(chr(ord("A") + digit))
    return "".join(reversed(letters))


def _valid_ssn(rng: random.Random, dashed: bool) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    digits = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
    return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}" if dashed else digits


def _invalid_ssn(rng: random.Random, index: int) -> str:
    """An SSN look-alike that breaks one rule, cycling through all of them."""
    rule = index % 5
    area = (0, 666, rng.randint(900, 999), rng.randint(1, 665), rng.randint(667, 899))[rule]
    group = 0 if rule == 3 else rng.randint(1, 99)
    serial = 0 if rule == 4 else rng.randint(1, 9999)
    digits = f"{area:03d}{group:02d}{serial:04d}"
    return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}" if index % 2 == 0 else digits


def _make_patients(spec: ArchiveSpec, rng: random.Random) -> list[_Patient]:
    n = spec.patients
    kinds = (
        ["ssn"] * round(n * spec.ssn_fraction)
        + ["military"] * round(n * spec.military_fraction)
        + ["invalid"] * round(n * spec.invalid_ssn_fraction)
    )
    kinds += ["mrn"] * (n - len(kinds))
    rng.shuffle(kinds)
    used: set[str] = set()
    patients: list[_Patient] = []
    first_birth, last_birth = dt.date(1930, 1, 1), dt.date(spec.years[0] - 4, 12, 31)
    name_base = rng.randrange(_CODES)
    counters: Counter[str] = Counter()
    for index, kind in enumerate(kinds):
        number = counters[kind]
        counters[kind] += 1
        while True:
            if kind == "ssn":
                patient_id = _valid_ssn(rng, dashed=number % 2 == 0)
            elif kind == "military":
                patient_id = str(rng.randint(10**9, 10**10 - 1))
            elif kind == "invalid":
                patient_id = _invalid_ssn(rng, number)
            else:
                patient_id = f"{rng.choice(_MRN_PREFIXES)}{rng.randint(0, 9_999_999):07d}"
            if patient_id not in used:
                used.add(patient_id)
                break
        family = rng.choice(_STEMS) + _code(name_base + index)
        given = rng.choice(_STEMS) + _code(rng.randrange(_CODES))
        middle = rng.choice(_STEMS) + _code(rng.randrange(_CODES))
        birth = first_birth + dt.timedelta(days=rng.randint(0, (last_birth - first_birth).days))
        patients.append(
            _Patient(
                name=f"{family}^{given}^{middle}",
                patient_id=patient_id,
                birth_date=birth.strftime("%Y%m%d"),
                sex=rng.choice("MFO"),
                other_ids=[],
            )
        )
    # SSNs hidden in OtherPatientIDs go to patients whose PatientID is ordinary, so a census that
    # ignores OtherPatientIDs is caught; every other one is the second of two values.
    ordinary = [p for p, kind in zip(patients, kinds, strict=True) if kind == "mrn"]
    n_other = min(round(n * spec.other_ids_ssn_fraction), len(ordinary))
    chosen = rng.sample(ordinary, n_other)
    for index, patient in enumerate(chosen):
        ssn = _valid_ssn(rng, dashed=index % 2 == 1)
        patient.other_ids = [ssn] if index % 2 == 0 else [f"INS{rng.randint(0, 99_999_999):08d}", ssn]
    # As many again get a harmless OtherPatientIDs, which must not be counted.
    rest = [p for p in ordinary if not p.other_ids]
    for patient in rng.sample(rest, min(n_other, len(rest))):
        patient.other_ids = [f"INS{rng.randint(0, 99_999_999):08d}"]
    return patients


def _make_studies(spec: ArchiveSpec, rng: random.Random, patients: list[_Patient]) -> list[_Study]:
    studies: list[_Study] = []
    for patient in patients:
        for _ in range(rng.randint(*spec.studies_per_patient)):
            primary = rng.choice(spec.modalities)
            n_series = rng.randint(*spec.series_per_study)
            modalities = [
                primary if rng.random() < 0.8 else rng.choice(spec.modalities) for _ in range(n_series)
            ]
            instances = [rng.randint(*spec.instances_per_series) for _ in range(n_series)]
            studies.append(_Study(patient=patient, date=None, modalities=modalities, instances=instances))
    n = len(studies)
    first_day, last_day = dt.date(spec.years[0], 1, 1), dt.date(spec.years[1], 12, 31)
    span = (last_day - first_day).days
    busiest = first_day + dt.timedelta(days=rng.randint(span // 4, 3 * span // 4))
    order = list(range(n))
    rng.shuffle(order)
    n_undated = round(n * spec.undated_fraction)
    n_busiest = round(n * spec.busiest_day_fraction)
    undated = order[:n_undated]
    on_busiest = set(order[n_undated : n_undated + n_busiest])
    for rank, index in enumerate(undated):
        studies[index].date = "" if rank % 2 == 0 else None
    study_ids = rng.sample(range(100_000, 1_000_000), n)
    accessions = rng.sample(range(10**7), n)
    with_institution = set(rng.sample(range(n), round(n * spec.institution_fraction)))
    undated_set = set(undated)
    for index, study in enumerate(studies):
        if index not in undated_set:
            day = busiest if index in on_busiest else first_day + dt.timedelta(days=rng.randint(0, span))
            study.date = day.strftime("%Y%m%d")
        study.time = f"{rng.randint(7, 19):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}"
        study.study_id = str(study_ids[index])
        study.accession = f"ACC{accessions[index]:07d}"
        if index in with_institution:
            study.institution = rng.choice(_INSTITUTIONS)
    return studies


def _write_study(out_dir: Path, root: str, study_no: int, study: _Study) -> None:
    patient = study.patient
    study_uid = f"{root}.1.{study_no}"
    for series_no, (modality, count) in enumerate(zip(study.modalities, study.instances, strict=True), 1):
        series_uid = f"{root}.2.{study_no}.{series_no}"
        sop_class = CT_IMAGE_STORAGE if modality == "CT" else SECONDARY_CAPTURE_IMAGE_STORAGE
        # Elements in ascending tag order, as explicit VR little endian requires.
        head = [(0x0008, 0x0016, "UI", sop_class)]
        middle: list[tuple[int, int, str, str]] = []
        if study.date is not None:
            middle.append((0x0008, 0x0020, "DA", study.date))
        middle += [
            (0x0008, 0x0030, "TM", study.time),
            (0x0008, 0x0050, "SH", study.accession),
            (0x0008, 0x0060, "CS", modality),
        ]
        if study.institution is not None:
            middle.append((0x0008, 0x0080, "LO", study.institution))
        middle += [
            (0x0010, 0x0010, "PN", patient.name),
            (0x0010, 0x0020, "LO", patient.patient_id),
            (0x0010, 0x0030, "DA", patient.birth_date),
            (0x0010, 0x0040, "CS", patient.sex),
        ]
        if patient.other_ids:
            middle.append((0x0010, 0x1000, "LO", "\\".join(patient.other_ids)))
        middle += [
            (0x0020, 0x000D, "UI", study_uid),
            (0x0020, 0x000E, "UI", series_uid),
            (0x0020, 0x0010, "SH", study.study_id),
            (0x0020, 0x0011, "IS", str(series_no)),
        ]
        encoded_head = b"".join(_element(*e) for e in head)
        encoded_middle = b"".join(_element(*e) for e in middle)
        for instance_no in range(1, count + 1):
            sop_instance = f"{root}.3.{study_no}.{series_no}.{instance_no}"
            data = b"".join(
                [
                    _file_meta(sop_class, sop_instance),
                    encoded_head,
                    _element(0x0008, 0x0018, "UI", sop_instance),
                    encoded_middle,
                    _element(0x0020, 0x0013, "IS", str(instance_no)),
                ]
            )
            (out_dir / f"{study_no:05d}_{series_no:02d}_{instance_no:02d}.dcm").write_bytes(data)


def _element(group: int, element: int, vr: str, value: str) -> bytes:
    """One explicit VR little endian element with a 16-bit length (every VR written here has one).

    Values are padded to even length: UIDs with NUL, text with a space (PS3.5 6.2).
    """
    raw = value.encode("ascii")
    if len(raw) % 2:
        raw += b"\0" if vr == "UI" else b" "
    return struct.pack("<HH2sH", group, element, vr.encode("ascii"), len(raw)) + raw


def _file_meta(sop_class: str, sop_instance: str) -> bytes:
    """Preamble, ``DICM`` and the group 2 File Meta Information (PS3.10 7.1)."""
    body = b"".join(
        [
            # (0002,0001) FileMetaInformationVersion: OB has a reserved field and a 32-bit length.
            struct.pack("<HH2sHI", 0x0002, 0x0001, b"OB", 0, 2) + b"\0\1",
            _element(0x0002, 0x0002, "UI", sop_class),
            _element(0x0002, 0x0003, "UI", sop_instance),
            _element(0x0002, 0x0010, "UI", EXPLICIT_VR_LITTLE_ENDIAN),
            _element(0x0002, 0x0012, "UI", _IMPLEMENTATION_CLASS_UID),
            _element(0x0002, 0x0013, "SH", _IMPLEMENTATION_VERSION_NAME),
        ]
    )
    group_length = struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, len(body))
    return bytes(128) + b"DICM" + group_length + body


def _truth(patients: list[_Patient], studies: list[_Study]) -> ArchiveTruth:
    modalities: Counter[str] = Counter()
    years: Counter[int] = Counter()
    days: Counter[str] = Counter()
    for study in studies:
        modalities.update(set(study.modalities))
        if study.date:
            years[int(study.date[:4])] += 1
            days[study.date] += 1
    busiest_day, on_busiest = min(days.items(), key=lambda item: (-item[1], item[0])) if days else ("", 0)
    identifying: set[str] = set()
    for patient in patients:
        identifying.update([patient.name, *patient.name.split("^"), patient.patient_id, patient.birth_date])
        identifying.update(patient.other_ids)
    identifying.update(study.accession for study in studies)
    return ArchiveTruth(
        patients=len(patients),
        studies=len(studies),
        series=sum(len(study.modalities) for study in studies),
        instances=sum(sum(study.instances) for study in studies),
        modalities=dict(sorted(modalities.items())),
        study_years=dict(sorted(years.items())),
        undated_studies=sum(1 for study in studies if not study.date),
        ssn_shaped_patients=sum(
            1 for p in patients if any(is_ssn_shaped(v) for v in [p.patient_id, *p.other_ids])
        ),
        military_shaped_patients=sum(
            1 for p in patients if any(is_military_shaped(v) for v in [p.patient_id, *p.other_ids])
        ),
        studies_with_institution=sum(1 for study in studies if study.institution is not None),
        busiest_day=busiest_day,
        studies_on_busiest_day=on_busiest,
        studies_per_day=dict(sorted(days.items())),
        identifying_values=frozenset(identifying),
    )


def find_identifying_values(data: bytes, values: Iterable[str]) -> set[str]:
    """Which of ``values`` occur in ``data``: the privacy test's search.

    Letters match case-insensitively (a program could have upper- or lower-cased a name).
    A value made of digits and dashes only counts where no digit touches it on either side,
    because long digit runs in ordinary output (timestamps, hashes, floats) would otherwise
    contain some eight-digit birth date by chance.
    """
    haystack = data.lower()
    found: set[str] = set()
    for value in values:
        needle = value.lower().encode("utf-8")
        if not needle:
            continue
        numeric = all(ch.isdigit() or ch == "-" for ch in value)
        start = haystack.find(needle)
        while start != -1:
            end = start + len(needle)
            if not numeric or not (_is_digit_at(haystack, start - 1) or _is_digit_at(haystack, end)):
                found.add(value)
                break
            start = haystack.find(needle, start + 1)
    return found


def _is_digit_at(data: bytes, index: int) -> bool:
    return 0 <= index < len(data) and 0x30 <= data[index] <= 0x39
