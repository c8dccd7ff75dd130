"""AE-title dictionaries: sizes, validity, no duplicates, the defaults that must be there."""

from __future__ import annotations

from importlib import resources

import pytest

from pacsaudit.fingerprint import called_ae_dictionary, calling_ae_dictionary, is_valid_ae_title
from pacsaudit.fingerprint.ae_titles import parse_ae_titles


def _raw_titles(file_name: str) -> list[str]:
    """The titles as written, read without the loader (so a loader bug cannot hide a duplicate)."""
    text = (resources.files("pacsaudit") / "data" / file_name).read_text("ascii")
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def test_called_dictionary_is_large_and_matches_the_file() -> None:
    titles = called_ae_dictionary()
    assert len(titles) >= 120
    assert list(titles) == _raw_titles("called_ae_titles.txt")


def test_calling_dictionary_is_short_and_matches_the_file() -> None:
    titles = calling_ae_dictionary()
    assert 15 <= len(titles) <= 25
    assert list(titles) == _raw_titles("calling_ae_titles.txt")


@pytest.mark.parametrize("file_name", ["called_ae_titles.txt", "calling_ae_titles.txt"])
def test_files_have_no_duplicate_and_only_valid_titles(file_name: str) -> None:
    titles = _raw_titles(file_name)
    assert len(titles) == len(set(titles))
    invalid = [
        t for t in titles if not (1 <= len(t) <= 16 and t.isascii() and t.isprintable() and "\\" not in t)
    ]
    assert not invalid


def test_shipped_defaults_come_first() -> None:
    titles = called_ae_dictionary()
    # Observed or read in source: Orthanc, DCMTK/pynetdicom SCUs, dcm4chee-arc, Conquest.
    assert titles[:4] == ("ORTHANC", "ANY-SCP", "DCM4CHEE", "CONQUESTSRV1")
    for default in ("STORESCP", "DCMQRSCP", "ACME_STORE", "COMMON", "OSIRIX", "HOROS", "CLEARCANVAS"):
        assert default in titles
    for dcm4chee in ("DCM4CHEE_ADMIN", "DCM4CHEE_TRASH", "IOCM_REGULAR_USE"):
        assert dcm4chee in titles
    assert titles.index("ORTHANC") < titles.index("PACS")


def test_calling_dictionary_has_the_tool_defaults() -> None:
    titles = calling_ae_dictionary()
    for default in ("ANY-SCU", "STORESCU", "FINDSCU", "ECHOSCU", "MOVESCU", "GETSCU", "OSIRIX", "WEASIS_AE"):
        assert default in titles


def test_loaders_are_cached() -> None:
    assert called_ae_dictionary() is called_ae_dictionary()
    assert calling_ae_dictionary() is calling_ae_dictionary()


@pytest.mark.parametrize("title", ["ORTHANC", "ANY-SCP", "A", "X" * 16, "MY SCP", "a_b.c-d"])
def test_valid_titles(title: str) -> None:
    assert is_valid_ae_title(title)


@pytest.mark.parametrize(
    "title", ["", " ", "X" * 17, "BACK\\SLASH", "TAB\tX", "NUL\x00", "CAF\u00c9", " LEAD", "TRAIL "]
)
def test_invalid_titles(title: str) -> None:
    assert not is_valid_ae_title(title)


def test_parser_rejects_duplicates_and_invalid_titles_but_keeps_comments_out() -> None:
    assert parse_ae_titles("# header\nORTHANC  # Orthanc default\n\nPACS\n") == ("ORTHANC", "PACS")
    with pytest.raises(ValueError, match="duplicate"):
        parse_ae_titles("PACS\nPACS\n")
    with pytest.raises(ValueError, match="invalid"):
        parse_ae_titles("WAY_TOO_LONG_AE_TITLE\n")
