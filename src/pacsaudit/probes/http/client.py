"""Bounded HTTP GETs: a byte cap on every body, a time cap on every request, a request budget.

Every answer is streamed and reading stops at the cap; redirects are followed by hand, at most
`MAX_REDIRECTS`, and only on the same scheme, host and port (a redirect to a login page is not
followed: it *is* the answer). Transport failures become `HttpFailure` with a `Status` and a
message made of our own words, never the peer's bytes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import functools
import socket
import ssl
import zlib
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from pacsaudit import __version__
from pacsaudit.config import ScanSettings
from pacsaudit.model import Status
from pacsaudit.probes.http.signatures import Observed, is_login_redirect

__all__ = [
    "JSON_BYTES",
    "MAX_REDIRECTS",
    "PAGE_BYTES",
    "USER_AGENT",
    "BoundedHttp",
    "BudgetSpent",
    "Fetched",
    "HttpFailure",
    "failure_of",
]

USER_AGENT = f"pacsaudit/{__version__} (medical-image archive exposure audit)"
"""Owners reading their logs can tell who knocked."""
PAGE_BYTES = 256 * 1024
"""Bytes read of a page (HTML, a small JSON document)."""
JSON_BYTES = 8 * 1024 * 1024
"""Bytes read of one QIDO-RS page."""
MAX_REDIRECTS = 3
_MAX_HEADER_VALUE = 512
_MAX_HEADERS_KEPT = 64


class HttpFailure(Exception):
    """One request failed below HTTP (connect, TLS, timeout, malformed answer)."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BudgetSpent(Exception):
    """The endpoint's request budget is used up."""


@dataclass(frozen=True)
class Fetched:
    observed: Observed
    redirects: int = 0
    redirect_error: str | None = None
    """Why a redirect was not followed to the end (a loop, or a target on another host)."""


def _oserror_in(exc: BaseException) -> OSError | None:
    """The most specific OS error behind `exc` (anyio wraps a refused connect in a bare OSError)."""
    seen: set[int] = set()
    found: list[OSError] = []
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and not isinstance(current, TimeoutError):
            found.append(current)
        current = current.__cause__ or current.__context__
    specific = [e for e in found if type(e) is not OSError or e.errno is not None]
    candidates = specific or found
    return candidates[0] if candidates else None


def _protocol_words(text: str) -> str:
    lowered = text.lower()
    if "without sending a response" in lowered or "disconnected" in lowered:
        return "the server closed the connection without an HTTP answer"
    if "status line" in lowered:
        return "malformed HTTP status line"
    if "too long" in lowered or "maximum" in lowered or "size" in lowered:
        return "HTTP headers over the size limit"
    if "header" in lowered:
        return "malformed HTTP headers"
    if "peer closed" in lowered or "incomplete" in lowered:
        return "the body ended before its announced length"
    return "malformed HTTP answer"


