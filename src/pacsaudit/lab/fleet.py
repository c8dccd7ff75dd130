"""The built-in lab: a declared fleet of simulated PACS and hostile peers on 127.77.0.0/24.

`LAB_FLEET` is what `pacsaudit lab` scans: well-behaved archives with the identities and
AE-title habits of real products, and one of each hostile peer, each with the outcome a correct
scan reports for it, in words and in the result model's own terms. Linux routes all of 127/8 to
the loopback interface, so the lab needs no setup there (macOS only answers on 127.0.0.1).

`start_many` serves the benchmark's uniform fleets: `count` servers of one policy on consecutive
loopback addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

from pacsaudit.lab._net import require_loopback
from pacsaudit.lab.hostile import HostileKind, HostileServer, start_hostile
from pacsaudit.lab.simulator import PacsPolicy, SimStudy, SimulatedPacs, start_simulated_pacs
from pacsaudit.lab.web import SimulatedWebPacs, WebPolicy, lab_server_context, start_web_pacs
from pacsaudit.model import AssociationOutcome, Status

__all__ = [
    "LAB_FLEET",
    "LabMember",
    "LabServer",
    "RunningFleet",
    "ThreadedFleet",
    "many_members",
    "start_fleet",
    "start_fleet_in_thread",
    "start_many",
]


@dataclass(frozen=True)
class LabMember:
    """One lab endpoint: what it is, where it listens, and what a correct scan says about it."""

    name: str
    description: str
    host: str
    port: int
    behaviour: PacsPolicy | HostileKind | WebPolicy
    expected: str
    """The outcome in words, for the demo's table."""
    expected_status: Status | None
    """`EndpointResult.status`; `None` where more than one status is defensible (see `expected`)."""
    expected_association: AssociationOutcome | None = None
    """`dicom.association`, assuming the AE-title dictionary holds the titles named in `expected`."""
    expected_open_to_any_ae: bool | None = None
    expected_called_ae: str | None = None
    """`dicom.accepted_called_ae` when the archive checks the called AE title."""
    expected_transient: bool = False
    product: str | None = None
    """The product the implementation class UID and version name impersonate."""
    expected_studies: int | None = None
    """With `--census`: the studies a stranger can enumerate (exactly: the census must say so)."""
    tls: bool = False
    """Served inside TLS, with a self-signed certificate made when the lab starts."""
    expected_web_product: str | None = None
    """`http.product`, for a web front end."""
    expected_auth_required: bool | None = None
    """`http.auth_required`, for a web front end."""

    def __post_init__(self) -> None:
        require_loopback(self.host)


_DCMTK_366: Final = PacsPolicy(  # PacsPolicy's own defaults are DCMTK 3.6.7's identity
    implementation_class_uid="1.2.276.0.7230010.3.0.3.6.6", implementation_version_name="OFFIS_DCMTK_366"
)


def _archive(
    name: str,
    last_octet: int,
    port: int,
    policy: PacsPolicy,
    description: str,
    expected: str,
    *,
    association: AssociationOutcome,
    open_to_any_ae: bool | None,
    called_ae: str | None = None,
    transient: bool = False,
    product: str | None = None,
) -> LabMember:
    studies = len(policy.studies) if policy.studies else None
    return LabMember(
        name=name,
        description=description,
        host=f"127.77.0.{last_octet}",
        port=port,
        behaviour=policy,
        expected=expected,
        expected_status=Status.SUCCESS,
        expected_association=association,
        expected_open_to_any_ae=open_to_any_ae,
        expected_called_ae=called_ae,
        expected_transient=transient,
        product=product,
        expected_studies=studies,
    )


def _hostile(
    kind: HostileKind,
    last_octet: int,
    port: int,
    expected: str,
    status: Status | None,
    *,
    association: AssociationOutcome | None = None,
) -> LabMember:
    return LabMember(
        name=str(kind),
        description=f"hostile peer: {kind.description}",
        host=f"127.77.0.{last_octet}",
        port=port,
        behaviour=kind,
        expected=expected,
        expected_status=status,
        expected_association=association,
    )


