"""`parse_spec` and target files: every form a user may type, and the errors for the rest."""

from __future__ import annotations

import io
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from pacsaudit.targets.specs import HOSTNAME, TargetSpec, TargetSpecError, iter_file_specs, parse_spec


def v4(text: str) -> int:
    return int(IPv4Address(text))


def v6(text: str) -> int:
    return int(IPv6Address(text))


@pytest.mark.parametrize(
    ("text", "version", "first", "last", "hostname", "port"),
    [
        ("10.0.0.1", 4, v4("10.0.0.1"), v4("10.0.0.1"), None, None),
        ("  10.0.0.1\n", 4, v4("10.0.0.1"), v4("10.0.0.1"), None, None),
        ("10.20.0.0/16", 4, v4("10.20.0.0"), v4("10.20.255.255"), None, None),
        ("10.20.3.4/16", 4, v4("10.20.0.0"), v4("10.20.255.255"), None, None),
        ("0.0.0.0/0", 4, 0, 2**32 - 1, None, None),
        ("10.0.0.7/32", 4, v4("10.0.0.7"), v4("10.0.0.7"), None, None),
        ("192.168.5.10-40", 4, v4("192.168.5.10"), v4("192.168.5.40"), None, None),
        ("192.168.5.10-10", 4, v4("192.168.5.10"), v4("192.168.5.10"), None, None),
        ("10.0.0.250-10.0.1.5", 4, v4("10.0.0.250"), v4("10.0.1.5"), None, None),
        ("2001:db8::1", 6, v6("2001:db8::1"), v6("2001:db8::1"), None, None),
        ("::1", 6, 1, 1, None, None),
        ("2001:db8::/64", 6, v6("2001:db8::"), v6("2001:db8::ffff:ffff:ffff:ffff"), None, None),
        ("2001:db8::1-2001:db8::1:0", 6, v6("2001:db8::1"), v6("2001:db8::1:0"), None, None),
        ("pacs.example.org", HOSTNAME, 0, 0, "pacs.example.org", None),
        ("PACS-01.Example.org.", HOSTNAME, 0, 0, "PACS-01.Example.org.", None),
        ("localhost", HOSTNAME, 0, 0, "localhost", None),
        ("pacs_srv", HOSTNAME, 0, 0, "pacs_srv", None),
        ("pacs.example.org:4242", HOSTNAME, 0, 0, "pacs.example.org", 4242),
        ("10.0.0.1:104", 4, v4("10.0.0.1"), v4("10.0.0.1"), None, 104),
        ("10.0.0.0/30:11112", 4, v4("10.0.0.0"), v4("10.0.0.3"), None, 11112),
        ("10.0.0.1-3:104", 4, v4("10.0.0.1"), v4("10.0.0.3"), None, 104),
        ("[2001:db8::1]:104", 6, v6("2001:db8::1"), v6("2001:db8::1"), None, 104),
        ("[::1]", 6, 1, 1, None, None),
        ("[2001:db8::/126]:4242", 6, v6("2001:db8::"), v6("2001:db8::3"), None, 4242),
    ],
)
def test_parse_spec_reads_every_form(
    text: str, version: int, first: int, last: int, hostname: str | None, port: int | None
) -> None:
    spec = parse_spec(text)

    assert (spec.version, spec.first, spec.last, spec.hostname, spec.port) == (
        version,
        first,
        last,
        hostname,
        port,
    )
    assert spec.text == text.strip()


