"""Start real PACS software (Orthanc, DCMTK dcmqrscp) on loopback for integration tests.

A plain module, not a pytest plugin, so benchmarks and ad-hoc scripts can reuse it::

    with orthanc(Path("/tmp/x")) as server:
        ...  # server.host, server.port, server.aet, server.http_port

Each context manager writes the server's configuration into a fresh directory under
``tmp``, starts the process in its own process group with its output in a log file, waits
until the DICOM port accepts an association with the right titles, and on exit stops the
whole process group and deletes the stored data (config and log stay for post-mortems).

The servers themselves listen on all interfaces (neither Orthanc 1.10 nor dcmqrscp 3.6
has a bind-address option); everything here only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "ACME_CALLING_AET",
    "LOOPBACK",
    "AssociationOutcome",
    "RunningServer",
    "ServerStartError",
    "dcmqrscp",
    "dcmtk_tool",
    "free_port",
    "orthanc",
    "orthanc_binary",
    "orthanc_dicomweb_plugin",
    "try_association",
]

LOOPBACK = "127.0.0.1"
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
START_ATTEMPTS = 3
"""A free port can be taken by someone else before the server binds it; retry with new ones."""

READY_CALLING_AET = "PACSAUDIT-READY"
ACME_CALLING_AET = "ACMESCU"
"""The calling AE title the integration fixtures configure as a known peer."""


@dataclass(frozen=True)
class RunningServer:
    kind: str
    """``"orthanc"`` or ``"dcmqrscp"``."""
    host: str
    port: int
    """DICOM port."""
    aet: str
    """The server's own (called) AE title."""
    http_port: int | None
    """Orthanc's REST port; ``None`` for dcmqrscp."""
    workdir: Path
    log: Path
    description: str
    """Human-readable configuration, e.g. ``"orthanc called-AET check"``."""


class ServerStartError(RuntimeError):
    """The server exited, refused us, or did not answer in time; the message ends with its log."""


AssociationStatus = Literal[
    "accepted", "rejected", "aborted", "closed", "protocol-error", "no-response", "unreachable"
]


@dataclass(frozen=True)
class AssociationOutcome:
    """What one A-ASSOCIATE-RQ got back, in PS3.8 numbers."""

    status: AssociationStatus
    """``closed``: the peer closed the connection without a PDU; ``protocol-error``: it sent
    something other than AC/RJ/A-ABORT; ``no-response``: nothing came back in time;
    ``unreachable``: no TCP connection."""
    result: int | None = None
    """A-ASSOCIATE-RJ result: 1 rejected-permanent, 2 rejected-transient."""
    source: int | None = None
    """A-ASSOCIATE-RJ source: 1 service user, 2 ACSE provider, 3 presentation provider
    (A-ABORT: 0 service user, 2 service provider)."""
    reason: int | None = None
    """A-ASSOCIATE-RJ reason; with source 1: 1 no reason, 2 application context not
    supported, 3 calling AE not recognized, 7 called AE not recognized."""
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    max_pdu_length: int | None = None
    """Maximum Length Received that the acceptor announced in its A-ASSOCIATE-AC."""


