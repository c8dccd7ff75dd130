"""`TargetStream`: the endpoints of a scan, in a stable order, lazily, exclusions applied."""

from __future__ import annotations

import io
import time
import tracemalloc
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

import pytest

from pacsaudit.targets import Endpoint, ExclusionList, TargetSpecError, TargetStream
from pacsaudit.targets.stream import shard_of


def pairs(endpoints: Iterable[Endpoint]) -> list[tuple[str | None, int]]:
    return [(endpoint.ip or endpoint.hostname, endpoint.port) for endpoint in endpoints]


def test_each_address_gets_every_port_before_the_next_address() -> None:
    stream = TargetStream(["10.0.0.1-2", "pacs.example.org"], [104, 11112, 4242])

    assert list(stream) == [
        Endpoint(0, "10.0.0.1", 104, None),
        Endpoint(1, "10.0.0.1", 11112, None),
        Endpoint(2, "10.0.0.1", 4242, None),
        Endpoint(3, "10.0.0.2", 104, None),
        Endpoint(4, "10.0.0.2", 11112, None),
        Endpoint(5, "10.0.0.2", 4242, None),
        Endpoint(6, None, 104, "pacs.example.org"),
        Endpoint(7, None, 11112, "pacs.example.org"),
        Endpoint(8, None, 4242, "pacs.example.org"),
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("192.0.2.7", [("192.0.2.7", 104)]),
        ("192.0.2.0/30", [("192.0.2.0", 104), ("192.0.2.1", 104), ("192.0.2.2", 104), ("192.0.2.3", 104)]),
        ("192.0.2.254/31", [("192.0.2.254", 104), ("192.0.2.255", 104)]),
        ("192.168.5.10-12", [("192.168.5.10", 104), ("192.168.5.11", 104), ("192.168.5.12", 104)]),
        ("10.0.0.255-10.0.1.1", [("10.0.0.255", 104), ("10.0.1.0", 104), ("10.0.1.1", 104)]),
        ("2001:db8::1", [("2001:db8::1", 104)]),
        ("2001:db8::/127", [("2001:db8::", 104), ("2001:db8::1", 104)]),
        ("2001:db8::ffff-2001:db8::1:0", [("2001:db8::ffff", 104), ("2001:db8::1:0", 104)]),
        ("pacs.example.org", [("pacs.example.org", 104)]),
        ("pacs.example.org:4242", [("pacs.example.org", 4242)]),
        ("192.0.2.7:11112", [("192.0.2.7", 11112)]),
        ("192.0.2.0/31:4242", [("192.0.2.0", 4242), ("192.0.2.1", 4242)]),
        ("[2001:db8::1]:104", [("2001:db8::1", 104)]),
        ("[::1]:4242", [("::1", 4242)]),
        ("[::]", [("::", 104)]),
    ],
)
def test_every_spec_form_expands_to_its_endpoints(spec: str, expected: list[tuple[str, int]]) -> None:
    assert pairs(TargetStream([spec], [104])) == expected


def test_a_port_typed_with_the_spec_replaces_the_port_list() -> None:
    stream = TargetStream(["10.0.0.1:4242", "10.0.0.2"], [104, 11112])

    assert list(stream) == [
        Endpoint(0, "10.0.0.1", 4242, None),
        Endpoint(1, "10.0.0.2", 104, None),
        Endpoint(2, "10.0.0.2", 11112, None),
    ]


def test_network_and_broadcast_addresses_of_a_cidr_are_kept() -> None:
    ips = [endpoint.ip for endpoint in TargetStream(["192.0.2.0/29"], [104])]

    assert ips[0] == "192.0.2.0"
    assert ips[-1] == "192.0.2.7"
    assert len(ips) == 8


def test_duplicate_ports_are_probed_once() -> None:
    assert pairs(TargetStream(["10.0.0.1"], [104, 4242, 104])) == [("10.0.0.1", 104), ("10.0.0.1", 4242)]


@pytest.mark.parametrize("ports", [[], [0], [65536], [104, -1], [True]])
def test_a_bad_port_list_is_refused(ports: list[int]) -> None:
    with pytest.raises(ValueError, match="port"):
        TargetStream(["10.0.0.1"], ports)


