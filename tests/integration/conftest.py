"""Real PACS servers on loopback, one per configuration, shared by the whole session.

Each fixture starts its server once (about 0.1 s here) and stops it at the end of the
session; tests must not change a shared server's state in ways other tests would notice.
A test that needs its own server calls ``servers.orthanc`` / ``servers.dcmqrscp`` directly
with ``tmp_path``. Missing software skips the tests that need it, except under `./run test`
(REQUIRE_PACS_SERVERS=1), which installs it and so fails instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from servers import ACME_CALLING_AET, RunningServer, dcmqrscp, orthanc, orthanc_binary

from scanning import missing_software


def _require_orthanc() -> None:
    if orthanc_binary() is None:
        missing_software("Orthanc is not installed")


def _require_dcmqrscp() -> None:
    if shutil.which("dcmqrscp") is None:
        missing_software("dcmqrscp (DCMTK) is not installed")


@pytest.fixture(scope="session")
def orthanc_open(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Orthanc as Debian ships it, minus plugins: any called and calling AE title."""
    _require_orthanc()
    with orthanc(tmp_path_factory.mktemp("orthanc-open")) as server:
        yield server


@pytest.fixture(scope="session")
def orthanc_called_check(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Orthanc with ``DicomCheckCalledAet: true`` and AE title ``ORTHANC``."""
    _require_orthanc()
    with orthanc(tmp_path_factory.mktemp("orthanc-called-check"), check_called_aet=True) as server:
        yield server


@pytest.fixture(scope="session")
def dcmqrscp_any(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """dcmqrscp with peers ``ANY``: the called title must match, the calling one is free."""
    _require_dcmqrscp()
    with dcmqrscp(tmp_path_factory.mktemp("dcmqrscp-any")) as server:
        yield server


@pytest.fixture(scope="session")
def dcmqrscp_restricted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """dcmqrscp that only associates with calling AE title ``ACMESCU`` from this host."""
    _require_dcmqrscp()
    with dcmqrscp(
        tmp_path_factory.mktemp("dcmqrscp-restricted"), allowed_calling=[ACME_CALLING_AET]
    ) as server:
        yield server
