"""The DICOM association probe: does a stranger get in, which AE-title checks hold, what software is it.

1. The stranger test: a random called AE and a random calling AE, titles nobody configures.
   Accepted means open to any AE; nothing weaker proves it.
2. If that is rejected for a reason that can be about titles, vary one title at a time:
   known called titles with the stranger's calling title, then known calling titles with the
   stranger's called title, then pairs. Reject reasons lie (DCMTK's dcmqrscp says "called AE
   title not recognized" for an unknown *calling* title), so the checks are decided only from
   which pair was accepted against which was refused, and left `None` where that can't tell.
3. Over the accepted association the session probes run (C-ECHO, later C-FIND...), then A-RELEASE.

All attempts share one budget (`max_ae_attempts`), pause between them, and stop at the first
acceptance, at a busy server, or at the endpoint's deadline (enforced by the caller).
"""

from __future__ import annotations

import asyncio
import os
import string
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pacsaudit.config import ScanSettings
from pacsaudit.dicom import (
    AssociateRequest,
    Association,
    AssociationAbortedError,
    AssociationReply,
    DicomProtocolError,
    NotDicomError,
    PduLimits,
    PeerClosedError,
    PresentationContext,
    request_association,
)
from pacsaudit.dicom.constants import (
    EXPLICIT_VR_LE,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    IMPLICIT_VR_LE,
    VERIFICATION,
    reject_words,
)
from pacsaudit.dicom.first_contact import FirstContact
from pacsaudit.dicom.transport import PduTransport
from pacsaudit.discovery import ConnectFailedError, Connector, status_of_os_error
from pacsaudit.fingerprint import called_ae_dictionary, calling_ae_dictionary, identify
from pacsaudit.model import DicomBlock, RejectInfo, Status, assign
from pacsaudit.probes import registry
from pacsaudit.probes.services import ServicesProbe
from pacsaudit.probes.session import EchoProbe, SessionProbe

__all__ = [
    "DicomProbeContext",
    "after_first_contact",
    "probe_dicom",
    "random_ae_title",
    "random_ae_titles",
    "settle_dicom",
    "status_of_exception",
]

# Reject reasons from the service user that can be about AE titles (PS3.8 Table 9-21).
_TITLE_REASONS = frozenset({1, 3, 7})


_CAPITALS = string.ascii_uppercase.encode() * 10  # byte -> capital, near-uniform (256 % 26 = 22)
_TO_CAPITALS = bytes(_CAPITALS[b] for b in range(256))


_POOL_TITLES = 256
_pool: list[str] = []
os.register_at_fork(after_in_child=_pool.clear)  # workers must not draw the parent's titles


def random_ae_title() -> str:
    """`PA` (pacsaudit) + 10 random capitals: a title no administrator configures.

    Drawn from a pool filled by one `os.urandom` call per 256 titles: a sweep needs two titles
    per endpoint, and a system call each was a measurable share of an endpoint's cost.
    """
    if not _pool:
        letters = os.urandom(10 * _POOL_TITLES).translate(_TO_CAPITALS).decode()
        _pool.extend("PA" + letters[i : i + 10] for i in range(0, len(letters), 10))
    return _pool.pop()


def random_ae_titles() -> tuple[str, str]:
    """The stranger: a random called title and a random calling title."""
    return random_ae_title(), random_ae_title()


