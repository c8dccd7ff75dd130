"""The stranger's first association, driven by callbacks: A-ASSOCIATE-RQ, C-ECHO, A-RELEASE.

On a sweep nearly every DICOM peer is an accept-any archive, and for each the scanner does
the same three round trips. Awaiting each PDU (a coroutine chain, a future and a timer per
read) costs more CPU than the exchange itself, so this protocol runs the whole script in
`data_received` and wakes the probe once, with everything learnt. It decides exactly what
`request_association`, `Association.echo` and `Association.release` decide (same decoders,
same `MessageAssembler`, same limits, same read timeout per step); anything else the probe
wants afterwards (a C-FIND census) takes over the connection as an ordinary `Association`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from pacsaudit.dicom.association import (
    Association,
    AssociationAbortedError,
    AssociationReply,
    MessageAssembler,
    echo_status,
)
from pacsaudit.dicom.constants import VERIFICATION, PduType
from pacsaudit.dicom.dimse import encode_c_echo_rq
from pacsaudit.dicom.pdu import (
    AssociateRequest,
    DicomProtocolError,
    PresentationDataValue,
    decode_abort,
    decode_associate_accept,
    decode_associate_reject,
    encode_abort,
    encode_associate_request,
    encode_p_data,
    encode_release_request,
)
from pacsaudit.dicom.reader import Pdu, PduLimits
from pacsaudit.dicom.transport import PduTransport
from pacsaudit.timers import wheel_of

__all__ = ["FirstContact"]

_ASSOCIATING: Final = 0
_ECHOING: Final = 1
_RELEASING: Final = 2
_DONE: Final = 3

_ECHO_MESSAGE_ID: Final = 1
_RELEASE_RQ: Final = encode_release_request()
_ABORT: Final = encode_abort()
_ECHO_ANSWERS: dict[bytes, int | None] = {}
"""Whole one-PDU answers to our C-ECHO-RQ already decoded, by their P-DATA-TF body: the status.