def test_command_line_specs_come_before_file_lines_and_files_keep_their_order(tmp_path: Path) -> None:
    # Given two target files with comments, blanks and a per-line port
    first = tmp_path / "first.txt"
    first.write_text("# ward A\n10.1.0.1\n\npacs.example.org:4242  # main archive\n")
    second = tmp_path / "second.txt"
    second.write_text("[2001:db8::5]:11112\n10.2.0.0/31\n")

    # When they are streamed after a command-line spec
    stream = TargetStream(["10.0.0.1"], [104, 2762], files=[first, second])

    # Then command line first, then each file in order, line by line
    assert pairs(stream) == [
        ("10.0.0.1", 104),
        ("10.0.0.1", 2762),
        ("10.1.0.1", 104),
        ("10.1.0.1", 2762),
        ("pacs.example.org", 4242),
        ("2001:db8::5", 11112),
        ("10.2.0.0", 104),
        ("10.2.0.0", 2762),
        ("10.2.0.1", 104),
        ("10.2.0.1", 2762),
    ]
    assert [endpoint.position for endpoint in stream] == list(range(10))


def test_targets_can_come_from_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("10.0.0.1\n# nothing\n10.0.0.2:4242\n"))

    stream = TargetStream([], [104], files=[Path("-")])

    assert stream.estimated_total() is None
    assert pairs(stream) == [("10.0.0.1", 104), ("10.0.0.2", 4242)]


def test_standard_input_is_accepted_only_once() -> None:
    with pytest.raises(TargetSpecError, match="only once"):
        TargetStream([], [104], files=[Path("-"), Path("-")])


def test_a_bad_command_line_spec_fails_before_anything_is_streamed() -> None:
    with pytest.raises(TargetSpecError, match=r"'10\.0\.0\.300'"):
        TargetStream(["10.0.0.1", "10.0.0.300"], [104])


def test_a_missing_target_file_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(TargetSpecError, match="target file not found"):
        TargetStream([], [104], files=[tmp_path / "absent.txt"])


def test_a_bad_file_line_names_file_and_line_when_reached(tmp_path: Path) -> None:
    path = tmp_path / "targets.txt"
    path.write_text("10.0.0.1\n# comment\n\n192.168.5.40-10\n")
    stream = TargetStream([], [104], files=[path])
    endpoints = iter(stream)

    assert next(endpoints) == Endpoint(0, "10.0.0.1", 104, None)
    with pytest.raises(TargetSpecError, match=r"targets\.txt, line 4: '192\.168\.5\.40-10'"):
        next(endpoints)


@pytest.mark.parametrize(
    ("excluded", "kept"),
    [
        (["10.0.0.2"], ["10.0.0.1", "10.0.0.3", "10.0.0.4"]),
        (["10.0.0.2/31"], ["10.0.0.1", "10.0.0.4"]),
        (["10.0.0.1-3"], ["10.0.0.4"]),
        (["10.0.0.3-10.0.0.200"], ["10.0.0.1", "10.0.0.2"]),
        (["10.0.0.0/24"], []),
        (["2001:db8::/32", "other.example.org"], ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]),
    ],
)
def test_excluded_addresses_are_never_yielded(excluded: list[str], kept: list[str]) -> None:
    stream = TargetStream(["10.0.0.1-4"], [104], exclusions=ExclusionList.from_specs(excluded))

    assert [endpoint.ip for endpoint in stream] == kept


def test_excluded_ipv6_addresses_are_never_yielded() -> None:
    exclusions = ExclusionList.from_specs(["2001:db8::1"])

    stream = TargetStream(["2001:db8::/126", "[2001:db8::1]:104"], [4242], exclusions=exclusions)

    assert pairs(stream) == [("2001:db8::", 4242), ("2001:db8::2", 4242), ("2001:db8::3", 4242)]


def test_an_excluded_hostname_is_skipped_whatever_its_case_or_port() -> None:
    exclusions = ExclusionList.from_specs(["PACS.example.org"])

    stream = TargetStream(
        ["pacs.example.org", "pacs.example.org.:4242", "ris.example.org"], [104], exclusions=exclusions
    )

    assert list(stream) == [Endpoint(2, None, 104, "ris.example.org")]


def test_an_exclusion_file_applies_to_target_files(tmp_path: Path) -> None:
    do_not_scan = tmp_path / "do-not-scan.txt"
    do_not_scan.write_text("# life support\n10.0.0.2\nmri.example.org\n")
    targets = tmp_path / "targets.txt"
    targets.write_text("10.0.0.1-3\nmri.example.org:104\n")

    stream = TargetStream([], [104], files=[targets], exclusions=ExclusionList.from_file(do_not_scan))

    assert list(stream) == [Endpoint(0, "10.0.0.1", 104, None), Endpoint(2, "10.0.0.3", 104, None)]