@dataclass(frozen=True)
class DicomProbeContext:
    """What every DICOM probe of a scan shares, built once."""

    settings: ScanSettings
    connector: Connector
    limits: PduLimits
    contexts: tuple[PresentationContext, ...]
    session_probes: tuple[SessionProbe, ...] = ()
    called_titles: tuple[str, ...] = field(default_factory=tuple)
    calling_titles: tuple[str, ...] = field(default_factory=tuple)
    scripted_session: bool = False
    """The session is only the capability matrix and C-ECHO: `FirstContact` plays it by itself."""

    def transport(self) -> PduTransport:
        """A fresh protocol for one connection: the factory the connector calls."""
        return PduTransport(self.limits, self.settings.timeout)

    def request(self, called: str, calling: str) -> AssociateRequest:
        settings = self.settings
        return AssociateRequest(
            called_ae=called,
            calling_ae=calling,
            contexts=self.contexts,
            max_pdu_length=settings.max_pdu_length,
            implementation_class_uid=IMPLEMENTATION_CLASS_UID,
            implementation_version_name=IMPLEMENTATION_VERSION_NAME,
        )

    def first_contact(
        self, stranger: tuple[str, str], loop: asyncio.AbstractEventLoop
    ) -> Callable[[], FirstContact]:
        """The protocol factory for an endpoint's first connection (on `loop`): it opens with the
        stranger test."""
        request = self.request(*stranger)
        limits, timeout, scripted = self.limits, self.settings.timeout, self.scripted_session
        return lambda: FirstContact(limits, timeout, request, loop, echo_and_release=scripted)

    @classmethod
    def create(
        cls,
        settings: ScanSettings,
        connector: Connector,
        session_probes: tuple[SessionProbe, ...] | None = None,
    ) -> DicomProbeContext:
        """The scan's shared context; `session_probes` defaults to what the settings ask for."""
        if session_probes is None:
            session_probes = registry.session_probes(settings)
        syntaxes: list[str] = [VERIFICATION]  # first, as every DICOM client proposes it
        for probe in session_probes:
            syntaxes += [s for s in probe.abstract_syntaxes(settings) if s not in syntaxes]
        contexts = tuple(
            PresentationContext(2 * i + 1, uid, (IMPLICIT_VR_LE, EXPLICIT_VR_LE))
            for i, uid in enumerate(syntaxes)
        )
        called = list(dict.fromkeys(settings.called_ae))
        calling = [settings.calling_ae]
        if settings.ae_dictionary:
            called += [t for t in called_ae_dictionary() if t not in called]
            calling += [t for t in calling_ae_dictionary() if t not in calling]
        return cls(
            settings=settings,
            connector=connector,
            limits=PduLimits(p_data=max(settings.max_pdu_length, 64 * 1024)),
            contexts=contexts,
            session_probes=session_probes,
            called_titles=tuple(called),
            calling_titles=tuple(calling),
            scripted_session=tuple(type(p) for p in session_probes) == (ServicesProbe, EchoProbe),
        )


def settle_dicom(block: DicomBlock, status: Status, error: str | None) -> tuple[Status, str | None]:
    """The endpoint's status once connected: `success` whenever the peer spoke DICOM at all.

    What went wrong after that (the deadline in the AE search, say) stays in the block.
    """
    if status is not Status.SUCCESS:
        if block.detected:
            block.error = block.error or error
            if block.status is Status.SUCCESS and status is Status.IO_TIMEOUT:
                block.status = Status.IO_TIMEOUT
        else:
            block.status, block.error = status, error
    return (Status.SUCCESS, None) if block.detected else (status, error)


def status_of_exception(exc: BaseException) -> tuple[Status, str]:
    """Map what an exchange raised to the status vocabulary and an error text without peer data."""
    if isinstance(exc, NotDicomError):
        return Status.NOT_DICOM, f"not DICOM: {exc}"
    if isinstance(exc, DicomProtocolError):
        return Status.PROTOCOL_ERROR, str(exc)
    if isinstance(exc, PeerClosedError):
        return Status.CONNECTION_CLOSED, str(exc)
    if isinstance(exc, AssociationAbortedError):
        return Status.PROTOCOL_ERROR, str(exc)
    if isinstance(exc, TimeoutError):
        return Status.IO_TIMEOUT, "no complete answer within the timeout"
    if isinstance(exc, ConnectFailedError):
        return exc.status, str(exc)
    if isinstance(exc, OSError):
        return status_of_os_error(exc), exc.strerror or type(exc).__name__
    return Status.UNKNOWN_ERROR, type(exc).__name__


