"""Misbehaving peers on loopback: what real PACS rarely do, and what a scanner must survive.

Each `HostileKind` does exactly one thing wrong, described on its member; the exact bytes sent
are module constants, so tests and the scanner's own tests can assert them. Servers that answer
wait for the peer's first bytes (an A-ASSOCIATE-RQ, normally) before answering.

Every connection is one task that ends on its own, when the peer leaves, or when the server
closes; none of them raises into the event loop, and a drip costs one timer per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import struct
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Final

from pynetdicom.pdu import A_ASSOCIATE_RQ
from pynetdicom.pdu_items import (
    AbstractSyntaxSubItem,
    ApplicationContextItem,
    MaximumLengthSubItem,
    PresentationContextItemRQ,
    TransferSyntaxSubItem,
    UserInformationItem,
)

from pacsaudit.lab._net import IDLE_TIMEOUT, MAX_PDU_BYTES, require_loopback
from pacsaudit.lab.simulator import (
    APPLICATION_CONTEXT,
    IMPLICIT_VR_LE,
    VERIFICATION,
    PduType,
    encode_accept,
)

__all__ = [
    "BAD_AC_REPLY",
    "GARBAGE_REPLY",
    "HOLD_SECONDS",
    "HTTP_REPLY",
    "HUGE_LENGTH_REPLY",
    "SSH_BANNER",
    "TRUNCATED_REPLY",
    "UNKNOWN_PDU_REPLY",
    "HostileKind",
    "HostileServer",
    "start_hostile",
]

HOLD_SECONDS: Final = 600.0
"""How long a stalling server keeps a silent connection before it gives up on the peer."""


class HostileKind(StrEnum):
    """One way of being a bad peer; `description` says exactly which."""

    TARPIT = "tarpit"
    DRIP = "drip"
    HUGE_LENGTH = "huge-length"
    TRUNCATED = "truncated"
    UNKNOWN_PDU = "unknown-pdu"
    HTTP = "http"
    IMMEDIATE_CLOSE = "immediate-close"
    RST = "rst"
    GARBAGE = "garbage"
    SSH_BANNER = "ssh-banner"
    SILENT_AFTER_AC = "silent-after-ac"
    BAD_AC = "bad-ac"

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS: Final = {
    HostileKind.TARPIT: "accepts, reads everything, never answers",
    HostileKind.DRIP: "answers a valid A-ASSOCIATE-AC one byte per second, then stalls",
    HostileKind.HUGE_LENGTH: "answers a PDU header of type 0x02 announcing 0xFFFFFFF0 bytes, then stalls",
    HostileKind.TRUNCATED: "answers an A-ASSOCIATE-AC header announcing 200 bytes, sends 20, then closes",
    HostileKind.UNKNOWN_PDU: "answers a well-formed PDU of unknown type 0x0A (length 4), then stalls",
    HostileKind.HTTP: "answers anything with HTTP/1.1 400 Bad Request, then closes",
    HostileKind.IMMEDIATE_CLOSE: "accepts, then closes at once (FIN) without a byte",
    HostileKind.RST: "accepts, then resets at once (SO_LINGER 0)",
    HostileKind.GARBAGE: "answers 64 fixed pseudo-random bytes starting 0xFF, then closes",
    HostileKind.SSH_BANNER: "sends an OpenSSH identification line on connect, closes after the peer's bytes",
    HostileKind.SILENT_AFTER_AC: "answers a valid A-ASSOCIATE-AC, then never answers anything",
    HostileKind.BAD_AC: "answers an A-ASSOCIATE-AC whose presentation context item overruns the PDU",
}


HUGE_LENGTH_REPLY: Final = bytes.fromhex("02 00 FFFFFFF0")
"""A-ASSOCIATE-AC type, reserved, a 4 GiB length: a reader that believes it must not allocate it."""

TRUNCATED_REPLY: Final = (
    bytes.fromhex("02 00 000000C8")  # A-ASSOCIATE-AC, reserved, length 200
    + bytes.fromhex("0001 0000")  # protocol version 1, reserved
    + b"ANY-SCP".ljust(16)  # called AE title, echoed: 20 body bytes in all, then FIN
)

UNKNOWN_PDU_REPLY: Final = bytes.fromhex("0A 00 00000004 00000000")
"""Type 0x0A (none in PS3.8), reserved 0, length 4, four zero bytes."""

_HTTP_BODY: Final = (
    b"<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n"
    b"<center><h1>400 Bad Request</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
HTTP_REPLY: Final = (
    b"HTTP/1.1 400 Bad Request\r\n"
    b"Server: nginx\r\n"
    b"Content-Type: text/html\r\n"
    b"Content-Length: " + str(len(_HTTP_BODY)).encode() + b"\r\n"
    b"Connection: close\r\n"
    b"\r\n" + _HTTP_BODY
)

GARBAGE_REPLY: Final = b"\xff" + (hashlib.sha256(b"pacsaudit lab garbage").digest() * 2)[:63]
"""64 bytes: 0xFF (no PDU type) then 63 bytes of SHA-256 output, the same on every run."""

SSH_BANNER: Final = b"SSH-2.0-OpenSSH_9.2\r\n"


def _bad_ac() -> bytes:
    body = (
        bytes.fromhex("0001 0000")  # protocol version 1, reserved
        + b"ANY-SCP".ljust(16)
        + b"ANY-SCU".ljust(16)
        + bytes(32)
        + bytes.fromhex("10 00 0015")  # application context item, 21 bytes
        + APPLICATION_CONTEXT.encode()
        + bytes.fromhex("21 00 0100")  # presentation context item claiming 256 bytes...
        + bytes.fromhex("01 00 00 00")  # ...of which 4 follow before the PDU ends
    )
    return bytes.fromhex("02 00") + struct.pack(">I", len(body)) + body


BAD_AC_REPLY: Final = _bad_ac()


def _canned_request() -> bytes:
    """A plain A-ASSOCIATE-RQ for Verification, to answer peers whose request was not one."""
    context = PresentationContextItemRQ()
    context.presentation_context_id = 1
    abstract_syntax = AbstractSyntaxSubItem()
    abstract_syntax.abstract_syntax_name = VERIFICATION
    transfer_syntax = TransferSyntaxSubItem()
    transfer_syntax.transfer_syntax_name = IMPLICIT_VR_LE
    context.abstract_transfer_syntax_sub_items = [abstract_syntax, transfer_syntax]
    max_length = MaximumLengthSubItem()
    max_length.maximum_length_received = 16384
    user_information = UserInformationItem()
    user_information.user_data = [max_length]
    request = A_ASSOCIATE_RQ()
    request.called_ae_title = "ANY-SCP"
    request.calling_ae_title = "ANY-SCU"
    request.variable_items = [ApplicationContextItem(), context, user_information]
    return request.encode()


_CANNED_ACCEPT: Final = encode_accept(_canned_request())


def _accept_for(request: bytes) -> bytes:
    try:
        return encode_accept(request)
    except ValueError:
        return _CANNED_ACCEPT


_Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class HostileServer:
    """A listening hostile peer. Use `start_hostile`, then `close()` or `async with`."""

    def __init__(self, kind: HostileKind, *, drip_interval: float = 1.0, hold: float = HOLD_SECONDS) -> None:
        self.kind = HostileKind(kind)
        self.drip_interval = drip_interval
        self.hold = hold
        self.host = ""
        self.port = 0
        self.connections = 0
        """Connections accepted so far."""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._behaviour: _Behaviour = {
            HostileKind.TARPIT: self._tarpit,
            HostileKind.DRIP: self._drip,
            HostileKind.HUGE_LENGTH: self._huge_length,
            HostileKind.TRUNCATED: self._truncated,
            HostileKind.UNKNOWN_PDU: self._unknown_pdu,
            HostileKind.HTTP: self._http,
            HostileKind.IMMEDIATE_CLOSE: self._immediate_close,
            HostileKind.RST: self._rst,
            HostileKind.GARBAGE: self._garbage,
            HostileKind.SSH_BANNER: self._ssh_banner,
            HostileKind.SILENT_AFTER_AC: self._silent_after_ac,
            HostileKind.BAD_AC: self._bad_ac,
        }[self.kind]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, require_loopback(host), port)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        """Stop listening and end every connection now."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closing = True
        server.close()
        await asyncio.sleep(0)  # connections accepted just now start, see `_closing` and leave
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # let the aborted transports report connection_lost
        await server.wait_closed()

    async def __aenter__(self) -> HostileServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            if not self._closing:
                await self._behaviour(reader, writer)
        except asyncio.CancelledError:
            pass  # close() ended us; a cancelled streams callback task would be logged on 3.11
        except Exception:  # the peer left, reset, or timed out: all part of the act
            pass
        finally:
            self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.transport.abort()

    # -- the acts ------------------------------------------------------------------------------

    async def _tarpit(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._stall(reader)

    async def _drip(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader)
        if not request:
            return
        accept = _accept_for(request)
        for index in range(len(accept)):
            if index:
                await asyncio.sleep(self.drip_interval)
            writer.write(accept[index : index + 1])
            await writer.drain()  # raises once the peer has gone
        await self._stall(reader)

    async def _huge_length(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._answer_then_stall(reader, writer, HUGE_LENGTH_REPLY)

    async def _truncated(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._answer_then_close(reader, writer, TRUNCATED_REPLY)

    async def _unknown_pdu(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._answer_then_stall(reader, writer, UNKNOWN_PDU_REPLY)

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._answer_then_close(reader, writer, HTTP_REPLY)

    async def _immediate_close(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _close_gracefully(reader, writer)

    async def _rst(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def _garbage(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._answer_then_close(reader, writer, GARBAGE_REPLY)

    async def _ssh_banner(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(SSH_BANNER)
        await writer.drain()
        async with asyncio.timeout(self.hold):
            await reader.read(MAX_PDU_BYTES)
        await _close_gracefully(reader, writer)

    async def _silent_after_ac(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader)
        if request:
            writer.write(_accept_for(request))
            await writer.drain()
            await self._stall(reader)

    async def _bad_ac(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._answer_then_stall(reader, writer, BAD_AC_REPLY)

    # -- the moves they share ------------------------------------------------------------------

    async def _answer_then_stall(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: bytes
    ) -> None:
        if await _read_request(reader):
            writer.write(answer)
            await writer.drain()
            await self._stall(reader)

    async def _answer_then_close(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: bytes
    ) -> None:
        if await _read_request(reader):
            writer.write(answer)
            await _close_gracefully(reader, writer)

    async def _stall(self, reader: asyncio.StreamReader) -> None:
        """Read and ignore everything until the peer leaves or `hold` runs out."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.hold):
                while await reader.read(MAX_PDU_BYTES):
                    pass


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """The peer's first bytes: a whole PDU if they start one (bounded), else what came; b"" at EOF."""
    async with asyncio.timeout(IDLE_TIMEOUT):
        data = await reader.read(MAX_PDU_BYTES)
        if len(data) >= 6 and data[0] == PduType.ASSOCIATE_RQ:
            wanted = 6 + int.from_bytes(data[2:6], "big")
            while len(data) < min(wanted, MAX_PDU_BYTES):
                more = await reader.read(wanted - len(data))
                if not more:
                    break
                data += more
    return data


async def _close_gracefully(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """FIN now, then read until the peer closes too, so that nothing unread turns the close into a RST."""
    if writer.can_write_eof():
        writer.write_eof()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(IDLE_TIMEOUT):
            while await reader.read(MAX_PDU_BYTES):
                pass
    writer.close()


async def start_hostile(
    kind: HostileKind,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    drip_interval: float = 1.0,
    hold: float = HOLD_SECONDS,
) -> HostileServer:
    """Start a hostile peer of `kind` on `host` (loopback only) and `port` (0: any free port)."""
    server = HostileServer(kind, drip_interval=drip_interval, hold=hold)
    await server.start(host, port)
    return server
