"""`ExclusionList`: what must never receive a packet, checked cheaply."""

from __future__ import annotations

import socket
import time
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest

from pacsaudit.targets.exclusions import ExclusionList
from pacsaudit.targets.specs import TargetSpecError


def v4(text: str) -> int:
    return int(IPv4Address(text))


def test_an_empty_list_excludes_nothing() -> None:
    exclusions = ExclusionList()

    assert not exclusions
    assert len(exclusions) == 0
    assert not exclusions.contains_ip("10.0.0.1")
    assert not exclusions.contains_hostname("pacs.example.org")
    assert list(exclusions.allowed_intervals(4, 5, 9)) == [(5, 9)]


@pytest.mark.parametrize(
    ("spec", "inside", "outside"),
    [
        ("10.0.0.5", ["10.0.0.5"], ["10.0.0.4", "10.0.0.6"]),
        ("10.1.0.0/16", ["10.1.0.0", "10.1.128.7", "10.1.255.255"], ["10.0.255.255", "10.2.0.0"]),
        ("192.168.5.10-40", ["192.168.5.10", "192.168.5.40"], ["192.168.5.9", "192.168.5.41"]),
        ("10.0.0.250-10.0.1.5", ["10.0.0.255", "10.0.1.0"], ["10.0.0.249", "10.0.1.6"]),
        ("2001:db8::/64", ["2001:db8::", "2001:db8::ffff:ffff:ffff:ffff"], ["2001:db8:0:1::"]),
        ("[2001:db8::1]", ["2001:db8::1"], ["2001:db8::2", "0.0.0.1"]),
        ("::1-::3", ["::2"], ["::4", "0.0.0.2"]),
    ],
)
def test_contains_ip_follows_each_spec_form(spec: str, inside: list[str], outside: list[str]) -> None:
    exclusions = ExclusionList.from_specs([spec])

    assert [exclusions.contains_ip(ip) for ip in inside] == [True] * len(inside)
    assert [exclusions.contains_ip(ip) for ip in outside] == [False] * len(outside)


def test_contains_ip_takes_address_objects_too() -> None:
    exclusions = ExclusionList.from_specs(["10.0.0.0/24", "2001:db8::/32"])

    assert exclusions.contains_ip(IPv4Address("10.0.0.9"))
    assert exclusions.contains_ip(IPv6Address("2001:db8::9"))
    assert not exclusions.contains_ip(IPv4Address("10.0.1.9"))


def test_an_ipv4_mapped_ipv6_address_is_excluded_as_its_ipv4_address() -> None:
    exclusions = ExclusionList.from_specs(["10.0.0.0/24"])

    assert exclusions.contains_ip("::ffff:10.0.0.9")
    assert not exclusions.contains_ip("::ffff:10.0.1.9")


def test_contains_ip_rejects_what_is_not_an_address() -> None:
    with pytest.raises(ValueError, match="does not appear to be"):
        ExclusionList().contains_ip("pacs.example.org")


def test_hostnames_match_case_insensitively_and_ignore_a_trailing_dot() -> None:
    exclusions = ExclusionList.from_specs(["PACS.Example.org"])

    assert exclusions.contains_hostname("pacs.example.org")
    assert exclusions.contains_hostname("pacs.EXAMPLE.org.")
    assert not exclusions.contains_hostname("pacs2.example.org")
    assert not exclusions.contains_hostname("example.org")


def test_a_hostname_excludes_no_address_by_itself() -> None:
    # Resolution is the engine's job: a name in the list never becomes an interval here.
    exclusions = ExclusionList.from_specs(["localhost"])

    assert not exclusions.contains_ip("127.0.0.1")
    assert len(exclusions) == 1


def test_the_engine_checks_what_a_name_resolves_to() -> None:
    # Given an excluded loopback range and a target typed as `localhost`
    exclusions = ExclusionList.from_specs(["127.0.0.0/8,::1"])

    # When the name is resolved (from /etc/hosts: no packet leaves)
    infos = socket.getaddrinfo("localhost", 104, proto=socket.IPPROTO_TCP)
    addresses = {str(info[4][0]) for info in infos}

    # Then every address it resolves to is excluded
    assert addresses
    assert all(ip_address(address).is_loopback for address in addresses)
    assert all(exclusions.contains_ip(address) for address in addresses)


def test_from_specs_splits_commas_and_blanks_like_repeated_exclude_options() -> None:
    exclusions = ExclusionList.from_specs(["10.0.0.1,10.0.0.3", "  10.0.0.5 , pacs.example.org", ""])

    assert [exclusions.contains_ip(f"10.0.0.{n}") for n in range(1, 7)] == [
        True,
        False,
        True,
        False,
        True,
        False,
    ]
    assert exclusions.contains_hostname("pacs.example.org")


def test_overlapping_and_adjacent_intervals_merge() -> None:
    exclusions = ExclusionList.from_specs(
        ["10.0.0.0/25", "10.0.0.128/25", "10.0.0.100-10.0.1.5", "10.9.0.0/16", "10.9.3.3"]
    )

    assert len(exclusions) == 2
    assert list(exclusions.allowed_intervals(4, v4("10.0.0.0"), v4("10.9.255.255"))) == [
        (v4("10.0.1.6"), v4("10.8.255.255"))
    ]


