"""Attribution from offline data: special-purpose ranges, registry countries, AS from a user's MMDB."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pacsaudit.assessment import AttributionError, Attributor, attributed, owner_label
from pacsaudit.model import Attribution, EndpointResult, Status

from .mmdb import AS_GOOGLE, AS_RIPE, write_asn_mmdb


@pytest.mark.parametrize(
    ("ip", "scope"),
    [
        ("127.0.0.1", "loopback"),
        ("127.90.0.7", "loopback"),
        ("::1", "loopback"),
        ("10.20.30.40", "private"),
        ("172.31.255.1", "private"),
        ("192.168.5.10", "private"),
        ("fd12:3456::1", "private"),
        ("::ffff:10.1.2.3", "private"),  # IPv4-mapped: judged as the IPv4 address
        ("169.254.10.20", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("100.64.0.1", "shared"),
        ("100.127.255.254", "shared"),
        ("224.0.0.251", "multicast"),
        ("ff02::fb", "multicast"),
        ("192.0.2.10", "reserved"),  # TEST-NET-1
        ("198.18.0.1", "reserved"),  # benchmarking
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "reserved"),
        ("2001:db8::1", "reserved"),
        ("", "unresolved"),
        ("pacs.example.org", "unresolved"),
        ("1.2.3.4\x00", "unresolved"),  # what an imported file may carry
        ("\udcff", "unresolved"),
        ("1" * 10_000, "unresolved"),
        ("8.8.8.8", "public"),
        ("100.128.0.1", "public"),  # just past the shared range
        ("172.32.0.1", "public"),  # just past 172.16/12
    ],
)
def test_scope_of_special_and_public_ranges(ip: str, scope: str) -> None:
    with Attributor() as attributor:
        attribution = attributor.attribute(ip)
    assert attribution.scope == scope
    if scope != "public":
        assert (attribution.country, attribution.asn, attribution.as_org) == (None, None, None)


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("193.0.6.139", "NL"),  # RIPE NCC's own block, 193.0.0.0/21
        ("2001:67c:2e8::2", "NL"),  # RIPE NCC, IPv6
        ("::ffff:193.0.6.139", "NL"),  # the same IPv4 address, mapped
        ("1.0.16.1", "JP"),  # APNIC, 1.0.16.0/20 delegated to Japan
        ("2001:200::1", "JP"),  # WIDE project, APNIC
        ("200.160.2.3", "BR"),  # NIC.br, LACNIC
        ("8.8.8.8", "US"),  # ARIN
    ],
)
def test_country_of_known_registry_allocations(ip: str, country: str) -> None:
    with Attributor() as attributor:
        attribution = attributor.attribute(ip)
    assert attribution == Attribution(scope="public", country=country, asn=None, as_org=None)


def test_as_number_and_organisation_from_the_mmdb(asn_mmdb: Path) -> None:
    with Attributor(asn_mmdb) as attributor:
        assert attributor.has_asn_database
        v4 = attributor.attribute("193.0.6.139")
        v6 = attributor.attribute("2001:67c:2e8::2")
        google = attributor.attribute("8.8.8.8")
        absent = attributor.attribute("2001:200::1")
        private = attributor.attribute("10.0.0.1")
    assert (v4.asn, v4.as_org, v4.country) == (AS_RIPE, "RIPE NCC", "NL")
    assert (v6.asn, v6.as_org, v6.country) == (AS_RIPE, "RIPE NCC", "NL")
    assert (google.asn, google.as_org) == (AS_GOOGLE, "GOOGLE")
    assert (absent.asn, absent.as_org, absent.country) == (None, None, "JP")
    assert (private.asn, private.country) == (None, None)  # special ranges are never looked up


def test_damaged_records_give_nulls_and_long_names_are_cut(asn_mmdb: Path) -> None:
    with Attributor(asn_mmdb) as attributor:
        damaged = attributor.attribute("1.0.16.1")
        long_name = attributor.attribute("200.160.2.3")
    assert (damaged.asn, damaged.as_org, damaged.country) == (None, None, "JP")
    assert long_name.asn == 22548
    assert long_name.as_org is not None and len(long_name.as_org) == 200


def test_ipv6_in_an_ipv4_only_database_is_not_an_error(asn_mmdb_v4: Path) -> None:
    with Attributor(asn_mmdb_v4) as attributor:
        assert attributor.attribute("2001:67c:2e8::2").asn is None
        assert attributor.attribute("193.0.6.139").asn == AS_RIPE


def test_unusable_databases_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AttributionError, match="cannot read"):
        Attributor(tmp_path / "missing.mmdb")
    garbage = tmp_path / "garbage.mmdb"
    garbage.write_bytes(b"\x00not a maxmind database" * 100)
    with pytest.raises(AttributionError, match="cannot read"):
        Attributor(garbage)
    city = write_asn_mmdb(tmp_path / "city.mmdb", database_type="GeoLite2-City")
    with pytest.raises(AttributionError, match="not an ASN"):
        Attributor(city)


def test_results_share_one_block_per_answer_and_nobody_can_change_it() -> None:
    with Attributor() as attributor:
        first = attributor.attribute("193.0.6.139")
        with pytest.raises(ValidationError, match="frozen"):
            first.country = "XX"
        second = attributor.attribute("193.0.6.139")
        neighbour = attributor.attribute("193.0.6.140")
    assert second.country == "NL"
    assert first is second is neighbour  # the same answer: one immutable block


def test_attribution_still_works_after_close(asn_mmdb: Path) -> None:
    attributor = Attributor(asn_mmdb)
    attributor.close()
    attributor.close()
    assert not attributor.has_asn_database
    assert attributor.attribute("8.8.4.4") == Attribution(scope="public", country="US")


@pytest.mark.parametrize(
    ("attribution", "label"),
    [
        (Attribution(scope="public", country="NL", asn=64500, as_org="Example Org"), "AS64500 Example Org"),
        (Attribution(scope="public", country="NL", asn=64500), "AS64500"),
        (Attribution(scope="public", country="DE"), "country DE"),
        (Attribution(scope="private"), "private"),
        (Attribution(scope="loopback"), "loopback"),
        (Attribution(scope="unresolved"), "unresolved"),
        (Attribution(scope="public"), "unknown"),
        (None, "unknown"),
    ],
)
def test_owner_label(attribution: Attribution | None, label: str) -> None:
    assert owner_label(attribution) == label


def _result(ip: str, attribution: Attribution | None) -> EndpointResult:
    return EndpointResult(
        ip=ip, port=104, status=Status.SUCCESS, elapsed_ms=1.0, timestamp="2026-01-01T00:00:00Z",
        attribution=attribution,
    )  # fmt: skip


def test_attributed_fills_what_is_missing_and_keeps_what_is_stored(asn_mmdb: Path) -> None:
    stored = Attribution(scope="public", country="DE", asn=64500, as_org="Kept")
    results = [_result("193.0.6.139", None), _result("8.8.8.8", stored), _result("", None)]
    plain = list(attributed(results))
    assert plain[0].attribution == Attribution(scope="public", country="NL")
    assert plain[1].attribution == stored
    assert plain[2].attribution == Attribution(scope="unresolved")
    assert results[0].attribution is None, "the inputs are not modified"
    # with an ASN database, a public address stored without an AS gets one
    without_as = _result("8.8.8.8", Attribution(scope="public", country="US"))
    with Attributor(asn_mmdb) as attributor:
        [again] = attributed([without_as], attributor)
    assert again.attribution is not None and again.attribution.asn == AS_GOOGLE


def test_a_damaged_search_tree_gives_null_as_never_an_exception(asn_mmdb: Path, tmp_path: Path) -> None:
    data = bytearray(asn_mmdb.read_bytes())
    tree_end = data.find(b"RIPE NCC")
    data[:tree_end] = b"\xff" * tree_end  # the search tree points everywhere and nowhere
    damaged = tmp_path / "damaged.mmdb"
    damaged.write_bytes(bytes(data))
    with Attributor(damaged) as attributor:
        for ip in ("193.0.6.139", "8.8.8.8", "2001:67c:2e8::2"):
            attribution = attributor.attribute(ip)
            assert attribution.scope == "public" and attribution.asn is None
