"""The TLS probe: what a handshake shows about an endpoint, verification off, old versions allowed.

An auditor describes what it finds rather than trusting it, so the client context verifies
nothing, offers TLS 1.0 to 1.3 and every cipher OpenSSL has (`@SECLEVEL=0`), and sends no client
certificate. With verification off `getpeercert()` is empty: the certificate is read from its DER
bytes with `cryptography`, and only described (subject, issuer, validity, key, signature,
fingerprint).

Mutual TLS is a fact to report, not a failure: OpenSSL shows the handshake messages to a
callback, which notes a CertificateRequest on the connection's `SSLObject` (a subclass, so the
note also reaches the exception of a failed handshake). Refused without a certificate, a TLS
1.2 server ends the handshake with an alert; a TLS 1.3 server only after the client's Finished,
so `probe_tls` then waits a moment for that alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import SignatureAlgorithmOID

from pacsaudit.config import ScanSettings
from pacsaudit.discovery.connect import (
    ConnectFailedError,
    Connector,
    TlsHandshakeError,
    status_of_lost_handshake,
)
from pacsaudit.model import CertificateInfo, Status, TlsBlock

__all__ = [
    "await_certificate_verdict",
    "client_context",
    "describe_certificate",
    "describe_session",
    "looks_like_tls",
    "note_refusal_after_handshake",
    "probe_tls",
    "tls_failure",
    "verdict_grace",
]

_TEXT_LIMIT = 512
"""Longest subject or issuer kept: a hostile certificate may carry megabytes of names."""
_ALERT_GRACE = 1.0
"""At most this long after a TLS 1.3 handshake for a server that asked for a certificate to refuse."""
_MIN_ALERT_GRACE = 0.25
_REQUESTED = "_pacsaudit_certificate_requested"

# TLS record and handshake numbers (RFC 8446 5.1, 4): only what the callback looks for.
_HANDSHAKE = 22
_CERTIFICATE_REQUEST = 13

# Alerts that, after a CertificateRequest went unanswered, mean "no certificate, no entry".
_REFUSED_WITHOUT_CERTIFICATE = frozenset(
    {"handshake_failure", "bad_certificate", "certificate_unknown", "certificate_required", "access_denied"}
)
# OpenSSL reasons that mean the peer's bytes were not TLS at all.
_NOT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "UNKNOWN_PROTOCOL",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
        "HTTP_REQUEST",
        "UNEXPECTED_RECORD",
        "UNEXPECTED_MESSAGE",
        "WRONG_SSL_VERSION",
        "UNSUPPORTED_PROTOCOL",
        "LENGTH_MISMATCH",
        "BAD_PACKET_LENGTH",
        "DECRYPTION_FAILED_OR_BAD_RECORD_MAC",
    }
)
_CLOSED_REASONS = frozenset({"UNEXPECTED_EOF_WHILE_READING", "EOF"})
_SIGNATURE_NAMES = {
    oid: name.lower().replace("_", "-")
    for name, oid in vars(SignatureAlgorithmOID).items()
    if isinstance(oid, x509.ObjectIdentifier)
}

T = TypeVar("T")


class _ObservedSSLObject(ssl.SSLObject):
    """An SSLObject whose failed handshake carries whether the server had asked for a certificate."""

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            setattr(exc, _REQUESTED, _certificate_requested(self))
            raise


def _on_message(
    conn: object, direction: str, version: object, content_type: int, msg_type: int, data: object
) -> None:
    """OpenSSL's message callback: note a CertificateRequest read on this connection."""
    if direction == "read" and content_type == _HANDSHAKE and msg_type == _CERTIFICATE_REQUEST:
        with contextlib.suppress(AttributeError):  # an object without a __dict__: nothing to note on
            setattr(conn, _REQUESTED, True)


_WATCHES_MESSAGES = hasattr(ssl.SSLContext, "_msg_callback")
"""CPython's (private, long-standing) handshake message callback; without it, `requested` stays unknown."""


def _certificate_requested(ssl_object: object) -> bool | None:
    if not _WATCHES_MESSAGES:
        return None
    return bool(getattr(ssl_object, _REQUESTED, False))