def test_an_exclusion_with_a_port_is_refused() -> None:
    with pytest.raises(TargetSpecError, match="exclusions cover whole hosts"):
        ExclusionList.from_specs(["10.0.0.1:104"])


def test_a_bad_exclusion_names_the_spec() -> None:
    with pytest.raises(TargetSpecError, match=r"'10\.0\.0\.999'"):
        ExclusionList.from_specs(["10.0.0.1,10.0.0.999"])


def test_from_file_reads_the_target_file_format(tmp_path: Path) -> None:
    path = tmp_path / "do-not-scan.txt"
    path.write_text("# radiology VLAN\n10.5.0.0/16\n\nmri.example.org  # vendor managed\n2001:db8::/48\n")

    exclusions = ExclusionList.from_file(path)

    assert exclusions.contains_ip("10.5.200.1")
    assert not exclusions.contains_ip("10.6.0.1")
    assert exclusions.contains_ip("2001:db8:0:ffff::1")
    assert exclusions.contains_hostname("MRI.example.org")
    assert len(exclusions) == 3
    assert ExclusionList.from_file(str(path)).contains_ip("10.5.0.0")


def test_from_file_reports_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "do-not-scan.txt"
    path.write_text("10.5.0.0/16\n10.5.0.0/99\n")

    with pytest.raises(TargetSpecError, match="line 2"):
        ExclusionList.from_file(path)


def test_merge_keeps_both_and_changes_neither() -> None:
    left = ExclusionList.from_specs(["10.0.0.0/24", "a.example.org"])
    right = ExclusionList.from_specs(["10.0.1.0/24", "::1", "b.example.org"])

    merged = left.merge(right)

    assert merged.contains_ip("10.0.0.1")
    assert merged.contains_ip("10.0.1.1")
    assert merged.contains_ip("::1")
    assert merged.contains_hostname("a.example.org")
    assert merged.contains_hostname("b.example.org")
    assert len(merged) == 4  # the two /24s are adjacent and merge into one interval
    assert (len(left), len(right)) == (2, 3)
    assert not left.contains_ip("10.0.1.1")


@pytest.mark.parametrize(
    ("excluded", "first", "last", "allowed"),
    [
        ([], "10.0.0.0", "10.0.0.9", [("10.0.0.0", "10.0.0.9")]),
        (["10.0.0.0/8"], "10.0.0.0", "10.255.255.255", []),
        (["10.0.0.0/9"], "10.0.0.0", "10.255.255.255", [("10.128.0.0", "10.255.255.255")]),
        (["10.0.0.3-5"], "10.0.0.0", "10.0.0.9", [("10.0.0.0", "10.0.0.2"), ("10.0.0.6", "10.0.0.9")]),
        (["10.0.0.0-4", "10.0.0.8"], "10.0.0.2", "10.0.0.9", [("10.0.0.5", "10.0.0.7"), ("10.0.0.9",) * 2]),
        (["9.0.0.0/8", "11.0.0.0/8"], "10.0.0.0", "10.0.0.255", [("10.0.0.0", "10.0.0.255")]),
        (["10.0.0.5"], "10.0.0.5", "10.0.0.5", []),
        (["10.0.0.0/30", "10.0.0.8/30"], "10.0.0.0", "10.0.0.11", [("10.0.0.4", "10.0.0.7")]),
    ],
)
def test_allowed_intervals_are_the_gaps_between_exclusions(
    excluded: list[str], first: str, last: str, allowed: list[tuple[str, str]]
) -> None:
    exclusions = ExclusionList.from_specs(excluded)

    gaps = list(exclusions.allowed_intervals(4, v4(first), v4(last)))

    assert gaps == [(v4(low), v4(high)) for low, high in allowed]


def test_allowed_intervals_keep_the_families_apart() -> None:
    exclusions = ExclusionList.from_specs(["0.0.0.0/0"])

    assert list(exclusions.allowed_intervals(4, 0, 10)) == []
    assert list(exclusions.allowed_intervals(6, 0, 10)) == [(0, 10)]
    with pytest.raises(ValueError, match="not an IP version"):
        list(exclusions.allowed_intervals(5, 0, 10))


def test_contains_ip_stays_cheap_with_many_intervals() -> None:
    # Given 65 536 disjoint single-address exclusions (every other address of a /15)
    exclusions = ExclusionList((4, v4("10.0.0.0") + 2 * n, v4("10.0.0.0") + 2 * n) for n in range(65536))
    probes = [IPv4Address(v4("10.0.0.0") + n) for n in range(100_000)]

    # When 100 000 addresses are checked
    started = time.perf_counter()
    hits = sum(exclusions.contains_ip(address) for address in probes)
    elapsed = time.perf_counter() - started

    # Then exactly the even ones are excluded, at bisect speed
    assert hits == 50_000
    assert len(exclusions) == 65536
    assert elapsed < 1.0
