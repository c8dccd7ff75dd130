"""Each hostile peer misbehaves exactly as described, cheaply, and goes away when closed."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from lab_helpers import VERIFICATION, associate, associate_rq, close, echo_rq, read_pdu, read_to_eof, run
from pynetdicom.pdu import A_ASSOCIATE_AC

from pacsaudit.lab.hostile import (
    BAD_AC_REPLY,
    GARBAGE_REPLY,
    HTTP_REPLY,
    HostileKind,
    HostileServer,
    start_hostile,
)


@asynccontextmanager
async def _connected(
    kind: HostileKind, **kwargs: float
) -> AsyncIterator[tuple[HostileServer, asyncio.StreamReader, asyncio.StreamWriter]]:
    async with await start_hostile(kind, **kwargs) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        try:
            yield server, reader, writer
        finally:
            await close(writer)


async def _nothing_within(reader: asyncio.StreamReader, seconds: float) -> None:
    """Assert the peer stays silent, and keeps the connection open, for `seconds`."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            data = await reader.read(1)
            pytest.fail(f"expected silence, got {data!r}")


def test_tarpit_reads_and_never_answers() -> None:
    async def body() -> None:
        async with _connected(HostileKind.TARPIT) as (server, reader, writer):
            writer.write(associate_rq())
            await writer.drain()
            await _nothing_within(reader, 0.5)
            writer.write(b"more")  # still reading: no reset
            await _nothing_within(reader, 0.2)
            assert server.connections == 1

    run(body)


def test_drip_sends_a_valid_ac_one_byte_per_second_without_burning_cpu() -> None:
    async def body() -> None:
        async with _connected(HostileKind.DRIP) as (_, reader, writer):
            writer.write(associate_rq())
            cpu_before = time.process_time()
            arrivals = []
            async with asyncio.timeout(4):
                for _ in range(3):
                    arrivals.append((await reader.read(100), time.monotonic()))
            cpu = time.process_time() - cpu_before
        assert [data for data, _ in arrivals] == [b"\x02", b"\x00", b"\x00"]  # AC type, reserved, length
        gaps = [later - earlier for (_, earlier), (_, later) in itertools.pairwise(arrivals)]
        assert all(0.85 <= gap <= 1.3 for gap in gaps), gaps
        assert cpu < 0.2, f"{cpu:.3f} s of CPU for a 2 s drip"

    run(body, timeout=10)


def test_drip_is_a_complete_valid_ac_when_sped_up() -> None:
    async def body() -> None:
        async with _connected(HostileKind.DRIP, drip_interval=0.001) as (_, reader, writer):
            writer.write(associate_rq("SOME-PACS", "ME", [(VERIFICATION, ["1.2.840.10008.1.2"])]))
            async with asyncio.timeout(5):
                pdu = await read_pdu(reader)
            await _nothing_within(reader, 0.2)
        ac = A_ASSOCIATE_AC()
        ac.decode(pdu)
        assert (ac.called_ae_title, ac.calling_ae_title) == ("SOME-PACS", "ME")
        assert [(cx.context_id, cx.result) for cx in ac.presentation_context] == [(1, 0)]

    run(body)


def test_huge_length_sends_the_header_then_stalls() -> None:
    async def body() -> None:
        async with _connected(HostileKind.HUGE_LENGTH) as (_, reader, writer):
            writer.write(associate_rq())
            async with asyncio.timeout(1):
                header = await reader.readexactly(6)
            assert header == bytes.fromhex("02 00 FF FF FF F0")  # AC, reserved, 4 294 967 280 bytes
            await _nothing_within(reader, 0.3)

    run(body)


def test_truncated_announces_200_sends_20_then_closes() -> None:
    async def body() -> None:
        async with _connected(HostileKind.TRUNCATED) as (_, reader, writer):
            writer.write(associate_rq())
            async with asyncio.timeout(1):
                data = await read_to_eof(reader)
        assert data[:6] == bytes.fromhex("02 00 00 00 00 C8")  # AC announcing 200 bytes
        assert len(data) == 6 + 20
        assert data[6:10] == bytes.fromhex("00 01 00 00")  # protocol version 1: it looks genuine

    run(body)


def test_unknown_pdu_type_is_well_formed_then_stalls() -> None:
    async def body() -> None:
        async with _connected(HostileKind.UNKNOWN_PDU) as (_, reader, writer):
            writer.write(associate_rq())
            async with asyncio.timeout(1):
                data = await reader.readexactly(10)
            assert data == bytes.fromhex("0A 00 00000004 00000000")  # type 0x0A, length 4, 4 bytes
            await _nothing_within(reader, 0.3)

    run(body)


def test_http_answers_400_then_closes() -> None:
    async def body() -> None:
        async with _connected(HostileKind.HTTP) as (_, reader, writer):
            writer.write(associate_rq())
            async with asyncio.timeout(1):
                data = await read_to_eof(reader)
        assert data == HTTP_REPLY
        head, _, body_bytes = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert f"Content-Length: {len(body_bytes)}".encode() in head

    run(body)