def test_positions_do_not_move_when_the_exclusion_list_changes() -> None:
    specs = ["10.0.0.0/28", "pacs.example.org", "2001:db8::/124"]
    everything = {(e.ip, e.hostname, e.port): e.position for e in TargetStream(specs, [104, 4242])}

    excluded = ExclusionList.from_specs(["10.0.0.3-9", "pacs.example.org", "2001:db8::4/126"])
    remaining = list(TargetStream(specs, [104, 4242], exclusions=excluded))

    assert len(remaining) == len(everything) - 2 * (7 + 1 + 4)
    assert all(everything[(e.ip, e.hostname, e.port)] == e.position for e in remaining)


def test_a_large_excluded_interval_is_jumped_over_not_walked() -> None:
    # Given 10.0.0.0/8 minus its first half and the next quarter: 12.5 million addresses excluded
    exclusions = ExclusionList.from_specs(["10.0.0.0/9", "10.128.0.0/10"])
    stream = TargetStream(["10.0.0.0/8"], [104, 4242], exclusions=exclusions)

    # When the first endpoints are taken
    started = time.perf_counter()
    first = list(islice(stream, 3))
    elapsed = time.perf_counter() - started

    # Then they come from the last quarter at once, at their pre-exclusion positions
    offset = (0xC00000) * 2
    assert first == [
        Endpoint(offset, "10.192.0.0", 104, None),
        Endpoint(offset + 1, "10.192.0.0", 4242, None),
        Endpoint(offset + 2, "10.192.0.1", 104, None),
    ]
    assert elapsed < 0.1


def test_a_fully_excluded_internet_yields_nothing_at_once() -> None:
    stream = TargetStream(
        ["0.0.0.0/0", "::/0"], [104], exclusions=ExclusionList.from_specs(["0.0.0.0/1,128.0.0.0/1,::/0"])
    )

    started = time.perf_counter()
    assert list(stream) == []
    assert stream.estimated_total() == 0
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize(
    ("spec", "expected_last"),
    [("0.0.0.0/0", "0.0.1.243"), ("2001:db8::/64", "2001:db8::1f3")],
)
def test_huge_ranges_stream_in_constant_memory(spec: str, expected_last: str) -> None:
    # Given the whole IPv4 space, or an IPv6 /64, with two ports
    tracemalloc.start()
    try:
        started = time.perf_counter()
        stream = TargetStream([spec], [104, 11112])

        # When the first 1000 endpoints are consumed
        count, last = 0, None
        for endpoint in islice(stream, 1000):
            count, last = count + 1, endpoint
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Then they are the first 500 addresses, quickly, and nothing was materialised
    assert count == 1000
    assert last == Endpoint(999, expected_last, 11112, None)
    assert peak < 1_000_000
    assert elapsed < 1.0


def test_iter_from_matches_the_positions_of_a_full_iteration(tmp_path: Path) -> None:
    # Given a stream mixing every kind of spec, files, per-spec ports and exclusions
    targets = tmp_path / "targets.txt"
    targets.write_text("# file\n10.9.0.0/30\nris.example.org:4242\n[2001:db8::8]:11112\n10.9.1.1-3\n")
    exclusions = ExclusionList.from_specs(["10.0.0.2", "10.9.0.1-10.9.1.1", "excluded.example.org"])
    stream = TargetStream(
        ["10.0.0.0/30", "excluded.example.org", "pacs.example.org", "2001:db8::/127", "10.0.0.9:104"],
        [104, 11112, 4242],
        files=[targets],
        exclusions=exclusions,
    )
    everything = list(stream)
    total_positions = everything[-1].position + 1

    # When iteration starts at each position in turn, inside specs, ports and excluded runs alike
    # Then it yields exactly the tail of the full iteration
    for start in range(total_positions + 2):
        assert list(stream.iter_from(start)) == [e for e in everything if e.position >= start], start


def test_iter_from_enumerates_the_unexcluded_stream_consistently() -> None:
    stream = TargetStream(["192.0.2.0/29", "pacs.example.org"], [104, 4242])

    assert [e.position for e in stream] == list(range(18))
    assert list(stream) == list(stream)  # stable across runs


