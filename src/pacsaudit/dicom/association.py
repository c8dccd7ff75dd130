"""An asyncio DICOM association over one already-open connection (a `PduTransport`).

No state-machine threads: each read is bounded in time by the transport's read timeout and
in size by its limits; the caller puts one deadline around the whole job.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import suppress
from dataclasses import dataclass
from typing import NamedTuple

from pacsaudit.dicom.constants import VERIFICATION, PduType
from pacsaudit.dicom.dimse import (
    C_ECHO_RSP,
    C_FIND_RSP,
    CommandSet,
    decode_command_set,
    encode_c_cancel_rq,
    encode_c_echo_rq,
    encode_c_find_rq,
    is_pending,
)
from pacsaudit.dicom.pdu import (
    Abort,
    AssociateAccept,
    AssociateReject,
    AssociateRequest,
    DicomProtocolError,
    PresentationContext,
    PresentationDataValue,
    decode_abort,
    decode_associate_accept,
    decode_associate_reject,
    decode_p_data,
    encode_abort,
    encode_associate_request,
    encode_p_data,
    encode_release_request,
)
from pacsaudit.dicom.reader import Pdu, PeerClosedError
from pacsaudit.dicom.transport import PduTransport

__all__ = [
    "MAX_READS_AFTER_CANCEL",
    "Association",
    "AssociationAbortedError",
    "AssociationReply",
    "ContextNotAcceptedError",
    "FindResponse",
    "MessageAssembler",
    "echo_status",
    "request_association",
]

_MAX_MESSAGE = 4 * 1024 * 1024
MAX_READS_AFTER_CANCEL = 1000
"""Pending responses still read (and dropped) after our C-CANCEL-RQ before giving up on the peer."""


_ACCEPTED_KEPT = 256
_ACCEPTED_SEEN: dict[int, tuple[AssociateAccept, tuple[PresentationContext, ...], dict[str, int]]] = {}


class MessageAssembler:
    """Puts one DIMSE message back together from P-DATA-TF PDUs: command first, then its data set.

    Shared by the awaiting `Association` and the callback-driven `FirstContact`, so both
    accept and refuse exactly the same fragments.
    """

    __slots__ = ("_command", "_command_set", "_data")

    def __init__(self) -> None:
        self._command = bytearray()
        self._data = bytearray()
        self._command_set: CommandSet | None = None

    def feed(self, pdu: Pdu) -> tuple[CommandSet, bytes | None] | None:
        """The whole message once its last fragment is in; None while more must come."""
        if pdu.type != PduType.P_DATA_TF:
            raise DicomProtocolError(f"PDU type 0x{pdu.type:02x} where P-DATA-TF was expected")
        command, data = self._command, self._data
        for pdv in decode_p_data(pdu.body):
            if pdv.is_command:
                if self._command_set is not None:
                    raise DicomProtocolError("command fragment after the last command fragment")
                command += pdv.data
                if pdv.is_last:
                    self._command_set = decode_command_set(bytes(command))
                    if not self._command_set.has_data_set:
                        return self._command_set, None
            elif self._command_set is None:
                raise DicomProtocolError("data set fragment before the command was complete")
            else:
                data += pdv.data
                if pdv.is_last:
                    return self._command_set, bytes(data)
            if len(command) + len(data) > _MAX_MESSAGE:
                raise DicomProtocolError(f"DIMSE message larger than {_MAX_MESSAGE} bytes")
        return None


def echo_status(response: CommandSet, message_id: int) -> int | None:
    """The status of a C-ECHO-RSP, once it is known to answer our C-ECHO-RQ."""
    if response.command_field != C_ECHO_RSP:
        raise DicomProtocolError(f"command 0x{response.command_field or 0:04x} in answer to C-ECHO-RQ")
    if response.message_id_responded not in (message_id, None):
        raise DicomProtocolError("C-ECHO-RSP answers another message ID")
    return response.status


class AssociationAbortedError(Exception):
    """The peer sent A-ABORT (or an unexpected PDU) in the middle of an exchange."""

    def __init__(self, abort: Abort | None, message: str) -> None:
        super().__init__(message)
        self.abort = abort


class ContextNotAcceptedError(Exception):
    """The peer did not accept a presentation context for the SOP class a request needs."""


@dataclass(frozen=True, slots=True)
class FindResponse:
    """One C-FIND response: a pending one with its identifier, or the final one without.

    `discarded` (final response only) counts the pending responses that arrived beyond
    `max_responses` and were dropped unread: more than zero means the answer was cut short.
    A pending response without a data set (a broken peer) carries `b""`.
    """

    status: int
    identifier: bytes | None
    discarded: int = 0


@dataclass(slots=True)
class _FindState:
    context_id: int
    message_id: int
    cancelled: bool = False


class AssociationReply(NamedTuple):
    """What the peer answered to an A-ASSOCIATE-RQ: exactly one of the three is set."""

    accept: AssociateAccept | None = None
    reject: AssociateReject | None = None
    abort: Abort | None = None


async def request_association(
    conn: PduTransport, request: AssociateRequest
) -> tuple[AssociationReply, Association | None]:
    """Send A-ASSOCIATE-RQ, read the answer; on acceptance return the live `Association`."""
    conn.write(encode_associate_request(request))
    pdu = await conn.read_pdu()
    if pdu.type == PduType.ASSOCIATE_AC:
        accept = decode_associate_accept(pdu.body)
        return AssociationReply(accept=accept), Association(conn, request, accept)
    if pdu.type == PduType.ASSOCIATE_RJ:
        return AssociationReply(reject=decode_associate_reject(pdu.body)), None
    if pdu.type == PduType.ABORT:
        return AssociationReply(abort=decode_abort(pdu.body)), None
    raise DicomProtocolError(f"PDU type 0x{pdu.type:02x} in answer to an A-ASSOCIATE-RQ")


class Association:
    """An accepted association: send DIMSE messages, read them back, release or abort."""

    def __init__(self, conn: PduTransport, request: AssociateRequest, accept: AssociateAccept) -> None:
        self._conn = conn
        self.aborted_by_peer = False
        """The peer sent A-ABORT: the association is over, nothing more is sent."""
        self.request = request
        self.accept = accept
        self._next_message_id = 1
        peer_max = accept.max_pdu_length or 0
        # A peer max of 0 means "unlimited" (PS3.8 D.1); stay modest anyway.
        self._fragment = min(peer_max, 64 * 1024) - 6 if peer_max >= 1024 else 16 * 1024
        self._find: _FindState | None = None
        self._accepted_contexts: dict[str, int] | None = None

    def accepted_context(self, abstract_syntax: str) -> int | None:
        """The ID of an accepted context for `abstract_syntax`, if the peer accepted one."""
        return self._accepted().get(abstract_syntax)

    def accepted_abstract_syntaxes(self) -> list[str]:
        return list(self._accepted())

    def _accepted(self) -> dict[str, int]:
        """Abstract syntax -> the first accepted context proposing it, in proposal order; made once.

        Shared (read-only) between associations with the same decoded answer to the same
        proposal: decoded A-ASSOCIATE-ACs are memoised, so a sweep of one product's servers
        works this out once.
        """
        accepted = self._accepted_contexts
        if accepted is None:
            accept, contexts = self.accept, self.request.contexts
            known = _ACCEPTED_SEEN.get(id(accept))
            if known is not None and known[0] is accept and known[1] is contexts:
                accepted = known[2]
            else:
                accepted = {}
                results = accept.contexts
                for pc in contexts:
                    result = results.get(pc.context_id)
                    if result is not None and result[0] == 0:
                        accepted.setdefault(pc.abstract_syntax, pc.context_id)
                if len(_ACCEPTED_SEEN) >= _ACCEPTED_KEPT:
                    _ACCEPTED_SEEN.clear()
                # The answer and the proposal are held too, so their ids cannot be reused meanwhile.
                _ACCEPTED_SEEN[id(accept)] = (accept, contexts, accepted)
            self._accepted_contexts = accepted
        return accepted

    def transfer_syntax(self, context_id: int) -> str | None:
        result = self.accept.contexts.get(context_id)
        return result[1] if result else None

    def transfer_syntax_for(self, abstract_syntax: str) -> str | None:
        """The transfer syntax of the accepted context for `abstract_syntax`: what identifiers use."""
        context_id = self.accepted_context(abstract_syntax)
        return None if context_id is None else self.transfer_syntax(context_id)

    def message_id(self) -> int:
        mid = self._next_message_id
        self._next_message_id = mid % 0xFFFF + 1
        return mid

    def send_message(self, context_id: int, command: bytes, data_set: bytes | None = None) -> None:
        """Queue a DIMSE message, fragmented to the peer's maximum PDU length."""
        out = bytearray()
        for payload, is_command in ((command, True), (data_set, False)):
            if payload is None:
                continue
            step = max(self._fragment, 1)
            for start in range(0, max(len(payload), 1), step):
                chunk = payload[start : start + step]
                last = start + step >= len(payload)
                out += encode_p_data([PresentationDataValue(context_id, is_command, last, chunk)])
        self._conn.write(bytes(out))

    async def receive_message(self) -> tuple[CommandSet, bytes | None]:
        """Read one whole DIMSE message (command, then its data set if it announces one)."""
        message = MessageAssembler()
        while True:
            pdu = await self._conn.read_pdu()
            if pdu.type == PduType.ABORT:
                self.aborted_by_peer = True
                self._conn.close()
                raise AssociationAbortedError(decode_abort(pdu.body), "peer aborted the association")
            whole = message.feed(pdu)
            if whole is not None:
                return whole

    async def echo(self) -> int | None:
        """C-ECHO; the response status, or None if Verification was not accepted."""
        context_id = self.accepted_context(VERIFICATION)
        if context_id is None:
            return None
        message_id = self.message_id()
        self.send_message(context_id, encode_c_echo_rq(message_id, VERIFICATION))
        response, _ = await self.receive_message()
        return echo_status(response, message_id)

    async def find(
        self, sop_class: str, identifier: bytes, *, max_responses: int, priority: int = 0
    ) -> AsyncGenerator[FindResponse, None]:
        """C-FIND: yield each pending response (status, identifier), then the final one (status, None).

        `identifier` must already be encoded in `transfer_syntax_for(sop_class)`. When a
        pending response arrives beyond `max_responses`, a C-CANCEL-RQ goes out and the
        rest of the answer is read and dropped (at most `MAX_READS_AFTER_CANCEL` messages,
        each within the transport's read timeout) until the final status, which is then
        yielded with `discarded` set. `cancel()` does the same at the caller's request.
        Closing the generator before the final response (`contextlib.aclosing`, an error)
        sends C-CANCEL-RQ but leaves responses unread: abort the association then.
        A-ABORT from the peer raises `AssociationAbortedError`.
        """
        if max_responses < 0:
            raise ValueError("max_responses must be 0 or more")
        if self._find is not None:
            raise RuntimeError("a C-FIND is already running on this association")
        context_id = self.accepted_context(sop_class)
        if context_id is None:
            raise ContextNotAcceptedError(f"no accepted presentation context for {sop_class}")
        state = _FindState(context_id, self.message_id())
        self._find = state
        try:
            self.send_message(context_id, encode_c_find_rq(state.message_id, sop_class, priority), identifier)
            answered = discarded = 0
            while True:
                response, data_set = await self.receive_message()
                status = self._find_status(response, state.message_id)
                if not is_pending(status):
                    self._find = None
                    yield FindResponse(status, None, discarded)
                    return
                if answered < max_responses and not state.cancelled:
                    answered += 1
                    yield FindResponse(status, data_set if data_set is not None else b"")
                    continue
                self.cancel()
                discarded += 1
                if discarded > MAX_READS_AFTER_CANCEL:
                    raise DicomProtocolError(
                        f"peer sent {MAX_READS_AFTER_CANCEL} more C-FIND responses after C-CANCEL-RQ"
                    )
        except AssociationAbortedError:
            self._find = None  # nobody left to send a C-CANCEL-RQ to
            raise
        finally:
            if self._find is state:  # left mid-answer (an error, or the caller stopped early)
                with suppress(OSError, PeerClosedError, DicomProtocolError):
                    self.cancel()
                self._find = None

    def cancel(self) -> bool:
        """Send C-CANCEL-RQ for the running C-FIND (once); True if one went out just now.

        Safe to call from another task: the write is immediate, and the running `find`
        drops whatever pending responses still arrive, then yields the final status.
        """
        state = self._find
        if state is None or state.cancelled:
            return False
        state.cancelled = True
        self.send_message(state.context_id, encode_c_cancel_rq(state.message_id))
        return True

    @staticmethod
    def _find_status(response: CommandSet, message_id: int) -> int:
        if response.command_field != C_FIND_RSP:
            raise DicomProtocolError(f"command 0x{response.command_field or 0:04x} in answer to C-FIND-RQ")
        if response.message_id_responded != message_id:
            raise DicomProtocolError("C-FIND-RSP answers another message ID")
        status = response.status
        if status is None:
            raise DicomProtocolError("C-FIND-RSP without a status")
        return status

    async def release(self) -> bool:
        """A-RELEASE; True if the peer answered A-RELEASE-RP (some just close, which is fine).

        After the peer's own A-ABORT there is nothing left to release: return at once.
        """
        if self.aborted_by_peer:
            return False
        self._conn.write(encode_release_request())
        pdu = await self._conn.read_pdu()
        return pdu.type == PduType.RELEASE_RP

    def abort(self) -> None:
        """A-ABORT from our side: the polite way out when a budget or deadline ends the work."""
        if self.aborted_by_peer:
            return
        with suppress(OSError, PeerClosedError, DicomProtocolError):  # already gone: no goodbye needed
            self._conn.write(encode_abort())
        self._conn.close()