def free_port() -> int:
    """A TCP port on loopback that nobody listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


# A-ASSOCIATE-RQ building blocks (PS3.8 9.3.2). Written by hand rather than through
# pynetdicom's threaded Association: that one sometimes reports an A-ASSOCIATE-RJ as an
# abort when the acceptor closes the socket right after sending it (dcmqrscp does).
_APPLICATION_CONTEXT = b"1.2.840.10008.3.1.1.1"
_VERIFICATION = b"1.2.840.10008.1.1"
_IMPLICIT_VR_LITTLE_ENDIAN = b"1.2.840.10008.1.2"
_OUR_IMPLEMENTATION_CLASS_UID = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'pacsaudit-tests').int}".encode()
_OUR_IMPLEMENTATION_VERSION = b"PACSAUDIT_TESTS"
_OUR_MAX_PDU = 16384


def _item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def _associate_rq(*, called: str, calling: str) -> bytes:
    presentation_context = (
        bytes([1, 0, 0, 0]) + _item(0x30, _VERIFICATION) + _item(0x40, _IMPLICIT_VR_LITTLE_ENDIAN)
    )
    user_information = (
        _item(0x51, struct.pack(">I", _OUR_MAX_PDU))
        + _item(0x52, _OUR_IMPLEMENTATION_CLASS_UID)
        + _item(0x55, _OUR_IMPLEMENTATION_VERSION)
    )
    body = (
        struct.pack(">HH", 1, 0)
        + called.encode("ascii").ljust(16)
        + calling.encode("ascii").ljust(16)
        + bytes(32)
        + _item(0x10, _APPLICATION_CONTEXT)
        + _item(0x20, presentation_context)
        + _item(0x50, user_information)
    )
    return struct.pack(">BBI", 0x01, 0, len(body)) + body


_RELEASE_RQ = struct.pack(">BBI", 0x05, 0, 4) + bytes(4)


def _read_pdu(sock: socket.socket) -> tuple[int, bytes] | None:
    """One PDU as (type, body); ``None`` if the peer closed first."""
    header = _read_exactly(sock, 6)
    if header is None:
        return None
    pdu_type, _, length = struct.unpack(">BBI", header)
    body = _read_exactly(sock, length)
    return None if body is None else (pdu_type, body)


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _accepted(body: bytes) -> AssociationOutcome:
    fields: dict[int, bytes] = {}
    offset = 68  # version, reserved, called, calling, reserved
    while offset + 4 <= len(body):
        item_type, _, length = struct.unpack_from(">BBH", body, offset)
        if item_type == 0x50:
            sub = body[offset + 4 : offset + 4 + length]
            sub_offset = 0
            while sub_offset + 4 <= len(sub):
                sub_type, _, sub_length = struct.unpack_from(">BBH", sub, sub_offset)
                fields[sub_type] = sub[sub_offset + 4 : sub_offset + 4 + sub_length]
                sub_offset += 4 + sub_length
        offset += 4 + length
    max_length = fields.get(0x51)
    return AssociationOutcome(
        status="accepted",
        result=0,
        implementation_class_uid=_text(fields.get(0x52)),
        implementation_version_name=_text(fields.get(0x55)),
        max_pdu_length=struct.unpack(">I", max_length)[0] if max_length and len(max_length) == 4 else None,
    )


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("ascii", "replace").rstrip("\x00 ")


def try_association(
    host: str,
    port: int,
    *,
    called: str,
    calling: str,
    timeout_s: float = 5.0,
    tls: ssl.SSLContext | None = None,
) -> AssociationOutcome:
    """Propose Verification once with these titles, release if accepted, report the answer.

    With `tls` (a client context), the association is DICOM over TLS; a failed handshake is
    reported as ``closed``.
    """
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError:
        return AssociationOutcome(status="unreachable")
    if tls is not None:
        try:
            sock = tls.wrap_socket(sock)
        except OSError:  # ssl.SSLError included: not ready, or refused
            sock.close()
            return AssociationOutcome(status="closed")
    with sock:
        try:
            sock.sendall(_associate_rq(called=called, calling=calling))
            answer = _read_pdu(sock)
            if answer is None:
                return AssociationOutcome(status="closed")
            pdu_type, body = answer
            if pdu_type == 0x02:
                outcome = _accepted(body)
                sock.sendall(_RELEASE_RQ)
                _read_pdu(sock)  # A-RELEASE-RP; its absence changes nothing we report
                return outcome
            if pdu_type == 0x03 and len(body) >= 4:
                return AssociationOutcome(status="rejected", result=body[1], source=body[2], reason=body[3])
            if pdu_type == 0x07 and len(body) >= 4:
                return AssociationOutcome(status="aborted", source=body[2], reason=body[3])
            return AssociationOutcome(status="protocol-error")
        except TimeoutError:
            return AssociationOutcome(status="no-response")
        except OSError:
            return AssociationOutcome(status="closed")


@functools.cache
def dcmtk_tool(name: str) -> Path | None:
    """The DCMTK build of ``name`` on PATH (or /usr/bin), skipping look-alikes.

    pynetdicom installs its own ``echoscu``, ``findscu``, ``storescu`` ... console scripts,
    and a Python environment's bin directory usually comes first on PATH, so the first
    ``echoscu`` found may not be DCMTK's. DCMTK's tools identify themselves as
    ``$dcmtk: <name> v3.x.y ...$`` in ``--version``.
    """
    search_path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin", "/usr/local/bin"])
    for directory in dict.fromkeys(search_path.split(os.pathsep)):
        candidate = Path(directory or ".") / name
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        try:
            version = subprocess.run(
                [str(candidate), "--version"], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if "$dcmtk:" in version.stdout + version.stderr:
            return candidate
    return None


def orthanc_binary() -> Path | None:
    found = shutil.which("Orthanc", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    return Path(found) if found else None


def orthanc_dicomweb_plugin() -> Path | None:
    """Debian ``orthanc-dicomweb``'s plugin, for ``extra_config={"Plugins": [str(path)]}``."""
    for directory in ("/usr/share/orthanc/plugins", "/usr/local/share/orthanc/plugins"):
        candidate = Path(directory) / "libOrthancDicomWeb.so"
        if candidate.is_file():
            return candidate
    return None


