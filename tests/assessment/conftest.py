from __future__ import annotations

from pathlib import Path

import pytest

from .mmdb import write_asn_mmdb


@pytest.fixture
def asn_mmdb(tmp_path: Path) -> Path:
    """An IPv6 ASN database (IPv4 in mapped space), as GeoLite2-ASN ships."""
    return write_asn_mmdb(tmp_path / "asn.mmdb")


@pytest.fixture
def asn_mmdb_v4(tmp_path: Path) -> Path:
    """An IPv4-only ASN database: IPv6 lookups must come back empty, not raise."""
    return write_asn_mmdb(tmp_path / "asn4.mmdb", ip_version=4)
