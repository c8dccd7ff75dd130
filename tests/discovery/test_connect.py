"""The connector turns every way a TCP connect can end into a status."""

from __future__ import annotations

import asyncio
import socket
from typing import cast

import pytest

from pacsaudit.discovery import ConnectFailedError, Connector
from pacsaudit.model import Status


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Sender(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, data: bytes) -> None:
        self.transport.write(data)


def test_closed_port_is_connection_refused() -> None:
    async def go() -> None:
        async with Connector(timeout=2, rate=0, per_host=1).open(
            "127.0.0.1", _closed_port(), asyncio.Protocol
        ):
            pass

    with pytest.raises(ConnectFailedError) as caught:
        asyncio.run(go())
    assert caught.value.status is Status.CONNECTION_REFUSED


def test_open_port_yields_a_connection_and_closes_it() -> None:
    async def go() -> bytes:
        got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            got.set_result(await reader.read(100))
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with Connector(timeout=2, rate=0, per_host=1).open("127.0.0.1", port, _Sender) as conn:
            conn.send(b"hello")
        data = await asyncio.wait_for(got, 2)
        server.close()
        await server.wait_closed()
        return data

    assert asyncio.run(go()) == b"hello"