def failure_of(exc: BaseException) -> HttpFailure:
    """A transport exception as data: a closed status and our own words (never the peer's bytes)."""
    if isinstance(exc, HttpFailure):
        return exc
    if isinstance(exc, httpx.ConnectTimeout):
        return HttpFailure(Status.CONNECTION_TIMEOUT, "TCP connect (or TLS handshake) timed out")
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        return HttpFailure(Status.IO_TIMEOUT, "no complete HTTP answer in time")
    if isinstance(exc, httpx.RemoteProtocolError):
        words = _protocol_words(str(exc))
        if words.startswith("the server closed"):
            return HttpFailure(Status.CONNECTION_CLOSED, words)
        return HttpFailure(Status.PROTOCOL_ERROR, words)
    if isinstance(exc, httpx.DecodingError):
        return HttpFailure(Status.PROTOCOL_ERROR, "undecodable body")
    os_error = _oserror_in(exc)
    if isinstance(os_error, ssl.SSLError):
        return HttpFailure(Status.PROTOCOL_ERROR, f"TLS handshake failed ({type(os_error).__name__})")
    if isinstance(os_error, socket.gaierror):
        return HttpFailure(Status.NAME_ERROR, "the hostname did not resolve")
    if isinstance(os_error, ConnectionRefusedError):
        return HttpFailure(Status.CONNECTION_REFUSED, "connection refused")
    if isinstance(os_error, ConnectionResetError):
        return HttpFailure(Status.CONNECTION_RESET, "connection reset by the peer")
    if os_error is not None and os_error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return HttpFailure(Status.UNREACHABLE, "no route to the host")
    if isinstance(exc, httpx.ConnectError):
        return HttpFailure(Status.UNKNOWN_ERROR, "TCP connect failed")
    if isinstance(exc, (httpx.ReadError, httpx.WriteError)):
        return HttpFailure(Status.CONNECTION_CLOSED, "the connection broke mid-answer")
    return HttpFailure(Status.UNKNOWN_ERROR, f"HTTP request failed ({type(exc).__name__})")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS probe's client context (verification off, TLS 1.0+, every cipher, legacy renegotiation),
    so an old HTTPS front end is reached as `probe_tls` reaches it.

    Built by the same function as `pacsaudit.probes.tls.client_context()` but a separate object, one
    per process: httpcore sets ALPN (``http/1.1``) on the context it is given, which must not leak
    into the ClientHellos the TLS probe sends to DICOM ports. Imported lazily (`cryptography`).
    """
    from pacsaudit.probes.tls import client_context

    return client_context.__wrapped__()


def _host_literal(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


class _BoundedBody:
    """Collects at most `cap` bytes of a body, inflating gzip/deflate by hand so that a
    compressed bomb stops at the cap too."""

    def __init__(self, cap: int, encoding: str) -> None:
        self.cap = cap
        self.data = bytearray()
        self.truncated = False
        self.wire_bytes = 0
        encoding = encoding.strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self._inflate: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._inflate = zlib.decompressobj()
        else:
            self._inflate = None

    def feed(self, chunk: bytes) -> bool:
        """Add a chunk; False once the cap is reached (stop reading)."""
        self.wire_bytes += len(chunk)
        room = self.cap - len(self.data)
        if self._inflate is not None:
            try:
                chunk = self._inflate.decompress(chunk, room + 1)
            except zlib.error:
                raise HttpFailure(Status.PROTOCOL_ERROR, "undecodable compressed body") from None
            if self._inflate.unconsumed_tail:
                self.truncated = True
        if len(chunk) > room:
            self.data += chunk[:room]
            self.truncated = True
        else:
            self.data += chunk
        return not self.truncated


class BoundedHttp:
    """One endpoint's HTTP client: base URL, budget, pause and caps in one place."""

    def __init__(
        self,
        ip: str,
        port: int,
        *,
        tls: bool,
        settings: ScanSettings,
        hostname: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.scheme = "https" if tls else "http"
        self.base = f"{self.scheme}://{_host_literal(ip)}:{port}"
        self._origin = urlsplit(self.base)
        self._pause = settings.query_pause
        self._request_time = settings.timeout * 2
        self.requests = 0
        self.bytes_read = 0
        headers = {"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "gzip, deflate, identity"}
        self._extensions: dict[str, str] = {}
        if hostname:
            default_port = 443 if tls else 80
            headers["Host"] = hostname if port == default_port else f"{hostname}:{port}"
            if tls:
                self._extensions["sni_hostname"] = hostname
        self._client = httpx.AsyncClient(
            transport=transport,
            verify=_tls_context() if tls else True,
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=False,
            headers=headers,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(
        self, path: str, *, budget: int, max_bytes: int = PAGE_BYTES, auth: tuple[str, str] | None = None
    ) -> Fetched:
        """GET `path`, following same-origin redirects.

        `budget` is the most requests this client may have sent before the call: checked once, so
        the redirect hops of a started GET (at most `MAX_REDIRECTS`) are never cut off mid-way.
        """
        if self.requests >= budget:
            raise BudgetSpent
        url = self.base + path
        for hop in range(MAX_REDIRECTS + 1):
            observed = await self._one(url, path, max_bytes=max_bytes, auth=auth)
            location = observed.headers.get("location")
            if not (300 <= observed.status < 400 and location) or is_login_redirect(
                observed.status, location
            ):
                return Fetched(observed, redirects=hop)
            target = urljoin(url, location)
            split = urlsplit(target)
            if (split.scheme, split.hostname, split.port) != (
                self._origin.scheme,
                self._origin.hostname,
                self._origin.port,
            ):
                return Fetched(
                    observed, redirects=hop, redirect_error="redirect to another origin not followed"
                )
            if hop == MAX_REDIRECTS:
                return Fetched(observed, redirects=hop, redirect_error=f"more than {MAX_REDIRECTS} redirects")
            url = target
        raise AssertionError("unreachable")  # pragma: no cover

    async def _one(self, url: str, path: str, *, max_bytes: int, auth: tuple[str, str] | None) -> Observed:
        """One request: the status line and headers within twice `timeout`, then the body within as much
        again. A body still arriving then is kept as read (`timed_out`): the status and headers are
        an answer, a server dripping its body is still described."""
        if self.requests and self._pause:
            await asyncio.sleep(self._pause)
        self.requests += 1
        try:
            async with asyncio.timeout(self._request_time):
                request = self._client.build_request(
                    "GET", url, extensions=dict(self._extensions) if self._extensions else None
                )
                if auth is not None:
                    request.headers["Authorization"] = _basic(*auth)
                response = await self._client.send(request, stream=True)
        except Exception as exc:  # every transport error is data; nothing escapes the probe
            raise failure_of(exc) from None
        timed_out = False
        try:
            headers = _headers(response.headers)
            if response.is_stream_consumed:  # a transport that hands over a read body (MockTransport)
                body = _BoundedBody(max_bytes, "")
                body.feed(response.content)
            else:
                body = _BoundedBody(max_bytes, headers.get("content-encoding", ""))
                try:
                    async with asyncio.timeout(self._request_time):
                        async for chunk in response.aiter_raw():
                            if not body.feed(chunk):
                                break
                except (TimeoutError, httpx.TimeoutException):
                    timed_out = True
        except HttpFailure:
            raise
        except Exception as exc:
            raise failure_of(exc) from None
        finally:
            with contextlib.suppress(Exception):  # closing drops the socket; never waits on the peer long
                async with asyncio.timeout(self._request_time):
                    await response.aclose()
        self.bytes_read += body.wire_bytes
        return Observed(
            path=path,
            status=response.status_code,
            headers=headers,
            body=bytes(body.data),
            truncated=body.truncated or timed_out,
            timed_out=timed_out,
        )


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _headers(raw: httpx.Headers) -> dict[str, str]:
    """Lower-case names, repeated headers joined, every value and the count bounded."""
    out: dict[str, str] = {}
    for name, value in raw.multi_items()[: _MAX_HEADERS_KEPT * 4]:
        key = name.lower()
        if key in out:
            out[key] = (out[key] + ", " + value)[:_MAX_HEADER_VALUE]
        elif len(out) < _MAX_HEADERS_KEPT:
            out[key] = value[:_MAX_HEADER_VALUE]
    return out
