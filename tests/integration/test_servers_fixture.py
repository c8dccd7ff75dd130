"""What the real servers do with right and wrong AE titles, pinned as assertions.

The table in ``FACTS`` is the one in docs/real-servers.md. Every cell is checked with two
independent clients: the hand-rolled A-ASSOCIATE-RQ in ``servers.try_association`` and
DCMTK's ``echoscu``. If a package update changes a cell, these tests fail and the doc (and
every probe that relied on the cell) needs a second look.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from servers import (
    ACME_CALLING_AET,
    LOOPBACK,
    AssociationOutcome,
    RunningServer,
    ServerStartError,
    dcmqrscp,
    dcmtk_tool,
    orthanc,
    try_association,
)

pytestmark = pytest.mark.integration

RANDOM_CALLED_AET = "NOSUCHCALLED"
RANDOM_CALLING_AET = "NOSUCHCALLING"


def _random_called(own_aet: str) -> str:
    return RANDOM_CALLED_AET


def _right_called(own_aet: str) -> str:
    return own_aet


def _lowercase_called(own_aet: str) -> str:
    return own_aet.lower()


CASES: dict[str, tuple[Callable[[str], str], str]] = {
    # case id: (called AE title from the server's own, calling AE title)
    "a-random-called-random-calling": (_random_called, RANDOM_CALLING_AET),
    "b-right-called-random-calling": (_right_called, RANDOM_CALLING_AET),
    "c-random-called-right-calling": (_random_called, ACME_CALLING_AET),
    "d-right-called-right-calling": (_right_called, ACME_CALLING_AET),
    "e-lowercase-called-right-calling": (_lowercase_called, ACME_CALLING_AET),
}
""""Right calling" is ACMESCU everywhere; only dcmqrscp_restricted actually knows it."""

DCMTK_367_ACCEPT = AssociationOutcome(
    status="accepted",
    result=0,
    # Debian's Orthanc links the system DCMTK, so it answers with DCMTK's own identity.
    implementation_class_uid="1.2.276.0.7230010.3.0.3.6.7",
    implementation_version_name="OFFIS_DCMTK_367",
    # Orthanc's MaximumPduLength default; dcmqrscp's MaxPDUSize from our dcmqrscp.cfg.
    max_pdu_length=16384,
)
CALLED_AE_NOT_RECOGNIZED = AssociationOutcome(status="rejected", result=1, source=1, reason=7)
"""A-ASSOCIATE-RJ: rejected-permanent, service user, called-AE-title-not-recognized."""

FACTS: dict[str, dict[str, AssociationOutcome]] = {
    "orthanc_open": {
        "a-random-called-random-calling": DCMTK_367_ACCEPT,
        "b-right-called-random-calling": DCMTK_367_ACCEPT,
        "c-random-called-right-calling": DCMTK_367_ACCEPT,
        "d-right-called-right-calling": DCMTK_367_ACCEPT,
        "e-lowercase-called-right-calling": DCMTK_367_ACCEPT,
    },
    "orthanc_called_check": {
        "a-random-called-random-calling": CALLED_AE_NOT_RECOGNIZED,
        "b-right-called-random-calling": DCMTK_367_ACCEPT,
        "c-random-called-right-calling": CALLED_AE_NOT_RECOGNIZED,
        "d-right-called-right-calling": DCMTK_367_ACCEPT,
        # StrictAetComparison defaults to false: the called title is compared ignoring case.
        "e-lowercase-called-right-calling": DCMTK_367_ACCEPT,
    },
    "dcmqrscp_any": {
        "a-random-called-random-calling": CALLED_AE_NOT_RECOGNIZED,
        "b-right-called-random-calling": DCMTK_367_ACCEPT,
        "c-random-called-right-calling": CALLED_AE_NOT_RECOGNIZED,
        "d-right-called-right-calling": DCMTK_367_ACCEPT,
        # dcmqrscp compares titles with strcmp.
        "e-lowercase-called-right-calling": CALLED_AE_NOT_RECOGNIZED,
    },
    "dcmqrscp_restricted": {
        "a-random-called-random-calling": CALLED_AE_NOT_RECOGNIZED,
        # Only the calling title is wrong, and yet the reason is 7 (called), not 3 (calling):
        # dcmqrscp answers every failed peer check with CTN_BadAEService.
        "b-right-called-random-calling": CALLED_AE_NOT_RECOGNIZED,
        "c-random-called-right-calling": CALLED_AE_NOT_RECOGNIZED,
        "d-right-called-right-calling": DCMTK_367_ACCEPT,
        "e-lowercase-called-right-calling": CALLED_AE_NOT_RECOGNIZED,
    },
}

CELLS = [pytest.param(config, case, id=f"{config}-{case}") for config in FACTS for case in CASES]


def _titles(server: RunningServer, case: str) -> tuple[str, str]:
    called_from_own, calling = CASES[case]
    return called_from_own(server.aet), calling


@pytest.mark.parametrize(("config", "case"), CELLS)
def test_association_answer(request: pytest.FixtureRequest, config: str, case: str) -> None:
    server: RunningServer = request.getfixturevalue(config)
    called, calling = _titles(server, case)

    outcome = try_association(server.host, server.port, called=called, calling=calling)

    assert outcome == FACTS[config][case]


# DCMTK's wording for the numbers that occur in FACTS (dcmnet/libsrc/assoc.cc).
_DCMTK_RESULT = {"Rejected Permanent": 1, "Rejected Transient": 2}
_DCMTK_SOURCE = {"Service User": 1}
_DCMTK_REASON = {"Called AE Title Not Recognized": 7, "Calling AE Title Not Recognized": 3}


def _echoscu(server: RunningServer, *, called: str, calling: str) -> AssociationOutcome:
    """Run DCMTK ``echoscu -d`` and read the A-ASSOCIATE-AC/RJ fields back out of its dump."""
    tool = dcmtk_tool("echoscu")
    if tool is None:
        pytest.skip("DCMTK echoscu is not installed")
    argv = [str(tool), "-d", "-to", "5", "-ta", "5", "-td", "5", "-aet", calling, "-aec", called]
    run = subprocess.run(
        [*argv, server.host, str(server.port)], capture_output=True, text=True, timeout=30, check=False
    )
    output = run.stdout + run.stderr
    rejected = re.search(r"Result: (.+), Source: (.+)\n.*Reason: (.+)\n", output)
    if rejected:
        return AssociationOutcome(
            status="rejected",
            result=_DCMTK_RESULT[rejected[1]],
            source=_DCMTK_SOURCE[rejected[2]],
            reason=_DCMTK_REASON[rejected[3]],
        )
    assert "Association Accepted" in output, output

    def last(field: str) -> str:
        # The RQ dump comes first with empty "Their ..." fields; the AC dump is the last one.
        values: list[str] = re.findall(rf"Their {field}: *(.*)\n", output)
        return values[-1].strip()

    return AssociationOutcome(
        status="accepted",
        result=0,
        implementation_class_uid=last("Implementation Class UID"),
        implementation_version_name=last("Implementation Version Name"),
        max_pdu_length=int(last("Max PDU Receive Size")),
    )


@pytest.mark.parametrize(("config", "case"), CELLS)
def test_association_answer_seen_by_dcmtk_echoscu(
    request: pytest.FixtureRequest, config: str, case: str
) -> None:
    server: RunningServer = request.getfixturevalue(config)
    called, calling = _titles(server, case)

    assert _echoscu(server, called=called, calling=calling) == FACTS[config][case]


@pytest.mark.parametrize(
    ("config", "kind", "aet", "has_http"),
    [
        ("orthanc_open", "orthanc", "ORTHANC", True),
        ("orthanc_called_check", "orthanc", "ORTHANC", True),
        ("dcmqrscp_any", "dcmqrscp", "DCMQRSCP", False),
        ("dcmqrscp_restricted", "dcmqrscp", "DCMQRSCP", False),
    ],
)
def test_fixture_describes_its_server(
    request: pytest.FixtureRequest, config: str, kind: str, aet: str, has_http: bool
) -> None:
    server: RunningServer = request.getfixturevalue(config)

    assert (server.kind, server.host, server.aet) == (kind, LOOPBACK, aet)
    assert (server.http_port is not None) is has_http
    assert server.port != server.http_port
    assert server.log.is_file()
    assert server.workdir.is_dir()
    assert server.description


def _get_json(server: RunningServer, path: str) -> Any:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{server.http_port}{path}", timeout=10) as response:
        return json.load(response)


def test_orthanc_runs_debian_binary_without_system_plugins(orthanc_open: RunningServer) -> None:
    system = _get_json(orthanc_open, "/system")
    plugins = _get_json(orthanc_open, "/plugins")

    assert system["Version"] == "1.10.1"
    assert (system["DicomAet"], system["DicomPort"]) == ("ORTHANC", orthanc_open.port)
    # "explorer.js" is Orthanc Explorer's hook, built in; Debian's dicom-web, serve-folders
    # and worklists plugins would show up here if /etc/orthanc had been read.
    assert set(plugins) <= {"explorer.js"}


def _orthanc_with_name(tmp: Path) -> AbstractContextManager[RunningServer]:
    return orthanc(tmp, extra_config={"Name": "lifecycle-check"})


def _dcmqrscp_plain(tmp: Path) -> AbstractContextManager[RunningServer]:
    return dcmqrscp(tmp)


@pytest.mark.parametrize("start", [_orthanc_with_name, _dcmqrscp_plain], ids=["orthanc", "dcmqrscp"])
def test_leaving_the_context_stops_the_server_and_drops_its_data(
    tmp_path: Path, start: Callable[[Path], AbstractContextManager[RunningServer]]
) -> None:
    with start(tmp_path) as server:
        storage = server.workdir / "storage"
        assert storage.is_dir()
        if server.kind == "orthanc":
            assert _get_json(server, "/system")["Name"] == "lifecycle-check"

    assert try_association(server.host, server.port, called=server.aet, calling="AFTER").status == (
        "unreachable"
    )
    assert not storage.exists()
    assert server.log.is_file()


def test_orthanc_that_exits_at_start_fails_with_its_log(tmp_path: Path) -> None:
    with (
        pytest.raises(ServerStartError, match=r"exited(.|\n)*create_directories"),
        orthanc(tmp_path, extra_config={"StorageDirectory": "/proc/no-such-dir/storage"}),
    ):
        pass


def test_orthanc_without_dicom_server_times_out_with_its_log(tmp_path: Path) -> None:
    with (
        pytest.raises(ServerStartError, match=r"not ready after 1 s(.|\n)*Orthanc has started"),
        orthanc(tmp_path, extra_config={"DicomServerEnabled": False}, ready_timeout_s=1.0),
    ):
        pass


def _poll(check: Callable[[], AssociationOutcome], until: str, timeout_s: float) -> Iterator[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        status = check().status
        yield status
        if status == until or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def test_dcmqrscp_single_process_dies_after_first_accepted_association(tmp_path: Path) -> None:
    """Why the fixtures run dcmqrscp in its default fork mode (dcmtk 3.6.7, Debian 12).

    The readiness check is one accepted-and-released association; in --single-process
    mode the server segfaults right after it (SIGSEGV in DUL_DropAssociation), and the
    port goes dark. If this starts failing, the bug is fixed and single-process is usable.
    """
    with dcmqrscp(tmp_path, single_process=True) as server:

        def probe() -> AssociationOutcome:
            return try_association(server.host, server.port, called=server.aet, calling="AGAIN")

        statuses = list(_poll(probe, until="unreachable", timeout_s=5.0))

    assert statuses[-1] == "unreachable"