@contextlib.contextmanager
def orthanc(
    tmp: Path,
    *,
    check_called_aet: bool = False,
    aet: str = "ORTHANC",
    extra_config: Mapping[str, Any] | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
    ready_tls: ssl.SSLContext | None = None,
) -> Iterator[RunningServer]:
    """Run ``Orthanc <config.json>`` with storage under ``tmp``, no plugins, HTTP on loopback.

    ``ready_tls``: the DICOM port is TLS only (``DicomTlsEnabled`` in ``extra_config``), and
    readiness is an association inside TLS with this client context (with a client certificate
    Orthanc trusts, if it requires one).

    Orthanc only reads the configuration it is given on the command line, so Debian's
    ``/etc/orthanc/`` (which loads the plugins in ``/usr/share/orthanc/plugins``) is never
    consulted; ``Plugins: []`` makes that explicit. ``extra_config`` is merged on top
    (shallow), so later tests can set ``LimitFindResults``, ``RegisteredUsers`` and so on.
    """
    binary = orthanc_binary()
    if binary is None:
        raise ServerStartError("Orthanc is not installed (looked on PATH and in /usr/sbin)")
    workdir = Path(tempfile.mkdtemp(prefix="orthanc-", dir=tmp))
    storage = workdir / "storage"
    config_file = workdir / "orthanc.json"
    log = workdir / "orthanc.log"

    def launch() -> tuple[list[str], RunningServer]:
        dicom_port = free_port()
        http_port = free_port()
        while http_port == dicom_port:
            http_port = free_port()
        config: dict[str, Any] = {
            "Name": "pacsaudit-tests",
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "DicomAet": aet,
            "DicomPort": dicom_port,
            "HttpPort": http_port,
            "HttpServerEnabled": True,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": check_called_aet,
            "Plugins": [],
            "DicomModalities": {},
            "ConcurrentJobs": 1,
        }
        config.update(extra_config or {})
        config_file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        server = RunningServer(
            kind="orthanc",
            host=LOOPBACK,
            port=int(config["DicomPort"]),
            aet=str(config["DicomAet"]),
            http_port=int(config["HttpPort"]),
            workdir=workdir,
            log=log,
            description="orthanc called-AET check" if config["DicomCheckCalledAet"] else "orthanc open",
        )
        return [str(binary), "--verbose", str(config_file)], server

    try:
        with _supervised(
            launch, ready_calling_aet=READY_CALLING_AET, timeout_s=ready_timeout_s, ready_tls=ready_tls
        ) as server:
            yield server
    finally:
        shutil.rmtree(storage, ignore_errors=True)


