"""identify(): golden pairs from real software, unknown pairs, hostile input.

The golden pairs are the Implementation Class UID / Version Name that real software sent or
writes, each with where it was seen. The observed ones are re-checked against live servers in
test_observed_servers.py.
"""

from __future__ import annotations

import pynetdicom
import pytest

from pacsaudit.fingerprint import Identification, identify

# (uid, version name) -> expected identification; comment = where the pair was seen.
GOLDEN: list[tuple[str, str, Identification]] = [
    # Observed on loopback: Debian DCMTK 3.6.7 dcmqrscp and storescp (echoscu -d, pynetdicom SCU).
    (
        "1.2.276.0.7230010.3.0.3.6.7",
        "OFFIS_DCMTK_367",
        Identification("DCMTK-based", "OFFIS", "3.6.7", "low"),
    ),
    # Observed on loopback: Debian Orthanc 1.10.1 sends DCMTK's pair verbatim.
    (
        "1.2.276.0.7230010.3.0.3.6.7",
        "OFFIS_DCMTK_367",
        Identification("DCMTK-based", "OFFIS", "3.6.7", "low"),
    ),
    # DCMTK 3.1.1 used hyphens (pydicom test file ExplVR_BigEnd.dcm).
    (
        "1.2.276.0.7230010.3.0.3.1.1",
        "OFFIS-DCMTK-311",
        Identification("DCMTK-based", "OFFIS", "3.1.1", "low"),
    ),
    # Observed on loopback: `python3 -m pynetdicom echoscp` 3.0.4.
    (
        "1.2.826.0.1.3680043.9.3811.3.0.4",
        "PYNETDICOM_304",
        Identification("pynetdicom-based", "pydicom project", "3.0.4", "low"),
    ),
    # pynetdicom3 0.9.1 (__init__.py of that release).
    (
        "1.2.826.0.1.3680043.9.3811.0.9.1",
        "PYNETDICOM3_091",
        Identification("pynetdicom3-based", "pydicom project", "0.9.1", "low"),
    ),
    # dcm4che 5 (dcm4chee-arc-light) and dcm4che2 (Implementation.java; recorded dcmecho RQ).
    (
        "1.2.40.0.13.1.3",
        "dcm4che-5.23.2",
        Identification("dcm4che 5-based (e.g. dcm4chee-arc-light)", "dcm4che.org", "5.23.2", "low"),
    ),
    ("1.2.40.0.13.1.1", "dcm4che-2.0", Identification("dcm4che2-based", "dcm4che.org", "2.0", "low")),
    (
        "1.2.40.0.13.1.1.1",
        "dcm4che-1.4.33",
        Identification("dcm4che 1.x-based (e.g. dcm4chee 2.x archive)", "dcm4che.org", "1.4.33", "low"),
    ),
    ("1.2.40.0.13.1.1.1", "dcm4che-1.4-JP", Identification("RSNA CTP/MIRC", "RSNA", None, "high")),
    # fo-dicom (DicomImplementation.cs), real file meta of fo-dicom 5.0.4.
    (
        "1.3.6.1.4.1.30071.8",
        "fo-dicom 5.0.4",
        Identification("fo-dicom-based", "fo-dicom contributors", "5.0.4", "low"),
    ),
    # Conquest (dicomlib/version.h).
    (
        "1.2.826.0.1.3680043.2.135.1066.101",
        "1.5.0/WIN32",
        Identification("Conquest DICOM Server", "Conquest project (NKI)", "1.5.0", "high"),
    ),
    # Horos/OsiriX (its DCMTK fork's dcuid.h).
    (
        "1.2.276.0.7238010.5.0.3.5.4",
        "OSIRIX",
        Identification("OsiriX/Horos", "Pixmeo / Horos Project", None, "high"),
    ),
    # GDCM (gdcmFileMetaInformation.cxx).
    (
        "1.2.826.0.1.3680043.2.1143.107.104.103.115.3.0.5",
        "GDCM 3.0.5",
        Identification("GDCM-based", "Grassroots DICOM (GDCM)", "3.0.5", "low"),
    ),
    # ClearCanvas (DicomImplementation.cs).
    (
        "1.3.6.1.4.1.25403.1.1.1",
        "Dicom 0.1",
        Identification("ClearCanvas-based (Workstation, ImageServer)", "ClearCanvas", None, "low"),
    ),
    # Siemens MR (real file meta) and a Merge-based product (real file meta, fo-dicom GH223.dcm).
    (
        "1.3.12.2.1107.5.2",
        "MR_VB17A",
        Identification("Siemens MAGNETOM (syngo MR)", "Siemens Healthineers", "VB17A", "high"),
    ),
    (
        "2.16.840.1.114151.100.1.1",
        "MergeCOM3_390",
        Identification("MergeCOM-3-based", "Merge Healthcare (Merative)", "3.9.0", "low"),
    ),
]


