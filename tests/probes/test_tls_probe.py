"""`probe_tls` against real OpenSSL servers on loopback (Python's `ssl`) and hostile peers.

Every server here is started by the test, with a certificate generated for it; every bound is
asserted in wall time as well as in the status.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pacsaudit.config import ScanSettings
from pacsaudit.discovery import Connector
from pacsaudit.engine.runner import run
from pacsaudit.lab.hostile import HostileKind, start_hostile
from pacsaudit.lab.simulator import PacsPolicy, start_simulated_pacs
from pacsaudit.model import Status, TlsBlock
from pacsaudit.probes import tls as tls_module
from pacsaudit.probes.tls import client_context, looks_like_tls, probe_tls, tls_failure
from probes.test_tls_certificates import TestCertificate, make_certificate, server_context

TIMEOUT = 1.0
SLACK = 0.75  # scheduling on a loaded 2-core machine


@contextmanager
def tls_server(context: ssl.SSLContext) -> Iterator[int]:
    """A blocking OpenSSL server in threads, as most TLS services are: it sends its alerts, then hangs up.

    (asyncio's own TLS server drops the alert of a failed handshake, which real servers send.)
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                while tls.recv(4096):
                    pass
        except OSError:  # ssl.SSLError included: the client's failures are the test's subject
            pass
        finally:
            conn.close()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=serve, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join()
        listener.close()


async def _probe(
    port: int, *, hostname: str | None = None, timeout: float = TIMEOUT
) -> tuple[TlsBlock, float]:
    settings = ScanSettings(timeout=timeout, deadline=5.0, rate=0)
    connector = Connector(timeout=timeout, rate=0, per_host=4)
    started = time.monotonic()
    block = await probe_tls(
        "127.0.0.1", port, connector=connector, settings=settings, server_hostname=hostname
    )
    return block, time.monotonic() - started


def _probe_server(context: ssl.SSLContext, *, uvloop: bool = False, **options: Any) -> tuple[TlsBlock, float]:
    with tls_server(context) as port:
        return run(_probe(port, **options), use_uvloop=uvloop)


@pytest.fixture(scope="module")
def server_cert(tmp_path_factory: pytest.TempPathFactory) -> TestCertificate:
    return make_certificate(tmp_path_factory.mktemp("tls-server"), common_name="pacs.test")


# The client context


def test_client_context_trusts_nothing_and_allows_old_versions() -> None:
    context = client_context()
    assert context is client_context()  # built once
    assert context.verify_mode is ssl.CERT_NONE and context.check_hostname is False
    assert context.minimum_version is ssl.TLSVersion.MINIMUM_SUPPORTED
    assert context.maximum_version is ssl.TLSVersion.MAXIMUM_SUPPORTED
    assert not context.get_ca_certs()  # no client certificate, no trust store loaded


# Handshakes that complete


@pytest.mark.parametrize("uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_self_signed_tls13_server_is_described(server_cert: TestCertificate, uvloop: bool) -> None:
    block, took = _probe_server(server_context(server_cert), uvloop=uvloop)
    assert block.status is Status.SUCCESS and block.detected
    assert block.version == "TLSv1.3"
    assert block.cipher is not None and block.cipher.startswith("TLS_")
    assert block.cipher_bits in (128, 256)
    assert block.client_certificate_requested is False
    assert block.client_certificate_required is False
    assert block.certificate is not None
    assert block.certificate.subject == "CN=pacs.test"
    assert block.certificate.self_signed is True
    assert block.sni is None  # an IP target: no SNI
    assert block.handshake_ms is not None and 0 < block.handshake_ms < 1000 * TIMEOUT
    assert took < 0.5  # nothing waited for: the server asked for no certificate


def test_hostname_is_sent_as_sni(server_cert: TestCertificate) -> None:
    context = server_context(server_cert)
    seen: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: seen.append(name)
    block, _ = _probe_server(context, hostname="pacs.hospital.test")
    assert block.sni == "pacs.hospital.test"
    assert seen == ["pacs.hospital.test"]


def test_tls12_server(server_cert: TestCertificate) -> None:
    block, _ = _probe_server(server_context(server_cert, tls_versions=("TLSv1_2", "TLSv1_2")))
    assert block.version == "TLSv1.2" and block.detected


def _tls10_handshake_possible(cert: TestCertificate) -> bool:
    """Whether this OpenSSL can still speak TLS 1.0 at all (some builds drop it entirely)."""
    if not ssl.HAS_TLSv1:
        return False
    try:
        server_context(cert, tls_versions=("TLSv1", "TLSv1"))
    except ssl.SSLError:
        return False
    return True


def test_tls10_only_server_is_still_described(server_cert: TestCertificate) -> None:
    if not _tls10_handshake_possible(server_cert):
        pytest.skip("the local OpenSSL refuses TLS 1.0 even at security level 0")
    block, _ = _probe_server(server_context(server_cert, tls_versions=("TLSv1", "TLSv1")))
    assert block.status is Status.SUCCESS, block
    assert block.version == "TLSv1"
    assert block.certificate is not None and block.certificate.key_bits == 2048


def test_expired_certificate_is_a_fact_not_a_failure(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    expired = make_certificate(
        tmp_path, not_before=now - timedelta(days=800), not_after=now - timedelta(days=1)
    )
    block, _ = _probe_server(server_context(expired))
    assert block.status is Status.SUCCESS and block.detected
    assert block.certificate is not None and block.certificate.expired is True


def test_1024_bit_key_is_described(tmp_path: Path) -> None:
    weak = make_certificate(tmp_path, key_bits=1024)
    block, _ = _probe_server(server_context(weak))
    assert block.status is Status.SUCCESS
    assert block.certificate is not None
    assert (block.certificate.key_type, block.certificate.key_bits) == ("RSA", 1024)


# Client certificates


@pytest.mark.parametrize("uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_tls13_server_requiring_a_client_certificate(server_cert: TestCertificate, uvloop: bool) -> None:
    """TLS 1.3 lets the client finish first; the refusal is an alert right after: waited for, briefly."""
    block, took = _probe_server(server_context(server_cert, client_certificate="required"), uvloop=uvloop)
    assert block.status is Status.SUCCESS and block.detected
    assert block.version == "TLSv1.3"
    assert block.client_certificate_requested is True
    assert block.client_certificate_required is True
    assert block.alert == "certificate_required"
    assert block.certificate is not None and block.certificate.subject == "CN=pacs.test"
    assert took < 1.0 + SLACK


@pytest.mark.parametrize("uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_tls12_server_requiring_a_client_certificate(server_cert: TestCertificate, uvloop: bool) -> None:
    """TLS 1.2 refuses inside the handshake, with a generic alert: the CertificateRequest explains it."""
    context = server_context(server_cert, tls_versions=("TLSv1_2", "TLSv1_2"), client_certificate="required")
    block, _ = _probe_server(context, uvloop=uvloop)
    assert block.status is Status.SUCCESS and block.detected
    assert block.client_certificate_requested is True
    assert block.client_certificate_required is True
    assert block.alert == "handshake_failure"
    assert block.version is None and block.certificate is None  # the handshake never completed


@pytest.mark.parametrize("versions", [None, ("TLSv1_2", "TLSv1_2")], ids=["tls13", "tls12"])
def test_optional_client_certificate_is_requested_not_required(
    server_cert: TestCertificate, versions: tuple[str, str] | None
) -> None:
    block, _ = _probe_server(
        server_context(server_cert, tls_versions=versions, client_certificate="optional")
    )
    assert block.status is Status.SUCCESS
    assert block.client_certificate_requested is True
    assert block.client_certificate_required is False
    assert block.alert is None


def test_without_the_message_callback_mutual_tls_is_unknown_not_false(
    server_cert: TestCertificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should CPython drop its private message callback, the probe says "unknown", never "open"."""
    monkeypatch.setattr(tls_module, "_WATCHES_MESSAGES", False)
    tls12 = server_context(server_cert, tls_versions=("TLSv1_2", "TLSv1_2"), client_certificate="required")
    block, _ = _probe_server(tls12)
    assert block.client_certificate_requested is None and block.client_certificate_required is None
    assert (block.status, block.alert) == (Status.PROTOCOL_ERROR, "handshake_failure")
    block, _ = _probe_server(server_context(server_cert, client_certificate="required"))
    assert block.detected and block.version == "TLSv1.3"
    assert block.client_certificate_requested is None and block.client_certificate_required is None


# Peers that are not TLS, or not polite


async def _probe_hostile(kind: HostileKind) -> tuple[TlsBlock, float]:
    server = await start_hostile(kind)
    try:
        return await _probe(server.port)
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("kind", "status", "bound", "words"),
    [
        (HostileKind.TARPIT, Status.IO_TIMEOUT, TIMEOUT, "TLS handshake not finished within the timeout"),
        (HostileKind.DRIP, Status.IO_TIMEOUT, TIMEOUT, "TLS handshake not finished"),  # 1 byte/s
        (HostileKind.GARBAGE, Status.PROTOCOL_ERROR, 0.5, "not a TLS answer"),
        (HostileKind.HTTP, Status.PROTOCOL_ERROR, 0.5, "not a TLS answer"),
        (HostileKind.SSH_BANNER, Status.PROTOCOL_ERROR, 0.5, "not a TLS answer"),
        (HostileKind.IMMEDIATE_CLOSE, Status.CONNECTION_CLOSED, 0.5, "closed"),
        (HostileKind.RST, Status.CONNECTION_RESET, 0.5, ""),
    ],
)
def test_hostile_peer_gets_a_status_in_time(
    kind: HostileKind, status: Status, bound: float, words: str
) -> None:
    block, took = asyncio.run(_probe_hostile(kind))
    assert block.status is status, block
    assert block.detected is False and block.version is None
    assert words in (block.error or "")
    assert took < bound + SLACK


@asynccontextmanager
async def raw_server(on_connect: Callable[[asyncio.Transport], None]) -> AsyncIterator[int]:
    class Reply(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            on_connect(transport)

    server = await asyncio.get_running_loop().create_server(Reply, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def test_tls_shaped_garbage_instead_of_server_hello() -> None:
    """A handshake record header, then nonsense where the ServerHello should be."""

    async def go() -> tuple[TlsBlock, float]:
        def answer(transport: asyncio.Transport) -> None:
            transport.write(bytes.fromhex("16 0303 0010") + b"\xee" * 16)

        async with raw_server(answer) as port:
            return await _probe(port)

    block, took = asyncio.run(go())
    assert block.status is Status.PROTOCOL_ERROR and not block.detected
    assert block.error is not None and block.error.startswith("not a TLS answer")
    assert took < 0.5 + SLACK


def test_handshake_dripping_forever_ends_at_the_timeout() -> None:
    """A valid record header, then one byte every 0.1 s: each read is fresh, the handshake bound holds."""

    async def go() -> tuple[TlsBlock, float]:
        tasks: list[asyncio.Task[None]] = []

        def answer(transport: asyncio.Transport) -> None:
            async def drip() -> None:
                transport.write(bytes.fromhex("16 0303 4000"))
                while not transport.is_closing():
                    transport.write(b"\x02")
                    await asyncio.sleep(0.1)

            tasks.append(asyncio.ensure_future(drip()))

        async with raw_server(answer) as port:
            try:
                return await _probe(port)
            finally:
                for task in tasks:
                    task.cancel()

    block, took = asyncio.run(go())
    assert block.status is Status.IO_TIMEOUT
    assert TIMEOUT - 0.1 < took < TIMEOUT + SLACK


def test_plain_dicom_server_answers_tls_with_an_abort() -> None:
    """TLS tried on a plain-DICOM port: the simulator aborts (unknown PDU type 0x16), `not a TLS answer`."""

    async def go() -> tuple[TlsBlock, float]:
        async with await start_simulated_pacs(PacsPolicy()) as pacs:
            return await _probe(pacs.port)

    block, _ = asyncio.run(go())
    assert block.status is Status.PROTOCOL_ERROR and not block.detected
    assert block.error is not None and "not a TLS answer" in block.error


def test_closed_port() -> None:
    async def go() -> tuple[TlsBlock, float]:
        server = await asyncio.get_running_loop().create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await _probe(port)

    block, _ = asyncio.run(go())
    assert block.status is Status.CONNECTION_REFUSED and not block.detected


# Pure helpers


@pytest.mark.parametrize(
    ("first_bytes", "expected"),
    [
        (bytes.fromhex("15 0301 0002 0246"), True),  # alert record, TLS 1.0 framing: protocol_version
        (bytes.fromhex("15 0303 0002 0228"), True),  # alert, TLS 1.2: handshake_failure
        (bytes.fromhex("16 0303 0050"), True),  # handshake record
        (bytes.fromhex("02 00 0000 00c8"), False),  # A-ASSOCIATE-AC
        (bytes.fromhex("07 00 0000 0004"), False),  # A-ABORT
        (b"HTTP/1.1 400", False),
        (bytes.fromhex("15 03"), False),  # too short to tell
        (bytes.fromhex("15 0309"), False),  # no such version
    ],
)
def test_looks_like_tls(first_bytes: bytes, expected: bool) -> None:
    assert looks_like_tls(first_bytes) is expected


def test_tls_failure_of_unexpected_exceptions_is_data() -> None:
    assert tls_failure(TimeoutError()).status is Status.IO_TIMEOUT
    assert tls_failure(ConnectionResetError(errno.ECONNRESET, "reset")).status is Status.CONNECTION_RESET
    assert tls_failure(ConnectionResetError("Connection lost")).status is Status.CONNECTION_CLOSED  # a FIN
    block = tls_failure(RuntimeError("peer data must not leak here"))
    assert block.status is Status.UNKNOWN_ERROR
    assert block.error == "TLS probe failed: RuntimeError"


# The connector's TLS path keeps the scan's limits


def test_tls_connections_hold_and_release_the_host_slot(server_cert: TestCertificate) -> None:
    """The handshake happens inside the per-host cap, and every outcome gives the slot back."""

    async def go(port: int, tarpit_port: int) -> tuple[float, int]:
        connector = Connector(timeout=TIMEOUT, rate=0, per_host=1)
        settings = ScanSettings(timeout=TIMEOUT, deadline=5.0, rate=0)
        started = time.monotonic()
        stalled, described = await asyncio.gather(
            probe_tls("127.0.0.1", tarpit_port, connector=connector, settings=settings),
            probe_tls("127.0.0.1", port, connector=connector, settings=settings),
        )
        assert stalled.status is Status.IO_TIMEOUT and described.detected
        return time.monotonic() - started, len(connector.hosts)

    async def with_tarpit(port: int) -> tuple[float, int]:
        tarpit = await start_hostile(HostileKind.TARPIT)
        try:
            return await go(port, tarpit.port)
        finally:
            await tarpit.close()

    with tls_server(server_context(server_cert)) as port:
        took, open_hosts = asyncio.run(with_tarpit(port))
    assert took >= TIMEOUT  # the second waited for the first's slot: one connection per host
    assert open_hosts == 0


def test_tls_over_ipv6_loopback(server_cert: TestCertificate) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    context = server_context(server_cert)

    def serve() -> None:
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    settings = ScanSettings(timeout=TIMEOUT, deadline=5.0, rate=0)
    connector = Connector(timeout=TIMEOUT, rate=0, per_host=4)
    try:
        block = asyncio.run(
            probe_tls("::1", listener.getsockname()[1], connector=connector, settings=settings)
        )
    finally:
        thread.join(5)
        listener.close()
    assert block.detected and block.version == "TLSv1.3"