def test_address_count_of_an_ipv6_slash_64_is_exact() -> None:
    assert parse_spec("2001:db8::/64").address_count == 2**64
    assert parse_spec("pacs.example.org").address_count == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty target spec"),
        ("10.0.0.256", "not an IP address, CIDR, range or hostname"),
        ("10.0.0", "not an IP address, CIDR, range or hostname"),
        ("010.0.0.1", "not an IP address, CIDR, range or hostname"),
        ("10.0.0.0/33", "not a valid CIDR"),
        ("10.0.0.0/", "not a valid CIDR"),
        ("pacs.example.org/24", "not a valid CIDR"),
        ("192.168.5.40-10", "last octet range must run from 40 up to 255"),
        ("192.168.5.10-256", "last octet range must run from 10 up to 255"),
        ("10.0.1.0-10.0.0.255", "range runs backwards"),
        ("2001:db8::9-2001:db8::1", "range runs backwards"),
        ("10.0.0.1-2001:db8::1", "range end must be an IPv4 address"),
        ("2001:db8::1-ff", "range end must be an IPv6 address"),
        ("10.0.0.1-x", "range end must be an IPv4 address"),
        ("pacs.example.org:0", "port out of range"),
        ("pacs.example.org:65536", "port out of range"),
        ("pacs.example.org:", "not a port number"),
        ("pacs.example.org:http", "not a port number"),
        ("[2001:db8::1]:", "not a port number"),
        ("[2001:db8::1", "'[' without ']'"),
        ("[2001:db8::1]104", "only ':port' may follow ']'"),
        ("[10.0.0.1]:104", "brackets are for IPv6 addresses only"),
        ("[pacs.example.org]", "brackets are for IPv6 addresses only"),
        ("fe80::1%eth0", "zone indices"),
        ("-pacs.example.org", "not an IP address"),
        ("pacs-.example.org", "not an IP address"),
        ("pacs..example.org", "not an IP address"),
        ("pacs example", "not an IP address"),
        ("pâcs.example.org", "not an IP address"),
        ("a" * 64 + ".org", "not an IP address"),
        (".".join(["a" * 60] * 5), "not an IP address"),
        ("host:80:90", "not an IP address"),
    ],
)
def test_parse_spec_rejects_with_the_spec_and_the_reason(text: str, message: str) -> None:
    with pytest.raises(TargetSpecError) as caught:
        parse_spec(text)

    assert message in str(caught.value)
    if text:
        assert repr(text) in str(caught.value)


def test_a_target_file_skips_comments_and_blanks_and_reads_several_specs_a_line(tmp_path: Path) -> None:
    # Given a list as people keep them: a BOM, comments, blank lines, CRLF, commas
    path = tmp_path / "targets.txt"
    path.write_bytes(
        "\ufeff# hospital A\r\n"
        "10.0.0.1\r\n"
        "\r\n"
        "   # indented comment\n"
        "pacs.example.org:4242   # the main archive\n"
        "10.0.1.0/30, [::1]:104\n"
        "\t192.168.5.10-12 \n".encode()
    )

    # When it is read
    specs = list(iter_file_specs(path))

    # Then every spec comes out in order, with its own port
    assert [spec.text for spec in specs] == [
        "10.0.0.1",
        "pacs.example.org:4242",
        "10.0.1.0/30",
        "[::1]:104",
        "192.168.5.10-12",
    ]
    assert [spec.port for spec in specs] == [None, 4242, None, 104, None]


def test_a_bad_line_is_reported_with_file_and_line_number(tmp_path: Path) -> None:
    path = tmp_path / "targets.txt"
    path.write_text("# header\n10.0.0.1\n\n10.0.0.300\n10.0.0.2\n")

    with pytest.raises(TargetSpecError, match=r"targets\.txt, line 4: '10\.0\.0\.300'"):
        list(iter_file_specs(path))


def test_specs_before_a_bad_line_are_yielded_first(tmp_path: Path) -> None:
    path = tmp_path / "targets.txt"
    path.write_text("10.0.0.1\n10.0.0.2\nnot/valid\n")
    specs = iter_file_specs(path)

    assert [next(specs).text, next(specs).text] == ["10.0.0.1", "10.0.0.2"]
    with pytest.raises(TargetSpecError, match="line 3"):
        next(specs)


def test_a_stray_non_utf8_byte_is_reported_on_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "targets.txt"
    path.write_bytes(b"10.0.0.1\n" * 5000 + b"10.0.0.\xff\n")

    with pytest.raises(TargetSpecError, match="line 5001:"):
        list(iter_file_specs(path))


def test_a_missing_file_is_a_target_spec_error(tmp_path: Path) -> None:
    with pytest.raises(TargetSpecError, match="cannot read target file"):
        list(iter_file_specs(tmp_path / "absent.txt"))


def test_dash_reads_standard_input_and_leaves_it_open(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.StringIO("10.0.0.1\n# comment\npacs.example.org\n")
    monkeypatch.setattr("sys.stdin", stdin)

    specs = list(iter_file_specs(Path("-")))

    assert [spec.text for spec in specs] == ["10.0.0.1", "pacs.example.org"]
    assert not stdin.closed


def test_target_spec_is_immutable() -> None:
    spec = parse_spec("10.0.0.1")

    with pytest.raises(AttributeError):
        spec.port = 104  # type: ignore[misc]
    assert spec == TargetSpec("10.0.0.1", 4, v4("10.0.0.1"), v4("10.0.0.1"))
