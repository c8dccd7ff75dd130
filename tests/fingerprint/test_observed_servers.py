"""What real servers send, checked live on loopback, against what docs/fingerprints.md records.

These start Debian's Orthanc and DCMTK dcmqrscp (through the integration helpers) and an
in-process pynetdicom SCP, read the implementation identity of their A-ASSOCIATE-AC, and check
both the raw pair and what identify() makes of it. If a package upgrade changes what a server
sends, these fail and the signatures and docs need updating.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pynetdicom
import pytest
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from integration.servers import LOOPBACK, dcmqrscp, orthanc, orthanc_binary, try_association
from pacsaudit.fingerprint import Identification, identify
from scanning import missing_software

pytestmark = pytest.mark.integration

DEBIAN_DCMTK_367 = ("1.2.276.0.7230010.3.0.3.6.7", "OFFIS_DCMTK_367")


def _dcmtk_version() -> str | None:
    """The DCMTK version these binaries were built from, e.g. '3.6.7', if DCMTK is installed."""
    binary = shutil.which("dcmqrscp")
    if binary is None:
        return None
    banner = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    for word in banner.split():
        if word.startswith("v3."):
            return word[1:]
    return None


@pytest.fixture
def pynetdicom_scp() -> Iterator[int]:
    ae = pynetdicom.AE(ae_title="ECHOSCP")
    ae.add_supported_context(Verification)
    server = ae.start_server((LOOPBACK, 0), block=False)
    assert server is not None
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()


def test_pynetdicom_scp_sends_its_own_identity(pynetdicom_scp: int) -> None:
    answer = try_association(LOOPBACK, pynetdicom_scp, called="ECHOSCP", calling="PACSAUDIT")

    assert answer.status == "accepted"
    assert answer.implementation_class_uid == str(pynetdicom.PYNETDICOM_IMPLEMENTATION_UID)
    assert answer.implementation_version_name == pynetdicom.PYNETDICOM_IMPLEMENTATION_VERSION
    found = identify(answer.implementation_class_uid, answer.implementation_version_name)
    assert found is not None and found.product == "pynetdicom-based"


def test_dcmqrscp_sends_dcmtks_pair(tmp_path: Path) -> None:
    if shutil.which("dcmqrscp") is None:
        missing_software("dcmqrscp (DCMTK) is not installed")
    with dcmqrscp(tmp_path) as server:
        answer = try_association(server.host, server.port, called=server.aet, calling="PACSAUDIT")

    assert answer.status == "accepted"
    version = _dcmtk_version()
    if version == "3.6.7":
        assert (answer.implementation_class_uid, answer.implementation_version_name) == DEBIAN_DCMTK_367
    found = identify(answer.implementation_class_uid, answer.implementation_version_name)
    assert found == Identification("DCMTK-based", "OFFIS", version, "low")


def test_orthanc_sends_the_same_pair_as_dcmtk(tmp_path: Path) -> None:
    if orthanc_binary() is None:
        missing_software("Orthanc is not installed")
    with orthanc(tmp_path) as server:
        answer = try_association(server.host, server.port, called=server.aet, calling="PACSAUDIT")

    assert answer.status == "accepted"
    # Orthanc never sets its own implementation identity: it sends the one of the DCMTK it
    # links, so it is indistinguishable from dcmqrscp/storescp by this pair alone.
    assert answer.implementation_class_uid is not None
    assert answer.implementation_class_uid.startswith("1.2.276.0.7230010.3.0.")
    assert answer.implementation_version_name is not None
    assert answer.implementation_version_name.startswith("OFFIS_DCMTK_")
    if _dcmtk_version() == "3.6.7":
        assert (answer.implementation_class_uid, answer.implementation_version_name) == DEBIAN_DCMTK_367
    found = identify(answer.implementation_class_uid, answer.implementation_version_name)
    assert found is not None and found.product == "DCMTK-based" and found.confidence == "low"
