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
from archives import CAPPED_FIND_RESULTS, GeneratedArchive, loaded_orthanc, make_archive
from archives import loaded_dcmqrscp as _loaded_dcmqrscp
from servers import ACME_CALLING_AET, LOOPBACK, RunningServer, dcmqrscp, orthanc, orthanc_binary

from pacsaudit.lab.testdata import ArchiveSpec, capped_archive_spec
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


# Archives loaded with the project's synthetic data (pacsaudit.lab.testdata), for the census.


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory: pytest.TempPathFactory) -> GeneratedArchive:
    """`ArchiveSpec()`: 50 patients, about 100 studies, 200 series, 540 instances."""
    return make_archive(tmp_path_factory.mktemp("small-archive"), ArchiveSpec())


@pytest.fixture(scope="session")
def capped_archive(tmp_path_factory: pytest.TempPathFactory) -> GeneratedArchive:
    """`capped_archive_spec()`: over 3,000 studies, about 7,000 instances."""
    return make_archive(tmp_path_factory.mktemp("capped-archive"), capped_archive_spec())


@pytest.fixture(scope="session")
def orthanc_open_loaded(
    tmp_path_factory: pytest.TempPathFactory, small_archive: GeneratedArchive
) -> Iterator[RunningServer]:
    """Orthanc with ``DicomAlwaysAllowFind: true``: anyone may C-FIND the small archive."""
    _require_orthanc()
    tmp = tmp_path_factory.mktemp("orthanc-open-loaded")
    with loaded_orthanc(tmp, small_archive.files, always_allow_find=True) as server:
        yield server


@pytest.fixture(scope="session")
def orthanc_refusing_find_loaded(
    tmp_path_factory: pytest.TempPathFactory, small_archive: GeneratedArchive
) -> Iterator[RunningServer]:
    """Orthanc's default find policy (only AEs in ``DicomModalities``); ``ACMESCU`` is listed."""
    _require_orthanc()
    tmp = tmp_path_factory.mktemp("orthanc-refusing-find-loaded")
    known = {"DicomModalities": {"acme": [ACME_CALLING_AET, LOOPBACK, 104]}}
    with loaded_orthanc(tmp, small_archive.files, always_allow_find=False, extra_config=known) as server:
        yield server


@pytest.fixture(scope="session")
def orthanc_capped_loaded(
    tmp_path_factory: pytest.TempPathFactory, capped_archive: GeneratedArchive
) -> Iterator[RunningServer]:
    """Orthanc open to any C-FIND, ``LimitFindResults: 100``, holding the capped archive."""
    _require_orthanc()
    tmp = tmp_path_factory.mktemp("orthanc-capped-loaded")
    with loaded_orthanc(
        tmp, capped_archive.files, always_allow_find=True, limit_find_results=CAPPED_FIND_RESULTS
    ) as server:
        yield server


@pytest.fixture(scope="session")
def dcmqrscp_loaded(
    tmp_path_factory: pytest.TempPathFactory, small_archive: GeneratedArchive
) -> Iterator[RunningServer]:
    """dcmqrscp (peers ``ANY``, AET ``DCMQRSCP``) holding the small archive."""
    _require_dcmqrscp()
    with _loaded_dcmqrscp(tmp_path_factory.mktemp("dcmqrscp-loaded"), small_archive.files) as server:
        yield server