class _Search:
    """One endpoint's association attempts and what they proved."""

    def __init__(
        self, ctx: DicomProbeContext, ip: str, port: int, block: DicomBlock, stranger: tuple[str, str]
    ) -> None:
        self.ctx = ctx
        self.ip = ip
        self.port = port
        self.block = block
        self.stranger = stranger
        self.refused: set[tuple[str, str]] = set()

    def first(self, conn: FirstContact, association: Association | None) -> AssociationReply | None:
        """What the stranger test that `conn` played on connecting (`conn.finished` is done) found;
        None when the session is not scripted and still has to run (`session`)."""
        reply = conn.reply
        assert reply is not None
        self._answered(conn, reply, association, *self.stranger)
        if association is not None and not self.ctx.scripted_session:
            return None
        if association is not None:
            self._scripted_session(conn, association)
        return reply

    async def session(self, reply: AssociationReply, association: Association) -> AssociationReply:
        """The session probes over the association the first contact opened (not scripted)."""
        await self._session(association)
        return reply

    async def attempt(self, called: str, calling: str, conn: PduTransport | None = None) -> AssociationReply:
        """One association request (on `conn`, or a new connection); runs the session if accepted."""
        if conn is None:
            await asyncio.sleep(self.ctx.settings.ae_pause)
            async with self.ctx.connector.open(self.ip, self.port, self.ctx.transport) as fresh:
                return await self._exchange(fresh, called, calling)
        return await self._exchange(conn, called, calling)

    async def _exchange(self, conn: PduTransport, called: str, calling: str) -> AssociationReply:
        self.block.ae_attempts += 1
        reply, association = await request_association(conn, self.ctx.request(called, calling))
        self._answered(conn, reply, association, called, calling)
        if association is not None:
            await self._session(association)
        return reply

    def _answered(
        self,
        conn: PduTransport,
        reply: AssociationReply,
        association: Association | None,
        called: str,
        calling: str,
    ) -> None:
        if association is None:
            self.block.detected = True
            # Close now: some servers (Orthanc) serve the next association only after this one is gone.
            conn.close()
            if reply.reject is None or reply.reject.result != 2:  # "busy" says nothing about titles
                self.refused.add((called, calling))
        else:
            self._accepted(association, called, calling)

    def _accepted(self, association: Association, called: str, calling: str) -> None:
        accept = association.accept
        called0, calling0 = self.stranger
        found = identify(accept.implementation_class_uid, accept.implementation_version_name)
        fields: dict[str, Any] = {
            "detected": True,
            "association": "accepted",
            "accepted_called_ae": called,
            "accepted_calling_ae": calling,
            "implementation_class_uid": accept.implementation_class_uid,
            "implementation_version_name": accept.implementation_version_name,
            "max_pdu_length": accept.max_pdu_length,
            "accepted_contexts": association.accepted_abstract_syntaxes(),
            "called_ae_check": (
                True if (called0, calling) in self.refused else (False if called == called0 else None)
            ),
            "calling_ae_check": (
                True if (called, calling0) in self.refused else (False if calling == calling0 else None)
            ),
        }
        if found is not None:
            fields.update(product=found.product, vendor=found.vendor, version=found.version)
        if (called, calling) == self.stranger:
            fields["open_to_any_ae"] = True
        assign(self.block, fields)

    async def _session(self, association: Association) -> None:
        settings = self.ctx.settings
        for probe in self.ctx.session_probes:
            try:
                await probe.run(association, self.block, settings)
            except Exception as exc:  # errors are data: a probe's failure ends the session, not the scan
                status, message = status_of_exception(exc)
                self.block.status, self.block.error = status, f"{probe.name}: {message}"
                association.abort()
                return
        try:
            await association.release()
        except (TimeoutError, OSError, DicomProtocolError, NotDicomError, PeerClosedError):
            association.abort()

    def _scripted_session(self, conn: FirstContact, association: Association) -> None:
        """What `_session` would have recorded, from the C-ECHO and A-RELEASE `conn` already did."""
        fields: dict[str, Any] = {}
        for probe in self.ctx.session_probes:
            if isinstance(probe, ServicesProbe):
                fields.update(probe.fields(association))
        if association.accepted_context(VERIFICATION) is None:
            pass
        elif conn.echo_error is not None:
            status, message = status_of_exception(conn.echo_error)
            fields.update(echo=False, status=status, error=f"{EchoProbe.name}: {message}")
        else:
            fields["echo"] = conn.echo == 0x0000
        assign(self.block, fields)

    def plan(self, honest_calling: bool) -> Iterator[tuple[str, str]]:
        """Title pairs to try, one title varied at a time first, each phase with a share of the budget."""
        called0, calling0 = self.stranger
        called = [t for t in self.ctx.called_titles if t != called0]
        calling = [t for t in self.ctx.calling_titles if t != calling0]
        phases: list[tuple[Sequence[tuple[str, str]], float]] = [
            ([] if honest_calling else [(t, calling0) for t in called], 0.6),
            ([(called0, c) for c in calling], 0.5 if honest_calling else 0.2),
            ([(t, c) for c in calling for t in called], 1.0),
        ]
        budget = self.ctx.settings.max_ae_attempts - self.block.ae_attempts
        for pairs, share in phases:
            quota = budget if share >= 1.0 else int(budget * share + 0.5)
            taken = 0
            for pair in pairs:
                if taken >= quota:
                    break
                taken += 1
                yield pair
            budget -= taken