@contextlib.contextmanager
def dcmqrscp(
    tmp: Path,
    *,
    aet: str = "DCMQRSCP",
    allowed_calling: Sequence[str] | None = None,
    single_process: bool = False,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> Iterator[RunningServer]:
    """Run DCMTK's ``dcmqrscp -c <cfg>`` with one read/write storage area for ``aet``.

    ``allowed_calling=None`` lists the peers as ``ANY``: any calling AE title from any host,
    as long as the called title is ``aet``. A list turns into a HostTable entry per title on
    both ``localhost`` and ``127.0.0.1`` (dcmqrscp compares the peer's looked-up host name,
    which is ``localhost`` here, or its address with ``--disable-host-lookup``), so only
    those calling titles get an association.

    The default fork-per-association mode is used on purpose: in dcmtk 3.6.7 (Debian
    3.6.7-9~deb12u4) ``--single-process`` segfaults in ``DUL_DropAssociation`` right after
    the first accepted association is released (``single_process=True`` exists to show
    that). Forked children share the parent's process group, which is what gets signalled
    on exit. Running as root is fine when the config has no ``UserName``/``GroupName``.
    """
    binary = shutil.which("dcmqrscp")
    if binary is None:
        raise ServerStartError("dcmqrscp (DCMTK) is not installed")
    if allowed_calling is not None and not allowed_calling:
        raise ValueError("allowed_calling must name at least one title (or be None for ANY)")
    for title in [aet, *(allowed_calling or [])]:
        _check_dcmqrscp_title(title)
    if any(ch.isspace() for ch in str(tmp.resolve())):
        raise ValueError(f"dcmqrscp.cfg cannot hold a storage path with blanks: {tmp}")
    workdir = Path(tempfile.mkdtemp(prefix="dcmqrscp-", dir=tmp))
    storage = workdir / "storage" / aet
    storage.mkdir(parents=True)
    config_file = workdir / "dcmqrscp.cfg"
    log = workdir / "dcmqrscp.log"
    if allowed_calling is None:
        description, ready_calling = "dcmqrscp peers ANY", READY_CALLING_AET
    else:
        description = "dcmqrscp calling AEs " + ",".join(allowed_calling)
        ready_calling = allowed_calling[0]
    if single_process:
        description += " single-process"

    def launch() -> tuple[list[str], RunningServer]:
        port = free_port()
        config_file.write_text(
            _dcmqrscp_config(port=port, aet=aet, storage=storage, allowed_calling=allowed_calling),
            encoding="utf-8",
        )
        server = RunningServer(
            kind="dcmqrscp",
            host=LOOPBACK,
            port=port,
            aet=aet,
            http_port=None,
            workdir=workdir,
            log=log,
            description=description,
        )
        mode = ["--single-process"] if single_process else []
        return [binary, "--verbose", *mode, "--config", str(config_file)], server

    try:
        with _supervised(launch, ready_calling_aet=ready_calling, timeout_s=ready_timeout_s) as server:
            yield server
    finally:
        shutil.rmtree(workdir / "storage", ignore_errors=True)


def _check_dcmqrscp_title(title: str) -> None:
    if not title or len(title) > 16 or any(ch.isspace() or ch in "(),=\\#" for ch in title):
        raise ValueError(f"AE title {title!r} cannot be written into a dcmqrscp.cfg")


def _dcmqrscp_config(*, port: int, aet: str, storage: Path, allowed_calling: Sequence[str] | None) -> str:
    host_lines: list[str] = []
    if allowed_calling is None:
        peers = "ANY"
    else:
        names = []
        for index, title in enumerate(allowed_calling):
            name = f"peer{index}"
            names.append(name)
            # The port only matters when dcmqrscp connects out to a peer (C-MOVE).
            host_lines.append(f"{name} = ({title}, localhost, 0), ({title}, {LOOPBACK}, 0)")
        host_lines.append("allowedpeers = " + ", ".join(names))
        peers = "allowedpeers"
    host_table = "".join(f"{line}\n" for line in host_lines)
    return (
        "# Written by pacsaudit's tests/integration/servers.py\n"
        f"NetworkTCPPort  = {port}\n"
        "MaxPDUSize      = 16384\n"
        "MaxAssociations = 16\n"
        "\n"
        "HostTable BEGIN\n"
        f"{host_table}"
        "HostTable END\n"
        "\n"
        "VendorTable BEGIN\n"
        "VendorTable END\n"
        "\n"
        "AETable BEGIN\n"
        f"{aet}  {storage}  RW  (200, 1024mb)  {peers}\n"
        "AETable END\n"
    )


@contextlib.contextmanager
def _supervised(
    launch: Callable[[], tuple[list[str], RunningServer]],
    *,
    ready_calling_aet: str,
    timeout_s: float,
    ready_tls: ssl.SSLContext | None = None,
) -> Iterator[RunningServer]:
    """Start, wait for a real association, yield, stop; retry start if the process dies early."""
    for attempt in range(1, START_ATTEMPTS + 1):
        argv, server = launch()
        with server.log.open("ab") as log_file:
            log_file.write(f"--- pacsaudit: attempt {attempt}: {' '.join(argv)}\n".encode())
            log_file.flush()
            process = subprocess.Popen(
                argv,
                cwd=server.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_until_ready(
                process, server, ready_calling_aet=ready_calling_aet, timeout_s=timeout_s, tls=ready_tls
            )
        except _ExitedEarly:
            _stop(process)
            if attempt == START_ATTEMPTS:
                raise ServerStartError(
                    f"{server.description} exited with {process.returncode} {attempt} times; "
                    f"log {server.log}:\n{_log_tail(server.log)}"
                ) from None
            continue
        except BaseException:
            _stop(process)
            raise
        try:
            yield server
        finally:
            _stop(process)
        return


class _ExitedEarly(Exception):
    pass


def _wait_until_ready(
    process: subprocess.Popen[bytes],
    server: RunningServer,
    *,
    ready_calling_aet: str,
    timeout_s: float,
    tls: ssl.SSLContext | None = None,
) -> None:
    """Ready means: the port takes a TCP connection and an association with the right titles."""
    deadline = time.monotonic() + timeout_s
    outcome = AssociationOutcome(status="unreachable")
    while time.monotonic() < deadline:
        if _has_exited(process):
            raise _ExitedEarly
        outcome = try_association(
            server.host, server.port, called=server.aet, calling=ready_calling_aet, timeout_s=2.0, tls=tls
        )
        if outcome.status == "accepted":
            return
        if outcome.status == "rejected":
            raise ServerStartError(
                f"{server.description} is up but rejected {ready_calling_aet} -> {server.aet}: "
                f"{outcome}; log {server.log}:\n{_log_tail(server.log)}"
            )
        time.sleep(0.1)
    raise ServerStartError(
        f"{server.description} not ready after {timeout_s:.0f} s (last try: {outcome.status}); "
        f"log {server.log}:\n{_log_tail(server.log)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we created, SIGKILL whatever is left, then reap the leader.

    The leader is only reaped at the very end: until then its pid (which is the group id)
    cannot be reused, so the signals can only reach the server and its forked children.
    """
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while not _has_exited(process) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Forked dcmqrscp children busy with an association may have outlived their parent.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _has_exited(process: subprocess.Popen[bytes]) -> bool:
    """Like ``poll()`` but leaves the zombie in place (see ``_stop``)."""
    if process.returncode is not None:
        return True
    status = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return status is not None


def _log_tail(log: Path, lines: int = 40) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])