def test_iter_from_jumps_deep_into_a_range_at_once() -> None:
    stream = TargetStream(["10.0.0.1", "0.0.0.0/0", "2001:db8::/64"], [104, 11112, 4242])

    started = time.perf_counter()
    tail = list(islice(stream.iter_from(3 + 3 * 2**32 - 2), 4))
    elapsed = time.perf_counter() - started

    assert tail == [
        Endpoint(3 + 3 * 2**32 - 2, "255.255.255.255", 11112, None),
        Endpoint(3 + 3 * 2**32 - 1, "255.255.255.255", 4242, None),
        Endpoint(3 + 3 * 2**32, "2001:db8::", 104, None),
        Endpoint(3 + 3 * 2**32 + 1, "2001:db8::", 11112, None),
    ]
    assert elapsed < 0.1


def test_iter_from_past_the_end_yields_nothing_and_a_negative_start_is_refused() -> None:
    stream = TargetStream(["10.0.0.0/31"], [104])

    assert list(stream.iter_from(2)) == []
    with pytest.raises(ValueError, match=">= 0"):
        stream.iter_from(-1)


def test_estimated_total_counts_what_will_be_yielded(tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("10.1.0.0/24\nmri.example.org\n10.2.0.1:4242\n")
    exclusions = ExclusionList.from_specs(["10.0.0.0/26", "10.1.0.128/25", "mri.example.org"])
    stream = TargetStream(
        ["10.0.0.0/24", "pacs.example.org", "[::1]:104"], [104, 11112], files=[targets], exclusions=exclusions
    )

    total = stream.estimated_total()

    assert total == (256 - 64) * 2 + 2 + 1 + 128 * 2 + 0 + 1
    assert total == sum(1 for _ in stream)


def test_estimated_total_of_huge_ranges_is_exact_and_immediate() -> None:
    stream = TargetStream(
        ["0.0.0.0/0", "2001:db8::/64"], [104, 11112], exclusions=ExclusionList.from_specs(["10.0.0.0/8"])
    )

    assert stream.estimated_total() == (2**32 - 2**24) * 2 + 2**64 * 2


def test_endpoint_is_immutable() -> None:
    endpoint = Endpoint(0, "10.0.0.1", 104, None)

    with pytest.raises(AttributeError):
        endpoint.port = 11112  # type: ignore[misc]


def test_shards_partition_the_stream_by_address_with_positions_unchanged(tmp_path: Path) -> None:
    listing = tmp_path / "targets.txt"
    listing.write_text(
        "\n".join(f"10.1.{i // 256}.{i % 256}" for i in range(300))
        + "\n10.9.0.0/28, 10.9.1.5:4242\nscanme.invalid\n10.1.0.7  # listed twice\n"
    )
    stream = TargetStream(
        [], [104, 11112], files=[listing], exclusions=ExclusionList.from_specs(["10.1.0.9"])
    )
    whole = list(stream)
    for count in (2, 3):
        shards = [list(stream.shard(index, count)) for index in range(count)]
        assert sorted(ep for shard in shards for ep in shard) == sorted(whole)
        for index, shard in enumerate(shards):
            assert all(shard_of(ep, count) == index for ep in shard)
        owners = {(ep.ip or ep.hostname): index for index, shard in enumerate(shards) for ep in shard}
        assert all(owners[ep.ip or ep.hostname] == shard_of(ep, count) for ep in whole)


def test_a_bad_line_still_fails_in_the_shard_that_owns_it(tmp_path: Path) -> None:
    listing = tmp_path / "targets.txt"
    listing.write_text("10.0.0.1\n999.1.2.3\n")
    stream = TargetStream([], [104], files=[listing])

    [error] = _failing_shards(stream)
    assert "line 2" in error


def _failing_shards(stream: TargetStream, count: int = 2) -> list[str]:
    """The errors of the shards whose walk fails: a bad word must fail in its owner only."""
    errors = []
    for index in range(count):
        try:
            list(stream.shard(index, count))
        except TargetSpecError as exc:
            errors.append(str(exc))
    return errors


def _plain_listing(path: Path, count: int) -> list[str]:
    """A masscan-style list of `count` addresses, one a line: several 64 KB blocks when long."""
    addresses = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(count)]
    path.write_text("\n".join(addresses) + "\n")
    return addresses


