"""Real PACS servers loaded with a synthetic archive whose census is known, and a findscu to check them.

A plain module like ``servers.py`` (no pytest), so benchmarks can reuse it::

    archive = make_archive(Path("/tmp/a"), ArchiveSpec())
    with loaded_orthanc(Path("/tmp/o"), archive.files, always_allow_find=True) as server:
        findscu(server, {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": ""})

Orthanc is loaded through its REST API (``POST /instances``, a few requests in parallel);
dcmqrscp by hard-linking the files into its storage area and registering them with DCMTK's
``dcmqridx``, the way its documentation describes, since dcmqrscp has no other way in than
C-STORE. Verification goes through DCMTK ``findscu`` rather than pacsaudit's own client, so
the census is checked against an independent implementation.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from servers import LOOPBACK, RunningServer, dcmqrscp, dcmtk_tool, orthanc

from pacsaudit.lab.testdata import ArchiveSpec, ArchiveTruth, archive_files, generate_archive

__all__ = [
    "CAPPED_FIND_RESULTS",
    "DCMQRSCP_MAX_STUDIES",
    "STRANGER_AET",
    "FindscuOutcome",
    "GeneratedArchive",
    "dcmqrscp_storage",
    "findscu",
    "load_dcmqrscp",
    "load_orthanc",
    "loaded_dcmqrscp",
    "loaded_orthanc",
    "make_archive",
]

STRANGER_AET = "STRANGER"
"""A calling AE title no fixture knows."""
CAPPED_FIND_RESULTS = 100
"""``LimitFindResults`` of the capped Orthanc."""
DCMQRSCP_MAX_STUDIES = 500
"""Studies one dcmqrscp storage area can index (DCMTK 3.6.7, observed with dcmqridx)."""
_LOAD_WORKERS = 4
_DCMQRIDX_BATCH = 500


@dataclass(frozen=True)
class GeneratedArchive:
    truth: ArchiveTruth
    directory: Path
    files: tuple[Path, ...]


def make_archive(directory: Path, spec: ArchiveSpec) -> GeneratedArchive:
    """Generate ``spec`` into ``directory``."""
    truth = generate_archive(spec, directory)
    return GeneratedArchive(truth=truth, directory=directory, files=tuple(archive_files(directory)))


def load_orthanc(server: RunningServer, files: Iterable[Path]) -> int:
    """POST every file to Orthanc's REST API; raise unless each one gets HTTP 200. Returns the count."""
    if server.http_port is None:
        raise ValueError(f"{server.description} has no REST API")
    url = f"http://{LOOPBACK}:{server.http_port}/instances"

    def post(path: Path) -> None:
        request = urllib.request.Request(
            url, data=path.read_bytes(), method="POST", headers={"Content-Type": "application/dicom"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status != 200:
                raise RuntimeError(f"Orthanc answered {response.status} to {path.name}")
            response.read()

    paths = list(files)
    with ThreadPoolExecutor(_LOAD_WORKERS) as pool:
        for _ in pool.map(post, paths):
            pass
    return len(paths)


def dcmqrscp_storage(server: RunningServer) -> Path:
    """The storage area ``servers.dcmqrscp`` configures for ``server.aet`` (holds ``index.dat``)."""
    return server.workdir / "storage" / server.aet


def load_dcmqrscp(server: RunningServer, files: Iterable[Path]) -> int:
    """Put the files into dcmqrscp's storage area and index them with ``dcmqridx``. Returns the count.

    ``dcmqridx`` records each file's path as given and copies nothing, so the files are
    hard-linked (copied across file systems) into the storage area first, which the fixture
    deletes on exit. It also turns the quota off, so the ``(200, 1024mb)`` limit in the
    fixture's AETable does not drop studies (dcmqrscp then answers for all of them).

    DCMTK 3.6.7's index holds at most 500 studies per storage area, whatever the quota: the
    501st makes dcmqridx drop the oldest study from the index (warning "despite duplicate SOP
    Instance UID"), and a few more make it abort with heap corruption. Any output from
    dcmqridx is therefore an error here.
    """
    tool = dcmtk_tool("dcmqridx")
    if tool is None:
        raise RuntimeError("dcmqridx (DCMTK) is not installed")
    storage = dcmqrscp_storage(server)
    placed: list[str] = []
    for source in files:
        target = storage / source.name
        try:
            os.link(source, target)
        except OSError:
            target.write_bytes(source.read_bytes())
        placed.append(str(target.resolve()))
    for start in range(0, len(placed), _DCMQRIDX_BATCH):
        result = subprocess.run(
            [str(tool), str(storage), *placed[start : start + _DCMQRIDX_BATCH]],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0 or result.stderr.strip():
            raise RuntimeError(f"dcmqridx failed ({result.returncode}): {result.stderr[-2000:]}")
    return len(placed)


@contextlib.contextmanager
def loaded_orthanc(
    tmp: Path,
    files: Iterable[Path],
    *,
    always_allow_find: bool,
    limit_find_results: int = 0,
    extra_config: Mapping[str, Any] | None = None,
) -> Iterator[RunningServer]:
    """An Orthanc holding ``files``.

    ``always_allow_find``: Orthanc's ``DicomAlwaysAllowFind`` (1.9.0+, default false), which
    lets AEs missing from ``DicomModalities`` (all of them here) run C-FIND. ``limit_find_results``:
    ``LimitFindResults``, the cap on C-FIND answers at PATIENT, STUDY and SERIES level (0 = none).
    """
    config: dict[str, Any] = {
        "DicomAlwaysAllowFind": always_allow_find,
        "LimitFindResults": limit_find_results,
        "SyncStorageArea": False,
    }
    config.update(extra_config or {})
    with orthanc(tmp, extra_config=config) as server:
        load_orthanc(server, files)
        yield server


@contextlib.contextmanager
def loaded_dcmqrscp(
    tmp: Path, files: Iterable[Path], *, allowed_calling: Sequence[str] | None = None
) -> Iterator[RunningServer]:
    """A dcmqrscp (peers ``ANY`` unless ``allowed_calling``) holding ``files``."""
    with dcmqrscp(tmp, allowed_calling=allowed_calling) as server:
        load_dcmqrscp(server, files)
        yield server


@dataclass(frozen=True)
class FindscuOutcome:
    """One DCMTK ``findscu`` run: the answers and how the exchange ended."""

    answers: list[Dataset]
    """The identifier of each pending C-FIND-RSP, in arrival order."""
    statuses: list[int]
    """The DIMSE status of every C-FIND-RSP, pending ones included."""
    final_status: int | None
    """Status of the final C-FIND-RSP; ``None`` when there was none (abort, closed connection)."""
    aborted: bool
    """findscu saw an A-ABORT (or the peer dropped the association)."""
    log: str


_STATUS = re.compile(r"DIMSE Status\s*:\s*0x([0-9a-fA-F]{4})")


def findscu(
    server: RunningServer,
    keys: Mapping[str, str],
    *,
    calling: str = STRANGER_AET,
    model: str = "-S",
    timeout_s: float = 120,
) -> FindscuOutcome:
    """Run DCMTK ``findscu -d <model> -X`` against ``server`` with ``-k key=value`` for each key.

    ``model``: ``-S`` study root, ``-P`` patient root. An empty value asks for the key to be
    returned (universal match).
    """
    tool = dcmtk_tool("findscu")
    if tool is None:
        raise RuntimeError("findscu (DCMTK) is not installed")
    key_args = [arg for key, value in keys.items() for arg in ("-k", f"{key}={value}" if value else key)]
    with tempfile.TemporaryDirectory(prefix="findscu-") as out:
        argv = [str(tool), "-d", "-sr", model, "-aet", calling, "-aec", server.aet, "-X", "-od", out]
        result = subprocess.run(
            [*argv, *key_args, server.host, str(server.port)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        answers: list[Dataset] = [dcmread(path) for path in sorted(Path(out).glob("rsp*.dcm"))]
    log = result.stdout + result.stderr
    # With -d, findscu dumps every DIMSE message; only responses carry a status.
    statuses = [int(code, 16) for code in _STATUS.findall(log)]
    final = statuses[-1] if "Received Final Find Response" in log and statuses else None
    aborted = "Peer aborted Association" in log or "Association Aborted" in log
    return FindscuOutcome(answers=answers, statuses=statuses, final_status=final, aborted=aborted, log=log)