async def probe_dicom(
    conn: PduTransport,
    ip: str,
    port: int,
    ctx: DicomProbeContext,
    block: DicomBlock,
    stranger: tuple[str, str] | None = None,
) -> None:
    """Fill `block` for one endpoint; `conn` is the discovery connection, used for the stranger test.

    `conn` may be a `FirstContact` made by `ctx.first_contact(stranger, loop)`, which has already sent
    the stranger's request; any other transport gets it sent here. Exceptions from the stranger
    test propagate (the caller turns them into the endpoint's status); later attempts end the
    search quietly, keeping what was proven.
    """
    if stranger is None:
        stranger = random_ae_titles()
    if isinstance(conn, FirstContact):
        block.ae_attempts += 1  # counted before the answer, as `attempt` counts its own
        await conn.finished
        rest = after_first_contact(conn, ip, port, ctx, block, stranger)
        if rest is not None:
            await rest
        return
    search = _Search(ctx, ip, port, block, stranger)
    await _after_stranger(search, await search.attempt(*stranger, conn=conn))


def after_first_contact(
    conn: FirstContact,
    ip: str,
    port: int,
    ctx: DicomProbeContext,
    block: DicomBlock,
    stranger: tuple[str, str],
) -> Coroutine[Any, Any, None] | None:
    """What the stranger test `conn` played found (`conn.finished` is done, the attempt counted);
    the rest of the probe as a coroutine to await, or None when nothing is left.

    Nothing is left on a sweep's common endpoint (accepted, with the session `conn` scripted):
    the caller then awaits nothing more, one coroutine fewer per endpoint.
    """
    search = _Search(ctx, ip, port, block, stranger)
    association = conn.take_association()
    first = search.first(conn, association)
    if first is None:
        assert conn.reply is not None and association is not None
        return _session_then_rest(search, conn.reply, association)
    if first.accept is not None:
        return None
    return _after_stranger(search, first)


async def _session_then_rest(search: _Search, reply: AssociationReply, association: Association) -> None:
    await _after_stranger(search, await search.session(reply, association))


async def _after_stranger(search: _Search, reply: AssociationReply) -> None:
    """Everything after the stranger's answer: a polite retry when busy, the reject recorded,
    and the AE-title search when the refusal can be about titles."""
    block, ctx = search.block, search.ctx
    if reply.reject is not None and reply.reject.result == 2:
        await asyncio.sleep(ctx.settings.busy_retry_pause)
        try:
            reply = await search.attempt(*search.stranger)
        except Exception as exc:  # a busy server may also stop answering: keep the first answer
            block.error = f"retry after transient reject: {status_of_exception(exc)[1]}"
        if reply.reject is not None and reply.reject.result == 2:
            block.transient = True
    if reply.accept is not None:
        return
    block.open_to_any_ae = None if block.transient else False
    if reply.reject is not None:
        rj = reply.reject
        words = reject_words(rj.result, rj.source, rj.reason)
        block.association = "rejected"
        block.reject = RejectInfo(
            result=rj.result,
            source=rj.source,
            reason=rj.reason,
            result_text=words[0],
            source_text=words[1],
            reason_text=words[2],
        )
        about_titles = rj.result == 1 and rj.source == 1 and rj.reason in _TITLE_REASONS
    else:
        assert reply.abort is not None
        block.association = "aborted"
        block.abort_source, block.abort_reason = reply.abort.source, reply.abort.reason
        about_titles = True
    if not about_titles:
        return
    honest_calling = reply.reject is not None and reply.reject.reason == 3
    for called, calling in search.plan(honest_calling):
        try:
            answer = await search.attempt(called, calling)
        except Exception as exc:  # the search is best effort; what was proven stays
            block.error = f"AE-title search stopped: {status_of_exception(exc)[1]}"
            return
        if answer.accept is not None:
            return
        if answer.reject is not None and answer.reject.result == 2:
            block.error = "AE-title search stopped: the server reported itself busy"
            return
