"""The lab's web side: an Orthanc-like REST front end, and a self-signed certificate for TLS members.

Just enough of Orthanc's REST API for a stranger to recognise it and count what it holds
(`/system`, `/statistics`), answered the way Orthanc 1.x answers, optionally behind HTTP Basic
authentication; everything else is a 404. Requests are read with bounds, like any lab server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pacsaudit.lab._net import require_loopback
from pacsaudit.lab.simulator import SimStudy

__all__ = ["SimulatedWebPacs", "WebPolicy", "lab_server_context", "start_web_pacs"]

_MAX_HEAD = 16 * 1024
_IDLE = 10.0


@dataclass(frozen=True)
class WebPolicy:
    """How the simulated Orthanc REST front end behaves."""

    version: str = "1.12.1"
    studies: tuple[SimStudy, ...] = ()
    basic_auth: tuple[str, str] | None = None
    """(user, password) when authentication is on, as Orthanc's `RegisteredUsers`."""
    aet: str = "ORTHANC"
    extra_paths: dict[str, str] = field(default_factory=dict)


class SimulatedWebPacs:
    """A running simulated web front end; `close()` or `async with` stops it."""

    def __init__(self, policy: WebPolicy, server: asyncio.Server, host: str, port: int) -> None:
        self.policy = policy
        self.host = host
        self.port = port
        self._server = server

    async def close(self) -> None:
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def __aenter__(self) -> SimulatedWebPacs:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _statistics(studies: tuple[SimStudy, ...]) -> dict[str, object]:
    return {
        "CountPatients": len({s.patient_id for s in studies}),
        "CountStudies": len(studies),
        "CountSeries": sum(s.series for s in studies),
        "CountInstances": sum(s.instances for s in studies),
        "TotalDiskSize": "0",
        "TotalDiskSizeMB": 0,
        "TotalUncompressedSize": "0",
        "TotalUncompressedSizeMB": 0,
    }


def _answer(policy: WebPolicy, path: str, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
    if policy.basic_auth is not None:
        expected = "Basic " + base64.b64encode(":".join(policy.basic_auth).encode()).decode()
        if authorization != expected:
            return 401, {"WWW-Authenticate": 'Basic realm="Orthanc Secure Area"'}, b""
    document: object
    if path == "/system":
        document = {
            "Name": "pacsaudit-lab",
            "Version": policy.version,
            "ApiVersion": 22,
            "DicomAet": policy.aet,
            "DicomPort": 4242,
            "HttpPort": 8042,
            "DatabaseVersion": 6,
            "IsHttpServerSecure": policy.basic_auth is not None,
            "PluginsEnabled": True,
        }
    elif path == "/statistics":
        document = _statistics(policy.studies)
    elif path in policy.extra_paths:
        return 200, {"Content-Type": "text/html"}, policy.extra_paths[path].encode()
    else:
        return 404, {}, b""
    return 200, {"Content-Type": "application/json"}, json.dumps(document).encode()


async def _serve(policy: WebPolicy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _IDLE)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[0] not in ("GET", "HEAD"):
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        fields = (line.partition(":") for line in lines[1:] if line)
        headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        status, extra, body = _answer(policy, parts[1].split("?", 1)[0], headers.get("authorization"))
        reason = {200: "OK", 401: "Unauthorized", 404: "Not Found"}[status]
        answer = {"Server": "Orthanc", "Content-Length": str(len(body)), **extra}
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\n".encode()
            + "".join(f"{k}: {v}\r\n" for k, v in answer.items()).encode()
            + b"\r\n"
            + (b"" if parts[0] == "HEAD" else body)
        )
        await writer.drain()


async def start_web_pacs(policy: WebPolicy, host: str = "127.0.0.1", port: int = 0) -> SimulatedWebPacs:
    """Serve `policy` on `host` (loopback only) and `port` (0: any free port)."""
    host = require_loopback(host)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _serve(policy, reader, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port, limit=_MAX_HEAD)
    bound = server.sockets[0].getsockname()
    return SimulatedWebPacs(policy, server, bound[0], bound[1])


def lab_server_context(common_name: str = "pacsaudit-lab.invalid") -> ssl.SSLContext:
    """A server context with a fresh self-signed RSA certificate, for the lab's TLS members.

    The key never leaves memory for long: it is written to a temporary directory only because
    `load_cert_chain` reads files, and that directory is removed at once.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="pacsaudit-lab-tls-") as directory:
        cert_file, key_file = Path(directory, "lab.crt"), Path(directory, "lab.key")
        cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context.load_cert_chain(cert_file, key_file)
    return context
