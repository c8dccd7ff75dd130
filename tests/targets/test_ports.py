"""`parse_ports`: what users type after `-p`."""

from __future__ import annotations

import pytest

from pacsaudit.targets.ports import parse_port, parse_ports


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("104", [104]),
        ("104,11112,4242", [104, 11112, 4242]),
        ("4242,104", [4242, 104]),
        (" 104 , 11112 ", [104, 11112]),
        ("100-103", [100, 101, 102, 103]),
        ("7-7", [7]),
        ("11112,100-102,104", [11112, 100, 101, 102, 104]),
        ("1,65535", [1, 65535]),
    ],
)
def test_parse_ports_keeps_the_order_typed(spec: str, expected: list[int]) -> None:
    assert parse_ports(spec) == expected


def test_parse_ports_drops_duplicates_keeping_the_first_place() -> None:
    assert parse_ports("4242,104,104,100-105,4242") == [4242, 104, 100, 101, 102, 103, 105]


def test_parse_ports_accepts_every_port() -> None:
    ports = parse_ports("1-65535")

    assert len(ports) == 65535
    assert (ports[0], ports[-1]) == (1, 65535)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty item"),
        ("104,,4242", "empty item"),
        ("104,", "empty item"),
        ("0", "out of range"),
        ("65536", "out of range"),
        ("104,70000", "out of range"),
        ("abc", "not a port number: 'abc'"),
        ("+104", "not a port number"),
        ("-5", "not a port number: ''"),
        ("1-", "not a port number: ''"),
        ("1-2-3", "not a port number: '2-3'"),
        ("1024-1", "range '1024-1' runs backwards"),
        ("١٠٤", "not a port number"),
    ],
)
def test_parse_ports_rejects_with_a_message_naming_the_problem(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match="port") as caught:
        parse_ports(spec)

    assert message in str(caught.value)
    assert repr(spec) in str(caught.value)


def test_parse_port_strips_blanks_and_validates() -> None:
    assert parse_port(" 4242 ") == 4242
    with pytest.raises(ValueError, match="out of range"):
        parse_port("0")
