"""Who holds an address, from offline data only: nothing is fetched at scan or report time.

- `scope`: the RFC 6890 special-purpose ranges (private, loopback, link-local, shared, ...),
  decided by `ipaddress` and a few constants;
- `country`: the country a Regional Internet Registry assigned the block to, from the tables
  the `iptocc` wheel ships (IPv4 and IPv6, refreshed from the five RIRs' delegation files);
- `asn`, `as_org`: from a user-supplied MaxMind DB in the GeoLite2-ASN / DB-IP ASN Lite layout
  (`autonomous_system_number`, `autonomous_system_organization`), read with `maxminddb`.

It runs for every emitted result, so one lookup costs a few microseconds: a small cache keyed
by the address string spares the parse and the MMDB walk for the other ports of one host.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import iptocc

from pacsaudit.model import AddressScope, Attribution, EndpointResult

__all__ = ["AttributionError", "Attributor", "address_scope", "attributed", "owner_label"]

_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
"""IPv6 unique-local addresses (RFC 4193): IPv6's private space."""
_MAX_ORG = 200
"""An organisation name longer than this is cut: the MMDB is the user's, but reports stay tidy."""
_CACHE_SIZE = 4096
_MAX_ADDRESS = 64
"""Longer than any address text, an IPv6 zone included."""


class AttributionError(ValueError):
    """The ASN database cannot be opened or is not an ASN database."""


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(ip: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _v4(cidr: str) -> tuple[int, int]:
    network = ipaddress.IPv4Network(cidr)
    return int(network.network_address), int(network.netmask)


_V4_TABLE: tuple[tuple[str, AddressScope], ...] = (
    ("0.0.0.0/8", "reserved"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "reserved"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved"),
    ("198.51.100.0/24", "reserved"),
    ("203.0.113.0/24", "reserved"),
    *((f"{octet}.0.0.0/8", "multicast") for octet in range(224, 240)),
    *((f"{octet}.0.0.0/8", "reserved") for octet in range(240, 256)),
)
"""IPv4 special-purpose ranges (RFC 6890 and its IANA registry); ranges the registry marks
globally reachable (AS112, AMT) stay public."""
_V4_SPECIAL: dict[int, tuple[tuple[int, int, AddressScope], ...]] = {}
"""The same, by first octet: a public address costs one dict lookup."""
for _cidr, _scope in _V4_TABLE:
    _start, _mask = _v4(_cidr)
    _V4_SPECIAL[_start >> 24] = (*_V4_SPECIAL.get(_start >> 24, ()), (_start, _mask, _scope))


def _v4_scope(value: int) -> AddressScope:
    for start, mask, scope in _V4_SPECIAL.get(value >> 24, ()):
        if value & mask == start:
            return scope
    return "public"


def address_scope(address: IpAddress | None) -> AddressScope:
    """The kind of address: `public` only for globally routable unicast space."""
    if address is None:
        return "unresolved"
    if address.version == 4:
        return _v4_scope(int(address))
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address in _UNIQUE_LOCAL:
        return "private"
    if not address.is_global:
        return "reserved"
    return "public"


_UNRESOLVED = Attribution(scope="unresolved")


class Attributor:
    """Attributes addresses; open one per process and `close()` it (it may hold an MMDB open)."""

    def __init__(self, asn_database: Path | None = None) -> None:
        self._reader: Any = None
        self._cache: dict[str, Attribution] = {}
        self._answers: dict[tuple[AddressScope, str | None, int | None, str | None], Attribution] = {}
        if asn_database is not None:
            self._reader = _open_asn_database(asn_database)

    def attribute(self, ip: str) -> Attribution:
        """Scope, registry country and (with an ASN database) AS number and organisation of `ip`.

        `Attribution` is immutable, so results share one instance per distinct answer: a sweep
        meets far fewer countries and networks than addresses.
        """
        if len(ip) > _MAX_ADDRESS:  # an imported file may carry anything: no address is this long
            return _UNRESOLVED
        cached = self._cache.get(ip)
        if cached is None:
            facts = self._lookup(ip)
            cached = self._answers.get(facts)
            if cached is None:
                if len(self._answers) >= _CACHE_SIZE:
                    self._answers.clear()
                scope, country, asn, org = facts
                cached = self._answers[facts] = Attribution(scope=scope, country=country, asn=asn, as_org=org)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[ip] = cached
        return cached

    def _lookup(self, ip: str) -> tuple[AddressScope, str | None, int | None, str | None]:
        try:  # the common case, a dotted quad, without building an ipaddress object
            value = int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
        except (OSError, ValueError):  # not a dotted quad (ValueError: a NUL or a lone surrogate)
            address = _parse(ip)
            scope = address_scope(address)
            text = str(address)
        else:
            scope = _v4_scope(value)
            text = ip
        if scope != "public":
            return scope, None, None, None
        asn: int | None = None
        org: str | None = None
        if self._reader is not None:
            asn, org = self._asn(text)
        return scope, iptocc.country_code(text), asn, org

    def _asn(self, address: str) -> tuple[int | None, str | None]:
        import maxminddb

        try:
            record = self._reader.get(address)
        except (ValueError, TypeError, maxminddb.InvalidDatabaseError):
            return None, None  # an IPv6 address in an IPv4-only database, or a damaged file
        if not isinstance(record, dict):
            return None, None
        number = record.get("autonomous_system_number")
        org = record.get("autonomous_system_organization")
        asn = number if isinstance(number, int) and not isinstance(number, bool) and number >= 0 else None
        name = (org.strip()[:_MAX_ORG] or None) if isinstance(org, str) else None
        return asn, name

    @property
    def has_asn_database(self) -> bool:
        return self._reader is not None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> Attributor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_asn_database(path: Path) -> Any:
    import maxminddb

    try:
        reader = maxminddb.open_database(str(path))
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise AttributionError(f"cannot read the ASN database {str(path)!r}: {exc}") from None
    kind = str(reader.metadata().database_type)
    if "asn" not in kind.lower() and "isp" not in kind.lower():
        reader.close()
        raise AttributionError(
            f"{str(path)!r} is a {kind!r} database, not an ASN one (GeoLite2-ASN or DB-IP ASN Lite)"
        )
    return reader


def owner_label(attribution: Attribution | None) -> str:
    """Who to tell: "AS64500 Example Org", else "AS64500", else "country DE", else the scope
    of a special-purpose address ("private", "loopback", ...), else "unknown"."""
    if attribution is None:
        return "unknown"
    if attribution.asn is not None:
        return f"AS{attribution.asn} {attribution.as_org}" if attribution.as_org else f"AS{attribution.asn}"
    if attribution.country:
        return f"country {attribution.country}"
    if attribution.scope != "public":
        return attribution.scope
    return "unknown"


def attributed(
    results: Iterable[EndpointResult], attributor: Attributor | None = None
) -> Iterator[EndpointResult]:
    """`results` with attribution filled in where it is missing (results stored before it existed),
    as copies; with an ASN database in `attributor`, public addresses stored without an AS get one.
    Without `attributor`, a country-only one is opened here and closed when the iteration ends."""
    own = attributor is None
    current = Attributor() if attributor is None else attributor
    try:
        for result in results:
            a = result.attribution
            stale = a is not None and a.scope == "public" and a.asn is None and current.has_asn_database
            if (a is None or stale) and (result.ip or a is None):
                result = result.model_copy(update={"attribution": current.attribute(result.ip)})
            yield result
    finally:
        if own:
            current.close()