@functools.cache
def client_context() -> ssl.SSLContext:
    """The probe's own TLS client context: verifies nothing, TLS 1.0 to 1.3, every cipher, no client cert.

    One per process (contexts are costly to build and safe to share).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("ALL:@SECLEVEL=0")  # TLS 1.0/1.1 need SHA-1 signatures: level 0 allows them
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    # Old servers without RFC 5746 renegotiation: OpenSSL 3 refuses them unless told otherwise.
    context.options |= getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0x4)
    context.sslobject_class = _ObservedSSLObject
    if _WATCHES_MESSAGES:
        context._msg_callback = _on_message  # type: ignore[attr-defined]
    return context


def looks_like_tls(first_bytes: bytes) -> bool:
    """Whether a peer's first bytes are a TLS record (an alert or a handshake, SSL 3.0 to TLS 1.3).

    A TLS server that receives our plain A-ASSOCIATE-RQ often answers with an alert record
    (`15 03 0X`) before it hangs up: that port speaks TLS, try DICOM inside it.
    """
    return (
        len(first_bytes) >= 3
        and first_bytes[0] in (0x15, 0x16)
        and first_bytes[1] == 3
        and first_bytes[2] <= 4
    )


def describe_session(ssl_object: ssl.SSLObject, *, now: datetime | None = None) -> TlsBlock:
    """The facts of a completed handshake: version, cipher, the server's certificate from its DER bytes."""
    cipher = ssl_object.cipher()
    requested = _certificate_requested(ssl_object)
    version = ssl_object.version()
    block = TlsBlock(
        detected=True,
        version=version,
        cipher=cipher[0] if cipher else None,
        cipher_bits=cipher[2] if cipher else None,
        sni=ssl_object.server_hostname or None,
        client_certificate_requested=requested,
    )
    if version != "TLSv1.3" or requested is False:
        # Before TLS 1.3 a server that insists refuses inside the handshake: it completed, so no.
        block.client_certificate_required = False
    der = ssl_object.getpeercert(binary_form=True)
    if der:
        block.certificate = describe_certificate(der, now=now)
    return block


def describe_certificate(der: bytes, *, now: datetime | None = None) -> CertificateInfo:
    """Describe a certificate from its DER bytes, trusting nothing in it; what can't be read stays `null`."""
    info = CertificateInfo(sha256=hashlib.sha256(der).hexdigest())
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        info.error = "certificate could not be parsed"
        return info
    problems: list[str] = []

    def attempt(what: str, read: Callable[[], T]) -> T | None:
        try:
            return read()
        except Exception:  # cryptography raises several types on odd certificates: each field stands alone
            problems.append(what)
            return None

    info.subject = attempt("subject", lambda: _bounded(cert.subject.rfc4514_string()))
    info.issuer = attempt("issuer", lambda: _bounded(cert.issuer.rfc4514_string()))
    not_before = attempt("validity", lambda: cert.not_valid_before_utc)
    not_after = attempt("validity", lambda: cert.not_valid_after_utc)
    if not_before is not None:
        info.not_before = _iso(not_before)
    if not_after is not None:
        info.not_after = _iso(not_after)
        info.expired = (now or datetime.now(UTC)) > not_after
    oid = attempt("signature algorithm", lambda: cert.signature_algorithm_oid)
    if oid is not None:
        info.signature_algorithm = _SIGNATURE_NAMES.get(oid, oid.dotted_string)
    key = attempt("public key", cert.public_key)
    if key is not None:
        info.key_type, info.key_bits = _key_facts(key)
    info.self_signed = attempt("self-signed", lambda: _self_signed(cert))
    if problems:
        info.error = "unreadable: " + ", ".join(dict.fromkeys(problems))
    return info


def _bounded(text: str) -> str:
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _key_facts(key: Any) -> tuple[str, int | None]:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}", key.curve.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return type(key).__name__, None


def _self_signed(cert: x509.Certificate) -> bool:
    """Issuer is subject and the certificate's own key verifies its signature."""
    if cert.issuer.public_bytes() != cert.subject.public_bytes():
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # InvalidSignature, or a key type cryptography cannot check with
        return False
    return True


def _alert_of(reason: str) -> str | None:
    """`SSLV3_ALERT_HANDSHAKE_FAILURE` -> `handshake_failure`: the alert the peer sent, if it was one."""
    for prefix in ("TLSV13_ALERT_", "TLSV1_ALERT_", "SSLV3_ALERT_", "SSL_ALERT_"):
        if reason.startswith(prefix):
            return reason[len(prefix) :].lower()
    return None


