"""Identifier shapes: SSN rules since 2011 randomisation, 10-digit DoD-ID-like numbers."""

from __future__ import annotations

import pytest

from pacsaudit.probes.shapes import is_military_id_shaped, is_ssn_shaped, split_multi_value


@pytest.mark.parametrize("value", ["078-05-1120", "078051120", "123-45-6789", " 899-99-9999 ", "772-12-0001"])
def test_valid_ssn_shapes(value: str) -> None:
    assert is_ssn_shaped(value)


@pytest.mark.parametrize(
    "value",
    [
        "000-12-3456",  # area 000
        "666-12-3456",  # area 666
        "900-12-3456",  # areas 900-999 (ITINs, never SSNs)
        "999123456",
        "123-00-4567",  # group 00
        "123-45-0000",  # serial 0000
        "123-456789",  # one hyphen: not the 3-2-4 shape
        "12345678",  # 8 digits
        "1234567890",  # 10 digits
        "ABC-DE-FGHI",
        "",
    ],
)
def test_invalid_ssn_shapes(value: str) -> None:
    assert not is_ssn_shaped(value)


def test_military_id_shape_is_ten_digits() -> None:
    assert is_military_id_shaped("1234567890")
    assert not is_military_id_shaped("123456789")
    assert not is_military_id_shaped("12345678901")
    assert not is_military_id_shaped("12345-67890")


def test_multi_values_split_on_backslash() -> None:
    assert split_multi_value("A\\\\ B \\C") == ["A", "B", "C"]
    assert split_multi_value("") == []
