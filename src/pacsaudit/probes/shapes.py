"""Shapes of sensitive identifiers: what a value looks like, never what it is.

US SSNs since the 2011 randomisation: any 9 digits (optionally 3-2-4 with hyphens) except
area 000, 666 or 900-999, group 00, serial 0000. "Military-ID-like" is 10 digits (the DoD ID
number's shape), which many hospital MRNs share too: both are counted and labelled as shapes.
"""

from __future__ import annotations

import re

__all__ = ["is_military_id_shaped", "is_ssn_shaped", "split_multi_value"]

_SSN = re.compile(r"(\d{3})-?(\d{2})-?(\d{4})")
_TEN_DIGITS = re.compile(r"\d{10}")


def is_ssn_shaped(value: str) -> bool:
    """A valid-looking US Social Security number (post-2011 rules), with or without hyphens."""
    match = _SSN.fullmatch(value.strip())
    if match is None:
        return False
    area, group, serial = match.groups()
    if value.strip().count("-") not in (0, 2):
        return False
    return area != "000" and area != "666" and not area.startswith("9") and group != "00" and serial != "0000"


def is_military_id_shaped(value: str) -> bool:
    """Ten digits: the shape of a DoD ID number (EDIPI), and of many MRNs."""
    return _TEN_DIGITS.fullmatch(value.strip()) is not None


def split_multi_value(value: str) -> list[str]:
    """A DICOM multi-valued string (backslash-separated) as its non-empty values."""
    return [part for part in (p.strip() for p in value.split("\\")) if part]
