"""DICOM over TLS (PS3.15 B.1, port 2762): the association probe run unchanged inside a TLS session.

The connector wraps every connection of the probe in TLS (`Connector.over_tls`), the first and
the AE-title search's alike, so `probe_dicom` neither knows nor cares. The TLS facts come from
the first connection's handshake; a server that wants a client certificate is reported as
such, and the DICOM block is then left out rather than filled with guesses.

How the two paths meet on one endpoint (`docs/tls.md`): on a plain-DICOM port a failed TLS
attempt only adds a `tls` block saying so; on a TLS port the plain attempt's `not-dicom`,
`connection-reset` or `connection-closed` gives way to what was learnt inside TLS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import time
from typing import NamedTuple

from pacsaudit.config import DICOM_TLS_PORTS
from pacsaudit.dicom.transport import PduTransport
from pacsaudit.discovery import ConnectFailedError
from pacsaudit.model import DicomBlock, EndpointResult, Status, TlsBlock
from pacsaudit.probes.dicom_association import (
    DicomProbeContext,
    probe_dicom,
    settle_dicom,
    status_of_exception,
)
from pacsaudit.probes.tls import (
    await_certificate_verdict,
    client_context,
    describe_session,
    note_refusal_after_handshake,
    tls_failure,
    verdict_grace,
)

__all__ = [
    "TLS_PORTS",
    "DicomOverTls",
    "answered_like_tls",
    "merge_tls_result",
    "probe_dicom_over_tls",
]

TLS_PORTS = DICOM_TLS_PORTS
"""IANA's DICOM over TLS port: TLS is tried first there. (2761 is DICOM ISCL, not TLS.)"""

_PLAIN_TLS_HINTS = frozenset({Status.CONNECTION_RESET, Status.CONNECTION_CLOSED})
"""How TLS servers answer a plain A-ASSOCIATE-RQ when they send no alert (Orthanc resets)."""


class DicomOverTls(NamedTuple):
    """What one endpoint showed over TLS: unpacks as `(tls, dicom, status, error)`."""

    tls: TlsBlock
    dicom: DicomBlock | None
    """`None` when DICOM was never reached (no handshake, or a client certificate required)."""
    status: Status
    """`success` if the peer spoke DICOM inside TLS, or TLS demanded a client certificate;
    otherwise the failure of the deepest layer reached (e.g. `not-dicom`: TLS, then not DICOM)."""
    error: str | None


class _TlsPduTransport(PduTransport):
    """The DICOM PDU protocol that also keeps its TLS session, to describe the handshake."""

    ssl_object: ssl.SSLObject | None = None
    ended: asyncio.Future[BaseException | None]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.ssl_object = transport.get_extra_info("ssl_object")
        self.ended = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.ended.done():
            self.ended.set_result(exc)


@dataclasses.dataclass(frozen=True)
class _TlsDicomContext(DicomProbeContext):
    def transport(self) -> PduTransport:
        return _TlsPduTransport(self.limits, self.settings.timeout)


def _inside_tls(ctx: DicomProbeContext, hostname: str | None) -> _TlsDicomContext:
    values = {f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx)}
    values["connector"] = ctx.connector.over_tls(client_context(), server_hostname=hostname)
    return _TlsDicomContext(**values)


async def probe_dicom_over_tls(
    ip: str, port: int, ctx: DicomProbeContext, hostname: str | None = None
) -> DicomOverTls:
    """Handshake, describe TLS, then run `probe_dicom` inside it. Never raises (errors are data).

    Bounded like `scan_endpoint`: the connector's timeout per connect, handshake and read,
    `settings.deadline` (plus `census_time` with `--census`) for everything. `hostname` is sent
    as SNI (a hostname target; never an IP literal).
    """
    settings = ctx.settings
    tls_ctx = _inside_tls(ctx, hostname)
    tls = TlsBlock()
    block = DicomBlock()
    handshaken = False
    status, error = Status.SUCCESS, None
    deadline = asyncio.timeout(settings.endpoint_budget)
    started = time.monotonic()
    try:
        async with deadline, tls_ctx.connector.open(ip, port, tls_ctx.transport) as conn:
            assert isinstance(conn, _TlsPduTransport) and conn.ssl_object is not None
            handshaken = True
            handshake = time.monotonic() - started
            tls = describe_session(conn.ssl_object)
            tls.handshake_ms = round(handshake * 1000, 3)
            if not await await_certificate_verdict(conn.ended, tls, verdict_grace(settings, handshake)):
                if tls.client_certificate_required:
                    return DicomOverTls(tls, None, Status.SUCCESS, None)
                return DicomOverTls(tls, None, Status.CONNECTION_CLOSED, tls.error)
            await probe_dicom(conn, ip, port, tls_ctx, block)
    except ConnectFailedError as exc:  # no TCP connection, or no handshake: TLS says why
        tls = tls_failure(exc)
        tls.sni = hostname
        if tls.client_certificate_required:
            return DicomOverTls(tls, None, Status.SUCCESS, None)
        return DicomOverTls(tls, None, tls.status, tls.error)
    except TimeoutError as exc:
        if deadline.expired():
            status, error = Status.IO_TIMEOUT, "endpoint deadline reached"
        else:
            status, error = status_of_exception(exc)
    except Exception as exc:  # errors are data: nothing a peer does may end the scan
        if not block.detected and note_refusal_after_handshake(tls, exc) and tls.client_certificate_required:
            return DicomOverTls(tls, None, Status.SUCCESS, None)
        status, error = status_of_exception(exc)
    if not handshaken:  # the deadline struck during the handshake
        tls.status, tls.error = status, error
        return DicomOverTls(tls, None, status, error)
    return DicomOverTls(tls, block, *settle_dicom(block, status, error))


def answered_like_tls(plain: EndpointResult) -> bool:
    """Whether a plain-DICOM attempt's outcome suggests a TLS server: worth a try inside TLS.

    A TLS server answers an A-ASSOCIATE-RQ with an alert record (`not-dicom`, named TLS by the
    PDU reader) or hangs up without a byte (Orthanc's DICOM TLS resets the connection).
    """
    if plain.dicom is not None and plain.dicom.detected:
        return False
    if plain.status is Status.NOT_DICOM:
        return "TLS" in (plain.error or "")
    return plain.status in _PLAIN_TLS_HINTS


def merge_tls_result(plain: EndpointResult, over_tls: DicomOverTls) -> EndpointResult:
    """One endpoint's record from its plain attempt and its TLS attempt, whichever spoke DICOM.

    - DICOM answered in the clear: the plain result stands; `tls` records what the TLS attempt
      found (e.g. `protocol-error`, "not a TLS answer"), never turning the endpoint into an error.
    - DICOM answered inside TLS, or TLS demanded a client certificate: the TLS attempt's status
      and blocks replace the plain attempt's `not-dicom` / `connection-reset` / `-closed`.
    - Neither: the plain result stands, with the `tls` block beside it.
    """
    update: dict[str, object] = {"tls": over_tls.tls}
    plain_dicom = plain.dicom is not None and plain.dicom.detected
    tls_dicom = over_tls.dicom is not None and over_tls.dicom.detected
    if not plain_dicom and (tls_dicom or over_tls.tls.client_certificate_required):
        update |= {"status": over_tls.status, "error": over_tls.error, "dicom": over_tls.dicom}
    elif not plain_dicom and over_tls.tls.detected and over_tls.dicom is not None:
        # TLS, then something other than DICOM inside: more precise than a reset in the clear.
        update |= {"status": over_tls.status, "error": over_tls.error, "dicom": over_tls.dicom}
    return plain.model_copy(update=update)