@pytest.mark.parametrize(("uid", "name", "expected"), GOLDEN, ids=[f"{u}|{n}" for u, n, _ in GOLDEN])
def test_golden_pairs_are_identified(uid: str, name: str, expected: Identification) -> None:
    assert identify(uid, name) == expected


def test_installed_pynetdicom_identifies_itself() -> None:
    # Given the identity this very pynetdicom puts in every association it makes
    uid = str(pynetdicom.PYNETDICOM_IMPLEMENTATION_UID)
    name = pynetdicom.PYNETDICOM_IMPLEMENTATION_VERSION

    # When / Then: it is pynetdicom, at the installed version
    found = identify(uid, name)
    assert found is not None
    assert found.product == "pynetdicom-based"
    assert found.version == ".".join(pynetdicom.__version__.split(".")[:3])


def test_vendor_root_alone_names_the_vendor_with_low_confidence() -> None:
    found = identify("1.2.840.113619.6.999", None)
    assert found == Identification("GE HealthCare product", "GE HealthCare", None, "low")


def test_version_name_alone_can_identify() -> None:
    found = identify(None, "OFFIS_DCMTK_365")
    assert found == Identification("DCMTK-based", "OFFIS", "3.6.5", "low")


def test_version_from_uid_tail_is_not_taken_from_garbage() -> None:
    # A DCMTK-looking UID whose tail is not digits and dots: still DCMTK, but no version.
    found = identify("1.2.276.0.7230010.3.0.x.y", "OFFIS_DCMTK_367")
    assert found is not None
    assert found.product == "DCMTK-based"
    assert found.version is None


@pytest.mark.parametrize(
    ("uid", "name"),
    [
        (None, None),
        ("", ""),
        ("  ", "\x00\x00"),
        ("1.2.3.4.5.6.7.8.9", "UNKNOWN_SCP"),
        ("2.25.205477355541376756296906656564391676347", "NMAP_NSE"),
        ("1.2.276.0.7230010.3", None),  # DCMTK's root without the ".0." implementation branch
    ],
)
def test_unknown_or_empty_pairs_give_none(uid: str | None, name: str | None) -> None:
    assert identify(uid, name) is None


def test_known_prefix_with_empty_tail_makes_up_no_version() -> None:
    found = identify("1.2.276.0.7230010.3.0.", "NOT_DCMTK")
    assert found is not None
    assert found.product == "DCMTK-based"
    assert found.version is None


@pytest.mark.parametrize(
    ("uid", "name"),
    [
        ("1.2.276.0.7230010.3.0.3.6.7\x00", "OFFIS_DCMTK_367 "),  # UI pads with NUL, SH with space
        ("  1.2.276.0.7230010.3.0.3.6.7", "\x00OFFIS_DCMTK_367\x00\x00"),
        ("1.2.276.0.7230010.3.0.3.6.7\r\n", "offis_dcmtk_367"),  # version names match case-insensitively
    ],
)
def test_padding_and_case_are_ignored(uid: str, name: str) -> None:
    assert identify(uid, name) == Identification("DCMTK-based", "OFFIS", "3.6.7", "low")


@pytest.mark.parametrize(
    ("uid", "name"),
    [
        ("A" * 64, "B" * 16),
        ("9" * 64, "Z" * 64),
        ("\u00e9\u00e8\u4e2d\u6587", "\u00fc\u00df\U0001f600"),
        ("1.2.840.10008.\udcff", "\udcff\udcfe"),  # lone surrogates from a lenient decoder
        ("\x00" * 64, "\x00" * 16),
        ("1." * 5000, "A" * 100_000),
        ("((((((((((((((((((((a*)*)*)*)*)*)*)*)*)*)*", "(a+)+$" * 1000),
    ],
)
def test_hostile_input_never_raises_and_is_not_identified(uid: str, name: str) -> None:
    assert identify(uid, name) is None


def test_non_ascii_digits_do_not_become_a_version() -> None:
    # Arabic-Indic digits are \d in Unicode regexes; the signatures are ASCII-only.
    assert identify(None, "OFFIS_DCMTK_\u0663\u0666\u0667") is None


def test_hostile_tail_on_a_known_prefix_yields_no_version() -> None:
    found = identify("1.2.826.0.1.3680043.9.3811." + "9" * 60, "PYNETDICOM_999")
    assert found is not None
    assert found.product == "pynetdicom-based"
    assert found.version is None


def test_non_string_input_is_treated_as_absent() -> None:
    # A decoder bug upstream must not crash the fingerprint stage.
    assert identify(b"1.2.276.0.7230010.3.0.3.6.7", 367) is None  # type: ignore[arg-type]


def test_identification_is_frozen() -> None:
    found = identify("1.2.276.0.7230010.3.0.3.6.7", "OFFIS_DCMTK_367")
    assert found is not None
    with pytest.raises(AttributeError):
        found.product = "Orthanc"  # type: ignore[misc]