def lab_studies(count: int, *, seed: int, undated: int = 0, busy_day: int = 0) -> tuple[SimStudy, ...]:
    """A small invented archive for the lab's census: dates over ten years, 9- and 10-digit IDs
    (SSN- and DoD-ID-shaped on purpose), some undated studies, one busy day, birth dates."""
    rng = random.Random(seed)
    patients = [
        (f"{rng.randint(100, 665)}{rng.randint(10, 99)}{rng.randint(1000, 9999)}" if rng.random() < 0.5
         else f"{rng.randint(10**9, 10**10 - 1)}",
         f"{rng.randint(1935, 2015)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}")
        for _ in range(max(count // 3, 1))
    ]  # fmt: skip
    studies = []
    for n in range(count):
        patient_id, born = patients[n % len(patients)]
        if n < undated:
            day = ""
        elif n < undated + busy_day:
            day = "20210315"
        else:
            day = f"{rng.randint(2014, 2023)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        modalities = rng.choice((("CT",), ("MR",), ("CR",), ("CT", "SR"), ("US",)))
        studies.append(
            SimStudy(f"2.25.{seed}{n:06d}", patient_id, day, modalities, len(modalities), rng.randint(1, 40),
                     patient_birth_date=born)
        )  # fmt: skip
    return tuple(studies)


_ORTHANC_STUDIES: Final = lab_studies(150, seed=7, undated=3)

LAB_FLEET: Final[tuple[LabMember, ...]] = (
    _archive(
        "orthanc",
        10,
        4242,
        PacsPolicy(studies=_ORTHANC_STUDIES),
        "Orthanc with its default configuration (DCMTK inside, no called-AE check)",
        "open to any AE",
        association="accepted",
        open_to_any_ae=True,
        product="DCMTK",
    ),
    _archive(
        "orthanc-checked",
        25,
        4242,
        PacsPolicy(called_aets=frozenset({"ORTHANC"})),
        "Orthanc with DicomCheckCalledAet on",
        "called AE title check (AE ORTHANC)",
        association="accepted",
        open_to_any_ae=False,
        called_ae="ORTHANC",
        product="DCMTK",
    ),
    _archive(
        "dcm4chee-arc",
        11,
        11112,
        PacsPolicy(
            called_aets=frozenset({"DCM4CHEE"}),
            implementation_class_uid="1.2.40.0.13.1.3",
            implementation_version_name="dcm4che-5.31.0",
            max_pdu_length=16378,
        ),
        "dcm4chee-arc 5: checks the called AE title, accepts any calling AE",
        "called AE title check (AE DCM4CHEE)",
        association="accepted",
        open_to_any_ae=False,
        called_ae="DCM4CHEE",
        product="dcm4che",
    ),
    _archive(
        "dcmqrscp",
        12,
        11112,
        replace(
            _DCMTK_366,
            called_aets=frozenset({"ARCHIVE"}),
            calling_aets=frozenset({"ECHOSCU", "FINDSCU", "MOVESCU", "STORESCU"}),
            lying_reason=True,
        ),
        "DCMTK dcmqrscp: checks both titles, and says 'called AE' when it refuses the calling AE",
        "called AE title check (AE ARCHIVE) and calling AE check (DCMTK tool names); reason 7 lies",
        association="rejected",
        open_to_any_ae=False,
        product="DCMTK",
    ),
    _archive(
        "calling-check",
        13,
        11112,
        PacsPolicy(calling_aets=frozenset({"WORKSTATION1"}), lying_reason=True),
        "DCMTK-based archive that knows its peers: any called AE, only one calling AE",
        "calling AE check only; the reject says 'called AE not recognized' (reason 7) all the same",
        association="rejected",
        open_to_any_ae=False,
        product="DCMTK",
    ),
    _archive(
        "conquest",
        14,
        5678,
        PacsPolicy(
            called_aets=frozenset({"CONQUESTSRV1"}),
            implementation_class_uid="1.2.826.0.1.3680043.2.135.1066.101",
            implementation_version_name="1.5.0/WIN32",
        ),
        "Conquest DICOM server on its default port, called AE CONQUESTSRV1",
        "called AE title check (AE CONQUESTSRV1)",
        association="accepted",
        open_to_any_ae=False,
        called_ae="CONQUESTSRV1",
        product="Conquest",
    ),
    _archive(
        "pynetdicom",
        15,
        11112,
        PacsPolicy(
            implementation_class_uid=str(PYNETDICOM_IMPLEMENTATION_UID),
            implementation_version_name=PYNETDICOM_IMPLEMENTATION_VERSION,
            max_pdu_length=16382,
        ),
        "a pynetdicom SCP with require_called_aet and require_calling_aet off",
        "open to any AE",
        association="accepted",
        open_to_any_ae=True,
        product="pynetdicom",
    ),
    _archive(
        "fo-dicom",
        16,
        11112,
        PacsPolicy(
            called_aets=frozenset({"STORESCP"}),
            implementation_class_uid="1.3.6.1.4.1.30071.8",
            implementation_version_name="fo-dicom 4.0.0",
        ),
        "a fo-dicom service checking its called AE title",
        "called AE title check (AE STORESCP)",
        association="accepted",
        open_to_any_ae=False,
        called_ae="STORESCP",
        product="fo-dicom",
    ),
    _archive(
        "clearcanvas",
        17,
        11112,
        PacsPolicy(
            called_aets=frozenset({"PACS"}),
            implementation_class_uid="1.3.6.1.4.1.25403.1.1.1",
            implementation_version_name="Dicom 0.1",
        ),
        "a ClearCanvas ImageServer partition named PACS",
        "called AE title check (AE PACS)",
        association="accepted",
        open_to_any_ae=False,
        called_ae="PACS",
        product="ClearCanvas",
    ),
    _archive(
        "secret-title",
        18,
        11112,
        replace(_DCMTK_366, called_aets=frozenset({"RAD7Q2XV"})),
        "an archive whose called AE title no dictionary holds",
        "called AE title check; the title is not found (rejected, reason 7 every time)",
        association="rejected",
        open_to_any_ae=False,
        product="DCMTK",
    ),
    _archive(
        "busy-once",
        19,
        11112,
        PacsPolicy(busy_times=1),
        "an open archive that is busy for the first association it sees",
        "busy once (result 2, source 3, reason 2), then open to any AE on the polite retry",
        association="accepted",
        open_to_any_ae=True,
        product="DCMTK",
    ),
    _archive(
        "busy",
        20,
        2761,
        PacsPolicy(busy_times=1 << 30),
        "an archive at its association limit, whoever asks",
        "busy: transient reject every time; not an AE-title check",
        association="rejected",
        open_to_any_ae=None,
        transient=True,
        product="DCMTK",
    ),
    _archive(
        "reject-all",
        21,
        4242,
        PacsPolicy(reject_all=(1, 1, 1)),
        "an archive that refuses everyone with 'no reason given'",
        "rejects every association (result 1, source 1, reason 1)",
        association="rejected",
        open_to_any_ae=False,
        product="DCMTK",
    ),
    _archive(
        "abort-all",
        22,
        11112,
        PacsPolicy(abort_on_associate=True),
        "a DICOM service that answers every A-ASSOCIATE-RQ with an A-ABORT",
        "aborts every association (A-ABORT, source 0)",
        association="aborted",
        open_to_any_ae=None,
        product="DCMTK",
    ),
    _archive(
        "echo-refused",
        23,
        11112,
        PacsPolicy(echo_status=0x0122),
        "an open archive whose C-ECHO answers 0x0122 (SOP class not supported)",
        "open to any AE; C-ECHO fails with status 0x0122",
        association="accepted",
        open_to_any_ae=True,
        product="DCMTK",
    ),
    _archive(
        "dcm4chee2",
        24,
        11112,
        PacsPolicy(
            called_aets=frozenset({"DCM4CHEE"}),
            implementation_class_uid="1.2.40.0.13.1.1",
            implementation_version_name="dcm4che-2.0.29",
        ),
        "dcm4chee 2.x, the JBoss-era archive still found online",
        "called AE title check (AE DCM4CHEE)",
        association="accepted",
        open_to_any_ae=False,
        called_ae="DCM4CHEE",
        product="dcm4che",
    ),
    _archive(
        "capped-archive",
        26,
        11112,
        PacsPolicy(
            studies=lab_studies(900, seed=11, undated=12, busy_day=130),
            find_cap=100,
            implementation_class_uid="1.2.40.0.13.1.3",
            implementation_version_name="dcm4che-5.31.0",
        ),
        "an archive that caps C-FIND answers at 100 (like Orthanc's LimitFindResults)",
        "open to any AE; census exact past the cap",
        association="accepted",
        open_to_any_ae=True,
        product="dcm4che",
    ),
    replace(
        _archive(
            "dicom-tls",
            62,
            2762,
            PacsPolicy(),
            "an archive speaking only DICOM over TLS (self-signed certificate), open to any AE",
            "TLS first; open to any AE inside TLS",
            association="accepted",
            open_to_any_ae=True,
            product="DCMTK",
        ),
        tls=True,
    ),
    LabMember(
        name="orthanc-web",
        description="the Orthanc above, seen from its REST API on 8042 (no authentication)",
        host="127.77.0.10",
        port=8042,
        behaviour=WebPolicy(studies=_ORTHANC_STUDIES),
        expected="web: Orthanc, no authentication, studies counted from /statistics",
        expected_status=Status.SUCCESS,
        expected_web_product="Orthanc",
        expected_auth_required=False,
        expected_studies=len(_ORTHANC_STUDIES),
    ),
    LabMember(
        name="orthanc-web-auth",
        description="an Orthanc REST API with authentication on",
        host="127.77.0.61",
        port=8042,
        behaviour=WebPolicy(basic_auth=("radiology", "a-long-local-password")),
        expected="web: Orthanc, authentication required",
        expected_status=Status.SUCCESS,
        expected_web_product="Orthanc",
        expected_auth_required=True,
    ),
    _hostile(HostileKind.TARPIT, 40, 11112, "tarpit: io-timeout", Status.IO_TIMEOUT),
    _hostile(HostileKind.DRIP, 41, 11112, "drip: io-timeout at the deadline", Status.IO_TIMEOUT),
    _hostile(HostileKind.HUGE_LENGTH, 42, 11112, "absurd PDU length: protocol-error", Status.PROTOCOL_ERROR),
    _hostile(
        HostileKind.TRUNCATED, 43, 4242, "truncated A-ASSOCIATE-AC: protocol-error", Status.PROTOCOL_ERROR
    ),
    _hostile(
        HostileKind.UNKNOWN_PDU, 44, 11112, "unknown PDU type 0x0A: protocol-error", Status.PROTOCOL_ERROR
    ),
    _hostile(HostileKind.HTTP, 45, 4242, "an HTTP server: not-dicom", Status.NOT_DICOM),
    _hostile(
        HostileKind.IMMEDIATE_CLOSE, 46, 11112, "closes at once: connection-closed", Status.CONNECTION_CLOSED
    ),
    _hostile(HostileKind.RST, 47, 11112, "resets at once: connection-reset", Status.CONNECTION_RESET),
    _hostile(HostileKind.GARBAGE, 48, 2762, "64 bytes of noise: not-dicom", Status.NOT_DICOM),
    _hostile(HostileKind.SSH_BANNER, 49, 11112, "an SSH server: not-dicom", Status.NOT_DICOM),
    _hostile(
        HostileKind.SILENT_AFTER_AC,
        50,
        11112,
        "accepted, then C-ECHO unanswered (echo not true) and the release times out",
        None,
        association="accepted",
    ),
    _hostile(
        HostileKind.BAD_AC,
        51,
        11112,
        "A-ASSOCIATE-AC items overrun the PDU: protocol-error",
        Status.PROTOCOL_ERROR,
    ),
)
"""The built-in lab, in the order `pacsaudit lab` lists it."""


LabServer = SimulatedPacs | HostileServer | SimulatedWebPacs
"""What a started member is."""


class RunningFleet:
    """Started lab members. `close()` or `async with` stops them all."""

    def __init__(self, servers: Sequence[tuple[LabMember, LabServer]]) -> None:
        self.servers = list(servers)

    @property
    def endpoints(self) -> list[tuple[LabMember, str, int]]:
        """(member, host, port) for every member, the port as bound."""
        return [(member, server.host, server.port) for member, server in self.servers]

    async def close(self) -> None:
        servers, self.servers = self.servers, []
        await asyncio.gather(*(server.close() for _, server in servers))

    async def __aenter__(self) -> RunningFleet:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def _start_member(member: LabMember, port: int) -> LabServer:
    if isinstance(member.behaviour, HostileKind):
        return await start_hostile(member.behaviour, member.host, port)
    if isinstance(member.behaviour, WebPolicy):
        return await start_web_pacs(member.behaviour, member.host, port)
    tls = lab_server_context() if member.tls else None
    return await start_simulated_pacs(member.behaviour, member.host, port, tls=tls)


async def start_fleet(members: Iterable[LabMember] = LAB_FLEET, *, any_port: bool = False) -> RunningFleet:
    """Start every member on its address; with `any_port`, on a free port instead of its own.

    If one cannot start (its port is taken, say), those already started are closed again.
    """
    started: list[tuple[LabMember, LabServer]] = []
    try:
        for member in members:
            started.append((member, await _start_member(member, 0 if any_port else member.port)))
    except BaseException:
        await RunningFleet(started).close()
        raise
    return RunningFleet(started)


def many_members(
    policy: PacsPolicy, count: int, base: str = "127.78.0.1", port: int = 11112
) -> list[LabMember]:
    """`count` members with `policy` on consecutive loopback addresses from `base`, all on `port`."""
    first = ipaddress.ip_address(require_loopback(base))
    open_to_any = policy.accepts_anyone
    return [
        LabMember(
            name=f"pacs-{index + 1}",
            description="one of a uniform benchmark fleet",
            host=str(first + index),
            port=port,
            behaviour=policy,
            expected="open to any AE" if open_to_any else "as its policy says",
            expected_status=Status.SUCCESS,
            expected_association="accepted" if open_to_any else None,
            expected_open_to_any_ae=True if open_to_any else None,
        )
        for index in range(count)
    ]


async def start_many(
    policy: PacsPolicy,
    count: int,
    base: str = "127.78.0.1",
    port: int = 11112,
    *,
    any_port: bool = False,
) -> RunningFleet:
    """Start `count` simulated PACS with `policy` on consecutive loopback addresses from `base`."""
    return await start_fleet(many_members(policy, count, base, port), any_port=any_port)


class ThreadedFleet:
    """A fleet served by its own event loop in a daemon thread, so a scanner's loop has the main thread."""

    def __init__(self, members: Iterable[LabMember], *, any_port: bool = False) -> None:
        self._members = tuple(members)
        self._any_port = any_port
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._fleet: RunningFleet | None = None
        self._thread = threading.Thread(target=self._run, name="pacsaudit-lab-fleet", daemon=True)

    @property
    def endpoints(self) -> list[tuple[LabMember, str, int]]:
        return self._fleet.endpoints if self._fleet is not None else []

    @property
    def servers(self) -> list[tuple[LabMember, LabServer]]:
        """The servers, for their counters; read them, do not call them, from another thread."""
        return list(self._fleet.servers) if self._fleet is not None else []

    def start(self, timeout: float = 60.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise TimeoutError("the lab fleet did not start in time")
        if self._error is not None:
            self._thread.join(timeout)
            raise self._error

    def stop(self, timeout: float = 30.0) -> None:
        """Close every server and join the thread."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already finished
                loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._error is not None and self._fleet is not None:  # started, then failed to close
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> ThreadedFleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to the starting thread
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        fleet = await start_fleet(self._members, any_port=self._any_port)
        self._fleet = fleet
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await fleet.close()


def start_fleet_in_thread(
    members: Iterable[LabMember] = LAB_FLEET, *, any_port: bool = False
) -> ThreadedFleet:
    """Start `members` on an event loop of their own, in a daemon thread; stop() (or `with`) ends it."""
    fleet = ThreadedFleet(members, any_port=any_port)
    fleet.start()
    return fleet
