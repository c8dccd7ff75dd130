"""Clients for the lab tests, built from pynetdicom alone, so they judge the lab from outside.

`associate` is pynetdicom's ordinary SCU (run it in a thread); the raw helpers build PDUs with
pynetdicom's primitives and read replies byte by byte over asyncio streams.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pynetdicom import AE, evt
from pynetdicom.dimse_messages import C_ECHO_RQ
from pynetdicom.dimse_primitives import C_ECHO
from pynetdicom.pdu import A_ASSOCIATE_RJ, A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    MaximumLengthNotification,
)
from pynetdicom.presentation import build_context

VERIFICATION = "1.2.840.10008.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"

T = TypeVar("T")


@dataclass
class Outcome:
    """What pynetdicom's SCU saw of one association."""

    established: bool = False
    rejected: bool = False
    aborted: bool = False
    reject: tuple[int, int, int] | None = None
    echo_status: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    max_pdu: int | None = None
    accepted: list[tuple[str, str]] = field(default_factory=list)
    """(abstract syntax, transfer syntax) of the accepted contexts."""
    refused: list[tuple[str, int]] = field(default_factory=list)
    """(abstract syntax, result) of the refused contexts."""
    released: bool = False


def associate(
    host: str,
    port: int,
    called: str = "ANY-SCP",
    calling: str = "PACSAUDIT",
    contexts: Sequence[tuple[str, list[str] | None]] = ((VERIFICATION, None),),
    *,
    echo: bool = True,
    message_id: int = 1,
    timeout: float = 3.0,
) -> Outcome:
    """One association with pynetdicom's SCU, a C-ECHO over it if accepted, then a release."""
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = timeout
    for abstract_syntax, transfer_syntaxes in contexts:
        ae.add_requested_context(abstract_syntax, transfer_syntaxes)
    received: list[Any] = []
    assoc = ae.associate(
        host,
        port,
        ae_title=called,
        evt_handlers=[(evt.EVT_PDU_RECV, lambda event: received.append(event.pdu))],
    )
    outcome = Outcome(established=assoc.is_established, rejected=assoc.is_rejected, aborted=assoc.is_aborted)
    # pynetdicom's requestor races a fast acceptor: if the A-ASSOCIATE-RJ arrives (and its DUL
    # closes the socket) before the requesting thread checks that the socket is connected, it
    # reports an abort. The PDU itself is the evidence, so read the reject from it.
    rejects = [pdu for pdu in received if isinstance(pdu, A_ASSOCIATE_RJ)]
    if rejects:
        outcome.rejected, outcome.aborted = True, False
        outcome.reject = (rejects[0].result, rejects[0].source, rejects[0].reason_diagnostic)
    if assoc.is_established:
        acceptor = assoc.acceptor
        outcome.implementation_class_uid = acceptor.implementation_class_uid
        outcome.implementation_version_name = acceptor.implementation_version_name
        outcome.max_pdu = acceptor.maximum_length
        outcome.accepted = [(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts]
        outcome.refused = [(cx.abstract_syntax, cx.result) for cx in assoc.rejected_contexts]
        if echo and any(cx.abstract_syntax == VERIFICATION for cx in assoc.accepted_contexts):
            status = assoc.send_c_echo(msg_id=message_id)
            outcome.echo_status = status.Status if "Status" in status else None
        assoc.release()
        outcome.released = assoc.is_released
    ae.shutdown()
    return outcome


# -- raw wire ---------------------------------------------------------------------------------


def associate_rq(
    called: str = "ANY-SCP",
    calling: str = "PACSAUDIT",
    contexts: Sequence[tuple[str, list[str]]] = ((VERIFICATION, [IMPLICIT_VR_LE]),),
    max_pdu: int = 16384,
    application_context: str = "1.2.840.10008.3.1.1.1",
) -> bytes:
    """An A-ASSOCIATE-RQ PDU encoded by pynetdicom; context IDs 1, 3, 5, ..."""
    primitive = A_ASSOCIATE()
    primitive.application_context_name = application_context
    primitive.called_ae_title = called
    primitive.calling_ae_title = calling
    definitions = []
    for index, (abstract_syntax, transfer_syntaxes) in enumerate(contexts):
        context = build_context(abstract_syntax, transfer_syntaxes)
        context.context_id = 2 * index + 1
        definitions.append(context)
    primitive.presentation_context_definition_list = definitions
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = max_pdu
    class_uid = ImplementationClassUIDNotification()
    class_uid.implementation_class_uid = "1.2.3.4"
    primitive.user_information = [max_length, class_uid]
    return bytes(A_ASSOCIATE_RQ(primitive).encode())


def echo_rq(message_id: int = 1, context_id: int = 1, max_pdu: int = 16384) -> list[bytes]:
    """A C-ECHO-RQ as pynetdicom's DIMSE layer sends it: one or more P-DATA-TF PDUs."""
    primitive = C_ECHO()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = VERIFICATION
    message = C_ECHO_RQ()
    message.primitive_to_message(primitive)
    return [bytes(P_DATA_TF(p).encode()) for p in message.encode_msg(context_id, max_pdu)]


def split_pdus(data: bytes) -> list[bytes]:
    """Whole PDUs, by their 6-byte headers; asserts nothing is left over."""
    pdus = []
    while data:
        end = 6 + int.from_bytes(data[2:6], "big")
        assert len(data) >= end, "truncated PDU"
        pdus.append(data[:end])
        data = data[end:]
    return pdus


async def read_pdu(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(6)
    return header + await reader.readexactly(int.from_bytes(header[2:6], "big"))


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    return await reader.read()


async def connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):  # the peer reset it first
        await writer.wait_closed()


def run(test: Callable[[], Awaitable[T]], *, timeout: float = 30.0) -> T:
    """Run an async test body on a fresh loop; fail on anything the loop's exception handler saw.

    The lab must never raise into the event loop: an exception there is only logged by asyncio
    ("Task exception was never retrieved", "Unhandled exception in client_connected_cb"), so the
    handler is replaced by one that records, and the test fails if it recorded anything.
    """
    seen: list[dict[str, Any]] = []

    async def main() -> T:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: seen.append(context))
        async with asyncio.timeout(timeout):
            return await test()

    result = asyncio.run(main())
    assert not seen, f"the event loop's exception handler was called: {seen}"
    return result