Only answers that decoded cleanly are kept, so a known body means exactly what decoding it
again would; bounded, so a fleet answering in a thousand ways cannot grow it.
"""
_ECHO_ANSWERS_KEPT: Final = 256
_ECHO_ANSWER_BYTES: Final = 512
"""Only answers this small are kept (a plain C-ECHO-RSP is about 100 bytes): a padded one
could otherwise pin a megabyte each."""
_ECHO_PDU: Final = encode_p_data(
    [PresentationDataValue(1, True, True, encode_c_echo_rq(_ECHO_MESSAGE_ID, VERIFICATION))]
)


class FirstContact(PduTransport):
    """A `PduTransport` that plays the first association by itself, then behaves as a plain one.

    `request` must propose Verification as presentation context 1 when `echo_and_release` is
    set; `loop` is the running loop. Await `finished`: it raises what `request_association`
    would raise (the association failed: timeout, not DICOM, a broken PDU...); otherwise
    `reply` holds the answer and, when the association was accepted, `association` (hand it
    over with `take_association`), `echo`
    (the C-ECHO-RSP status, None when Verification was not accepted or the echo failed) and
    `echo_error` (why the echo failed); any answer to the A-RELEASE-RQ ends the script, as
    `Association.release` takes it. Without `echo_and_release` it stops after the
    A-ASSOCIATE-AC, leaving the accepted association for the caller.
    """

    __slots__ = (
        "_loop",
        "_message",
        "_script",
        "_step",
        "_step_deadline",
        "_timer",
        "_wheel",
        "association",
        "echo",
        "echo_error",
        "finished",
        "reply",
        "request",
    )

    def __init__(
        self,
        limits: PduLimits,
        read_timeout: float,
        request: AssociateRequest,
        loop: asyncio.AbstractEventLoop,
        *,
        echo_and_release: bool,
    ) -> None:
        super().__init__(limits, read_timeout)
        self.request = request
        self._loop = loop  # given, not looked up: each lookup is a getpid() system call
        self.finished: asyncio.Future[None] = loop.create_future()
        self.reply: AssociationReply | None = None
        self.association: Association | None = None
        self.echo: int | None = None
        self.echo_error: BaseException | None = None
        self._script = echo_and_release
        self._step = _ASSOCIATING
        self._message: MessageAssembler | None = None
        self._wheel = wheel_of(loop)
        self._timer: int | None = None
        """The wheel slot of the step's read timeout, while one is set."""
        self._step_deadline = 0.0

    def take_association(self) -> Association | None:
        """The accepted association, handed over once the script is done (`finished`).

        This protocol then no longer holds it: the association holds the protocol, and the
        pair would otherwise live on as a reference cycle until a garbage collection, which
        runs rarely during a scan (`engine/runner.py`).
        """
        association, self.association = self.association, None
        return association

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.write(encode_associate_request(self.request))
        self._arm()

    # the script

    def _wake(self) -> None:
        if self._step == _DONE:
            super()._wake()
            return
        try:
            while (step := self._step) != _DONE:
                if len(self._buffer) < 6 and not self._ended:
                    return  # not even a header yet (what `_take` would say, without the call)
                pdu = self._take()
                if pdu is None:
                    return
                if step == _ASSOCIATING:
                    self._answered(pdu)
                elif step == _ECHOING:
                    self._echoed(pdu)
                else:
                    self._finish()
        except Exception as exc:  # a step failed: what failing means depends on the step
            self._failed(exc)

    def _answered(self, pdu: Pdu) -> None:
        if pdu.type == PduType.ASSOCIATE_AC:
            accept = decode_associate_accept(pdu.body)
            self.reply = AssociationReply(accept=accept)
            self.association = Association(self, self.request, accept)
            if not self._script:
                self._finish()
            elif self.association.accepted_context(VERIFICATION) == 1:
                self.write(_ECHO_PDU)
                self._step = _ECHOING
                self._arm()
            else:
                self._release()
        elif pdu.type == PduType.ASSOCIATE_RJ:
            self.reply = AssociationReply(reject=decode_associate_reject(pdu.body))
            self._finish()
        elif pdu.type == PduType.ABORT:
            self.reply = AssociationReply(abort=decode_abort(pdu.body))
            self._finish()
        else:
            raise DicomProtocolError(f"PDU type 0x{pdu.type:02x} in answer to an A-ASSOCIATE-RQ")

    def _echoed(self, pdu: Pdu) -> None:
        if pdu.type == PduType.ABORT:
            assert self.association is not None
            self.association.aborted_by_peer = True
            raise AssociationAbortedError(decode_abort(pdu.body), "peer aborted the association")
        single = self._message is None and pdu.type == PduType.P_DATA_TF
        if single:  # the answer's first PDU: most servers answer in one, byte for byte alike
            status = _ECHO_ANSWERS.get(pdu.body, -1)  # -1: no status is negative
            if status != -1:
                self.echo = status
                self._release()
                return
        if self._message is None:
            self._message = MessageAssembler()
        whole = self._message.feed(pdu)
        if whole is not None:
            self.echo = echo_status(whole[0], _ECHO_MESSAGE_ID)
            if single and len(_ECHO_ANSWERS) < _ECHO_ANSWERS_KEPT and len(pdu.body) <= _ECHO_ANSWER_BYTES:
                _ECHO_ANSWERS[pdu.body] = self.echo
            self._release()

    def _release(self) -> None:
        self.write(_RELEASE_RQ)
        self._step = _RELEASING
        self._arm()

    def _failed(self, exc: BaseException) -> None:
        step = self._step
        self._step = _DONE
        self._disarm()
        # Nothing of a failed exchange is kept beyond its exception: not the bytes buffered, not
        # the frames that raised it (`data_received`'s holds the chunk just read). A stored
        # exception's traceback makes a reference cycle with this protocol, and cycles wait
        # for the garbage collector, which runs rarely during a scan (`engine/runner.py`).
        exc.__traceback__ = exc.__context__ = exc.__cause__ = None
        self._buffer = bytearray()
        if step == _ASSOCIATING:
            if not self.finished.done():
                self.finished.set_exception(exc)
            return
        if step == _ECHOING:
            self.echo_error = exc
        aborted = self.association is not None and self.association.aborted_by_peer
        if not aborted:  # our A-ABORT, as `Association.abort` would say it
            with contextlib.suppress(Exception):  # already gone: no goodbye needed
                self.write(_ABORT)
        self.close()
        if not self.finished.done():
            self.finished.set_result(None)

    def _finish(self) -> None:
        self._step = _DONE
        self._disarm()
        if not self.finished.done():
            self.finished.set_result(None)

    # one read timeout per step, as `read_pdu` gives each read; one coarse timer for all of them

    def _arm(self) -> None:
        """Start the current step's read timeout.

        The happy path must not pay for a timer per step: one entry on the loop's timer wheel
        stands, and when it fires early (a later step started since) it is set again for what
        is left of that step.
        """
        self._step_deadline = self._loop.time() + self.read_timeout
        if self._timer is None:
            self._timer = self._wheel.schedule(self, self._step_deadline, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._wheel.cancel(self, self._timer)
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self._step == _DONE:
            return
        if self._loop.time() < self._step_deadline:
            self._timer = self._wheel.schedule(self, self._step_deadline, self._expired)
            return
        self._failed(TimeoutError("no complete PDU within the timeout"))