def test_http_answers_any_input_even_a_lone_byte() -> None:
    async def body() -> None:
        async with _connected(HostileKind.HTTP) as (_, reader, writer):
            writer.write(b"\x01")
            async with asyncio.timeout(1):
                assert (await read_to_eof(reader)).startswith(b"HTTP/1.1 400")

    run(body)


def test_immediate_close_sends_nothing_and_closes() -> None:
    async def body() -> None:
        async with _connected(HostileKind.IMMEDIATE_CLOSE) as (_, reader, writer):
            async with asyncio.timeout(1):
                assert await read_to_eof(reader) == b""
            writer.write(associate_rq())  # the server still reads, so no reset follows
            await writer.drain()

    run(body)


def test_rst_resets_the_connection() -> None:
    async def body() -> None:
        async with _connected(HostileKind.RST) as (_, reader, _writer):
            with pytest.raises(ConnectionResetError):
                async with asyncio.timeout(1):
                    await reader.read(100)

    run(body)


def test_garbage_is_64_fixed_bytes_starting_0xff_then_close() -> None:
    async def body() -> None:
        answers = []
        for _ in range(2):
            async with _connected(HostileKind.GARBAGE) as (_, reader, writer):
                writer.write(associate_rq())
                async with asyncio.timeout(1):
                    answers.append(await read_to_eof(reader))
        assert answers[0] == answers[1] == GARBAGE_REPLY
        assert len(GARBAGE_REPLY) == 64 and GARBAGE_REPLY[0] == 0xFF
        assert GARBAGE_REPLY[1:5] == bytes.fromhex("72 bd 95 08")  # SHA-256("pacsaudit lab garbage")

    run(body)


def test_ssh_banner_on_connect_then_close_after_input() -> None:
    async def body() -> None:
        async with _connected(HostileKind.SSH_BANNER) as (_, reader, writer):
            async with asyncio.timeout(1):
                assert await reader.readline() == b"SSH-2.0-OpenSSH_9.2\r\n"
            writer.write(associate_rq())
            async with asyncio.timeout(1):
                assert await read_to_eof(reader) == b""

    run(body)


def test_silent_after_ac_accepts_then_never_answers() -> None:
    async def body() -> None:
        async with _connected(HostileKind.SILENT_AFTER_AC) as (_, reader, writer):
            writer.write(associate_rq())
            async with asyncio.timeout(1):
                ac = await read_pdu(reader)
            assert ac[0] == 0x02
            for pdu in echo_rq():
                writer.write(pdu)
            await _nothing_within(reader, 0.5)

    run(body)


def test_silent_after_ac_leaves_pynetdicoms_echo_without_an_answer() -> None:
    async def body() -> None:
        async with await start_hostile(HostileKind.SILENT_AFTER_AC) as server:
            outcome = await asyncio.to_thread(associate, server.host, server.port, timeout=0.5)
        assert outcome.established
        assert outcome.echo_status is None

    run(body)


def test_bad_ac_items_overrun_the_pdu() -> None:
    async def body() -> None:
        async with _connected(HostileKind.BAD_AC) as (_, reader, writer):
            writer.write(associate_rq())
            async with asyncio.timeout(1):
                pdu = await read_pdu(reader)
            await _nothing_within(reader, 0.2)
        assert pdu == BAD_AC_REPLY
        assert pdu[0] == 0x02 and len(pdu) < 256  # a sane, complete PDU...
        offset, overruns = 74, False
        while offset < len(pdu):  # ...whose items do not fit in it
            item_end = offset + 4 + int.from_bytes(pdu[offset + 2 : offset + 4], "big")
            overruns |= item_end > len(pdu)
            offset = item_end
        assert overruns

    run(body)


@pytest.mark.parametrize("kind", list(HostileKind))
def test_close_ends_every_connection_promptly_and_quietly(kind: HostileKind) -> None:
    async def body() -> None:
        server = await start_hostile(kind)
        clients = [await asyncio.open_connection(server.host, server.port) for _ in range(3)]
        for _, writer in clients[:2]:
            writer.write(associate_rq())
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await server.close()
        assert time.monotonic() - started < 1
        for reader, writer in clients:
            async with asyncio.timeout(1):
                try:
                    while await reader.read(65536):
                        pass
                except ConnectionResetError:
                    pass
            await close(writer)
        assert server.connections == 3
        with pytest.raises(OSError):
            await asyncio.open_connection(server.host, server.port)

    run(body)


def test_refuses_to_listen_off_loopback() -> None:
    async def body() -> None:
        with pytest.raises(ValueError, match="loopback"):
            await start_hostile(HostileKind.TARPIT, "0.0.0.0")

    run(body)


def test_every_kind_is_described() -> None:
    assert all(kind.description for kind in HostileKind)
