"""The HTTP(S) probe: which PACS web service answers, whether it wants credentials, what a stranger may list.

One call per endpoint, bounded in requests (`http_max_requests`, plus `max_queries` for the
census), in time (`deadline`, plus `census_time` with `--census`) and in bytes (every body
capped). It never raises: whatever happens ends up in `HttpBlock.status` / `.error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

import httpx

from pacsaudit.config import ScanSettings
from pacsaudit.model import HttpBlock, HttpService, Status
from pacsaudit.probes.http.census import QidoCensus, counts_from_orthanc_statistics
from pacsaudit.probes.http.client import BoundedHttp, BudgetSpent, HttpFailure, failure_of
from pacsaudit.probes.http.signatures import (
    HttpSignature,
    Observed,
    SignatureMatch,
    demands_auth,
    http_signatures,
    match_response,
)

__all__ = ["probe_http"]

_CLOSE_TIME = 0.5
"""Closing the client (after the deadline, at worst) drops sockets; it never waits on the peer this long."""


def _qido_root(path: str) -> str:
    return path.split("/studies", 1)[0]


class _Session:
    """One endpoint's detection state: answers by path (each path fetched once) and what matched."""

    def __init__(
        self, http: BoundedHttp, settings: ScanSettings, signatures: tuple[HttpSignature, ...]
    ) -> None:
        self.http = http
        self.settings = settings
        self.signatures = signatures
        self.answers: dict[str, Observed | None] = {}
        self.matches: dict[str, SignatureMatch] = {}
        self.baseline: Observed | None = None
        self.baseline_tried = False
        self.notes: list[str] = []

    async def fetch(self, path: str) -> Observed | None:
        if path not in self.answers:
            try:
                fetched = await self.http.get(path, budget=self.settings.http_max_requests)
            except HttpFailure as failure:
                self.notes.append(f"GET {path}: {failure.message}")
                self.answers[path] = None
            else:
                self.answers[path] = fetched.observed
        return self.answers[path]

    async def ensure_baseline(self) -> Observed | None:
        """The answer to a path nobody serves: tells a path-specific 401 from a server-wide one."""
        if not self.baseline_tried:
            self.baseline_tried = True
            self.baseline = await self.fetch(f"/pacsaudit-{secrets.token_hex(6)}")
        return self.baseline

    def _skip(self, signature: HttpSignature) -> bool:
        if any(required not in self.matches for required in signature.requires):
            return True
        # One open DICOMweb root is enough; another root is only worth a request if none is open.
        return signature.kind == "dicomweb" and any(
            m.signature.kind == "dicomweb" and not m.auth_required for m in self.matches.values()
        )

    async def try_signature(self, signature: HttpSignature) -> None:
        for path in signature.expanded_paths():
            observed = await self.fetch(path)
            if observed is None:
                continue
            found = match_response(signature, observed, baseline=self.baseline)
            if found is not None:
                self.matches[signature.id] = found
                return

    async def detect(self) -> None:
        await self.ensure_baseline()
        for signature in self.signatures:
            if not signature.fallback and not self._skip(signature):
                await self.try_signature(signature)
        if not self.matches:
            for signature in self.signatures:
                if signature.fallback:
                    await self.try_signature(signature)


def _service(found: SignatureMatch) -> HttpService:
    signature = found.signature
    return HttpService(
        kind=signature.kind,
        path=found.path,
        status_code=found.status,
        auth_required=found.auth_required,
        product=signature.product,
        vendor=signature.vendor,
        version=found.version,
        signature=signature.id,
        lists_studies=(not found.auth_required) if signature.lists_studies else None,
    )


def _summarise(block: HttpBlock, session: _Session, root: Observed) -> None:
    matches = list(session.matches.values())
    block.services = [_service(m) for m in matches]
    product_match = next((m for m in matches if m.signature.product), None)
    if product_match is not None:
        block.product = product_match.signature.product
        block.vendor = product_match.signature.vendor
        block.version = next(
            (m.version for m in matches if m.version and m.signature.product == block.product), None
        )
    # Only a data service (a study list, counts, a JSON API) can show that no credentials are needed;
    # a UI shell is served to anyone (dcm4chee's UI, OE2 before its Keycloak login), it decides nothing.
    data = [m for m in matches if m.signature.lists_studies or m.signature.counts or m.signature.json_keys]
    if data:
        block.auth_required = all(m.auth_required for m in data)
    elif any(m.auth_required for m in matches) or demands_auth(root):
        block.auth_required = True
    listing = [m for m in matches if m.signature.lists_studies]
    if listing:
        block.studies_listable = any(not m.auth_required for m in listing)
    roots = [m for m in matches if m.signature.kind == "dicomweb"]
    open_roots = [m for m in roots if not m.auth_required]
    if roots:
        block.dicomweb_root = _qido_root((open_roots or roots)[0].path)