def test_a_long_plain_list_streams_as_each_line_would_parse(tmp_path: Path) -> None:
    # Given a plain list spanning several read blocks, scanned on two ports, two addresses excluded
    listing = tmp_path / "targets.txt"
    addresses = _plain_listing(listing, 20_000)
    exclusions = ExclusionList.from_specs(["10.0.0.7", "10.0.78.32"])
    stream = TargetStream([], [104, 11112], files=[listing], exclusions=exclusions)

    whole = list(stream)

    # Then every address comes with both ports, at its line's positions, the excluded ones left out
    expected = [
        Endpoint(2 * line + offset, address, port, None)
        for line, address in enumerate(addresses)
        if address not in ("10.0.0.7", "10.0.78.32")
        for offset, port in enumerate((104, 11112))
    ]
    assert whole == expected
    assert stream.estimated_total() == len(expected)
    # And resuming anywhere (inside an address's ports, at block edges, past the end) is the tail
    for start in (0, 1, 15, 16, 17, 2 * 6000 + 1, 2 * 19_999 + 1, 2 * 20_000, 2 * 20_000 + 5):
        assert list(stream.iter_from(start)) == [e for e in whole if e.position >= start], start
    # And the shards partition it by address
    for count in (2, 3):
        shards = [list(stream.shard(index, count)) for index in range(count)]
        assert sorted(ep for shard in shards for ep in shard) == whole
        assert all(shard_of(ep, count) == index for index, shard in enumerate(shards) for ep in shard)


def test_words_that_only_look_like_plain_addresses_fail_on_their_own_line(tmp_path: Path) -> None:
    # Given long lists whose one bad word sits in a later read block: non-canonical quads and
    # digit strings `inet_aton` would take (octal, short forms), and an out-of-range octet
    for bad in ("010.0.0.1", "10.1", "10.0.0.256", "1.2.3.4.5", "4294967295"):
        listing = tmp_path / "targets.txt"
        addresses = _plain_listing(listing, 12_000)
        listing.write_text("\n".join([*addresses[:9_000], bad, *addresses[9_000:]]) + "\n")
        stream = TargetStream([], [104], files=[listing])

        # Then the check before scanning, and the worker that owns the word, name its line
        with pytest.raises(TargetSpecError, match=f"line 9001: '{bad}'"):
            stream.estimated_total()
        [error] = _failing_shards(stream)
        assert "line 9001" in error


def test_a_block_without_comments_may_still_hold_any_kind_of_spec(tmp_path: Path) -> None:
    listing = tmp_path / "targets.txt"
    listing.write_text("10.0.0.9\n10.0.1.0/31 pacs.example.org\n10.0.2.1-2\n[::1]:104\n10.0.3.3:4242\n")
    stream = TargetStream([], [11112], files=[listing])

    assert pairs(stream) == [
        ("10.0.0.9", 11112),
        ("10.0.1.0", 11112),
        ("10.0.1.1", 11112),
        ("pacs.example.org", 11112),
        ("10.0.2.1", 11112),
        ("10.0.2.2", 11112),
        ("::1", 104),
        ("10.0.3.3", 4242),
    ]
    assert stream.estimated_total() == 8
    shards = [list(stream.shard(index, 2)) for index in range(2)]
    assert sorted(ep for shard in shards for ep in shard) == sorted(stream)


def test_a_bad_word_after_a_comment_still_fails_only_in_the_shard_that_owns_it(tmp_path: Path) -> None:
    # Given lists whose bad word sits in a block read line by line (a comment, a comma)
    for text, line in (("# header\n10.0.0.1\n999.1.2.3\n", 3), ("10.0.0.1, 10.0.0.2\n999.1.2.3\n", 2)):
        listing = tmp_path / "targets.txt"
        listing.write_text(text)
        stream = TargetStream([], [104], files=[listing])

        # Then only its owner parses it; the other worker counts its position and goes on
        [error] = _failing_shards(stream)
        assert f"line {line}: '999.1.2.3'" in error


def test_a_long_plain_exclusion_file_excludes_every_listed_address(tmp_path: Path) -> None:
    excluded = tmp_path / "do-not-scan.txt"
    listed = _plain_listing(excluded, 20_000)  # 10.0.0.0 - 10.0.78.31, in several read blocks
    stream = TargetStream(["10.0.0.0/16"], [104], exclusions=ExclusionList.from_file(excluded))

    kept = [ep.ip for ep in stream]

    assert kept[0] == "10.0.78.32" and len(kept) == 65_536 - len(listed)
    assert stream.estimated_total() == len(kept)