def tls_failure(exc: BaseException) -> TlsBlock:
    """A failed handshake (or a connection failure before one) as a TLS block: status, error, alert.

    A refusal for want of a client certificate is no failure of the probe: `detected` and
    `client_certificate_required` are then true, the status `success`.
    """
    requested: bool | None = None
    if isinstance(exc, TlsHandshakeError):
        exc = exc.cause
    elif isinstance(exc, ConnectFailedError):
        return TlsBlock(status=exc.status, error=str(exc))
    if isinstance(exc, ssl.SSLError):
        requested = getattr(exc, _REQUESTED, None)
        reason = str(exc.reason or "")
        alert = _alert_of(reason)
        block = TlsBlock(client_certificate_requested=requested, alert=alert)
        if alert == "certificate_required" or (requested and alert in _REFUSED_WITHOUT_CERTIFICATE):
            block.detected = True
            block.client_certificate_required = True
            block.error = f"the server requires a client certificate (alert {alert})"
        elif alert is not None:
            block.status, block.error = Status.PROTOCOL_ERROR, f"TLS handshake refused: alert {alert}"
        elif reason in _CLOSED_REASONS or isinstance(exc, ssl.SSLEOFError):
            block.status, block.error = (
                Status.CONNECTION_CLOSED,
                "peer closed the connection during the TLS handshake",
            )
        elif reason in _NOT_TLS_REASONS:
            block.status, block.error = Status.PROTOCOL_ERROR, f"not a TLS answer ({reason})"
        else:
            block.status, block.error = (
                Status.PROTOCOL_ERROR,
                f"TLS handshake failed ({reason or type(exc).__name__})",
            )
        return block
    if isinstance(exc, TimeoutError):
        return TlsBlock(status=Status.IO_TIMEOUT, error="TLS handshake not finished within the timeout")
    if isinstance(exc, OSError):
        status = status_of_lost_handshake(exc)
        if status is Status.CONNECTION_CLOSED:
            return TlsBlock(status=status, error="peer closed the connection during the TLS handshake")
        reason = exc.strerror or type(exc).__name__
        return TlsBlock(status=status, error=f"during the TLS handshake: {reason}")
    return TlsBlock(status=Status.UNKNOWN_ERROR, error=f"TLS probe failed: {type(exc).__name__}")


def note_refusal_after_handshake(block: TlsBlock, exc: BaseException) -> bool:
    """Fold a TLS 1.3 server's post-handshake refusal into `block`; whether it was that refusal."""
    if not isinstance(exc, ssl.SSLError):
        return False
    alert = _alert_of(str(exc.reason or ""))
    if alert is None:
        return False
    block.alert = alert
    if alert == "certificate_required" or (
        block.client_certificate_requested and alert in _REFUSED_WITHOUT_CERTIFICATE
    ):
        block.client_certificate_required = True
        block.error = f"the server requires a client certificate (alert {alert})"
    else:
        block.error = f"TLS session ended by alert {alert}"
    return True


class _HandshakeWatcher(asyncio.Protocol):
    """Holds the TLS connection open after the handshake only to hear how the server ends it."""

    def __init__(self) -> None:
        self.transport: asyncio.BaseTransport | None = None
        self.ended: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Whatever the server says first is not ours to read (a banner, a greeting): ignored."""

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ended.done():
            self.ended.set_result(exc)


async def probe_tls(
    ip: str,
    port: int,
    *,
    connector: Connector,
    settings: ScanSettings,
    server_hostname: str | None = None,
) -> TlsBlock:
    """Handshake with (ip, port), describe it, close. Never raises: every failure is a block's status.

    Bounded by the connector's timeout per phase and by `settings.deadline` in total.
    """
    started = time.monotonic()
    try:
        async with asyncio.timeout(settings.deadline):
            async with connector.open(
                ip, port, _HandshakeWatcher, ssl=client_context(), server_hostname=server_hostname
            ) as watcher:
                assert watcher.transport is not None
                block = describe_session(watcher.transport.get_extra_info("ssl_object"))
                block.handshake_ms = round((time.monotonic() - started) * 1000, 3)
                grace = verdict_grace(settings, time.monotonic() - started)
                await await_certificate_verdict(watcher.ended, block, grace)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # errors are data
        block = tls_failure(exc)
        block.sni = block.sni or server_hostname
    return block


async def await_certificate_verdict(
    ended: asyncio.Future[BaseException | None], block: TlsBlock, grace: float
) -> bool:
    """After a TLS 1.3 server asked for a certificate, hear whether it refuses us; True if still open.

    `ended` resolves with the connection's end (`connection_lost`'s argument). An alert within
    `grace` settles `client_certificate_required`; silence means we were let in without one.
    Only then may the client speak: data sent after the refusal draws a reset that can overtake
    the alert.
    """
    if not (block.client_certificate_requested and block.client_certificate_required is None):
        return not ended.done()
    try:
        how = await asyncio.wait_for(asyncio.shield(ended), grace)
    except TimeoutError:
        block.client_certificate_required = False
        return True
    if how is not None and note_refusal_after_handshake(block, how):
        if block.client_certificate_required is None:
            block.client_certificate_required = False
    else:
        block.error = "the server closed the connection right after the handshake"  # refused? it did not say
    return False


def verdict_grace(settings: ScanSettings, handshake_seconds: float) -> float:
    """How long to wait for a TLS 1.3 server's refusal: its alert follows our Finished by one round
    trip, and the handshake took two; so the handshake's time, doubled for a busy server, within
    [0.25 s, min(timeout, 1 s)]."""
    return min(settings.timeout, _ALERT_GRACE, max(_MIN_ALERT_GRACE, 2 * handshake_seconds))