async def _try_default_credentials(block: HttpBlock, session: _Session) -> None:
    """One attempt per documented default login, only on services that demanded authentication.

    Counted against the detection budget (`http_max_requests`); when it runs out, what the
    attempts sent so far showed is kept.
    """
    tried: set[tuple[str, str]] = set()
    answered = False
    accepted = False
    try:
        for found in list(session.matches.values()):
            signature = found.signature
            if not found.auth_required:
                continue
            for credential in signature.default_credentials:
                pair = (credential.user, credential.password)
                if credential.scheme != "basic" or pair in tried:
                    continue
                tried.add(pair)
                try:
                    fetched = await session.http.get(
                        found.path, budget=session.settings.http_max_requests, auth=pair
                    )
                except HttpFailure as failure:
                    session.notes.append(f"default login on {found.path}: {failure.message}")
                    continue
                answered = True
                served = match_response(signature, fetched.observed)
                if served is not None and not served.auth_required:
                    accepted = True
                    block.default_credentials_account = credential.user
                    for service in block.services:
                        if service.signature == signature.id and service.version is None:
                            service.version = served.version
                    if block.version is None and signature.product == block.product:
                        block.version = served.version
    except BudgetSpent:
        session.notes.append(f"request budget ({session.settings.http_max_requests}) spent")
    finally:
        if answered:
            block.default_credentials_accepted = accepted


async def _census(block: HttpBlock, session: _Session) -> None:
    statistics = next(
        (m for m in session.matches.values() if m.signature.counts and not m.auth_required), None
    )
    if statistics is not None:
        counts = counts_from_orthanc_statistics(statistics.json_body)
        if counts is not None:
            block.counts = counts
            block.counts_source = "orthanc-statistics"
            return
    if block.dicomweb_root is None or not block.studies_listable:
        return
    census = QidoCensus(session.http, block.dicomweb_root, session.settings)
    reason: str | None
    try:
        async with asyncio.timeout(session.settings.census_time):
            reason = await census.run()
    except TimeoutError:
        reason = "census time spent"
    census.fill(block, reason)


async def _run(block: HttpBlock, session: _Session) -> None:
    settings = session.settings
    try:
        async with asyncio.timeout(settings.deadline):
            try:
                fetched = await session.http.get("/", budget=settings.http_max_requests)
            except HttpFailure as failure:
                block.status, block.error = failure.status, f"GET /: {failure.message}"
                return
            root = fetched.observed
            session.answers["/"] = root
            block.detected = True
            block.status_code = root.status
            server = root.headers.get("server")
            block.server_header = server[:200] if server else None
            if fetched.redirect_error and fetched.redirect_error.startswith("more than"):
                block.status = Status.PROTOCOL_ERROR
                block.error = f"GET /: {fetched.redirect_error} (a redirect loop)"
                return
            try:
                await session.detect()
            finally:
                _summarise(block, session, root)
            if settings.try_default_credentials:
                await _try_default_credentials(block, session)
    except TimeoutError:
        session.notes.append(f"endpoint deadline ({settings.deadline:g} s) reached")
        if not block.detected:
            block.status = Status.IO_TIMEOUT
        return
    except BudgetSpent:
        session.notes.append(f"request budget ({settings.http_max_requests}) spent")
    if settings.census:
        await _census(block, session)


async def probe_http(
    ip: str,
    port: int,
    *,
    tls: bool,
    settings: ScanSettings,
    hostname: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> HttpBlock:
    """Probe one HTTP(S) endpoint for PACS web services. Never raises: errors are data in the block.

    `tls` means HTTPS with certificate verification off (recorded as `tls_verified: false`);
    `hostname` is sent as Host and SNI; `transport` replaces the network (tests use
    `httpx.MockTransport`). The whole call ends within `deadline` (+ `census_time` with `census`).
    """
    block = HttpBlock(scheme="https" if tls else "http", tls_verified=False if tls else None)
    http: BoundedHttp | None = None
    session: _Session | None = None
    total = settings.endpoint_budget
    try:
        async with asyncio.timeout(total):
            http = BoundedHttp(ip, port, tls=tls, settings=settings, hostname=hostname, transport=transport)
            session = _Session(http, settings, http_signatures())
            await _run(block, session)
    except TimeoutError:
        if not block.detected:
            block.status = Status.IO_TIMEOUT
        if session is not None:
            session.notes.append("endpoint time budget spent")
    except Exception as exc:  # a bug must not end the scan; report it for this endpoint only
        failure = failure_of(exc)
        block.status = Status.UNKNOWN_ERROR if block.detected else failure.status
        if session is not None:
            session.notes.append(f"probe error ({type(exc).__name__})")
        else:
            block.error = failure.message
    finally:
        if http is not None:
            block.requests = http.requests
            block.bytes_read = http.bytes_read
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_CLOSE_TIME):
                    await http.aclose()
    if session is not None and session.notes:
        notes = "; ".join(session.notes[:8])
        block.error = f"{block.error}; {notes}" if block.error else notes
    return block
