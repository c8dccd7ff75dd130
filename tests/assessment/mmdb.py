"""Small MaxMind DB files in the GeoLite2-ASN layout, written with `mmdb-writer` for the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet

AS_RIPE = 3333
AS_GOOGLE = 15169

ASN_RECORDS: dict[str, dict[str, Any]] = {
    "193.0.0.0/21": {"autonomous_system_number": AS_RIPE, "autonomous_system_organization": "RIPE NCC"},
    "2001:67c:2e8::/48": {"autonomous_system_number": AS_RIPE, "autonomous_system_organization": "RIPE NCC"},
    "8.8.8.0/24": {"autonomous_system_number": AS_GOOGLE, "autonomous_system_organization": "GOOGLE"},
    # A damaged record: a number as text, an organisation as a number.
    "1.0.16.0/20": {"autonomous_system_number": "2519", "autonomous_system_organization": 42},
    # An organisation name far too long for a report.
    "200.160.0.0/20": {"autonomous_system_number": 22548, "autonomous_system_organization": "N" * 1000},
}


def write_asn_mmdb(
    path: Path,
    records: dict[str, dict[str, Any]] | None = None,
    *,
    ip_version: int = 6,
    database_type: str = "GeoLite2-ASN",
) -> Path:
    """Write `records` (CIDR -> record) as an MMDB; IPv4 networks go in IPv4-mapped space in an IPv6 file."""
    writer = MMDBWriter(
        ip_version=ip_version,
        database_type=database_type,
        ipv4_compatible=ip_version == 6,
        description="pacsaudit test ASN database",
    )
    for network, record in (records if records is not None else ASN_RECORDS).items():
        if ip_version == 4 and ":" in network:
            continue
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path
