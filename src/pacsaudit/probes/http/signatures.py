"""HTTP signatures as data (``pacsaudit/data/http_signatures.toml``) and the pure function matching them.

Nothing here touches a socket: `match_response` turns one observed answer (status, headers,
the first bytes of the body) into a `SignatureMatch` or ``None``, so every rule is testable
with plain values.
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "Credential",
    "HttpSignature",
    "Observed",
    "SignatureMatch",
    "demands_auth",
    "http_signatures",
    "is_login_page",
    "is_login_redirect",
    "match_response",
    "parse_http_signatures",
]

_SIGNATURES_FILE = "http_signatures.toml"
_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
_DICOM_TAG = re.compile(r"[0-9A-Fa-f]{8}")
_LOGIN_SEGMENTS = frozenset(
    {"login", "logon", "signin", "sign-in", "auth", "sso", "oauth", "oauth2", "openid-connect", "saml",
     "saml2", "cas", "keycloak", "j_security_check"}
)  # fmt: skip
"""Path segments (an extension dropped: `login.jsp`) that name a login page: Keycloak's
`/auth/realms/...` and `.../openid-connect/auth`, CAS's `/cas/login`, `/login?next=`. Whole
segments only: `/authors/` is no login."""
_PASSWORD_FIELD = re.compile(rb"<input\b[^>]{0,400}?\btype\s*=\s*[\"']?password\b")
_LOGIN_PAGE_MARKERS = (b"j_security_check", b"kc-form-login", b'name="j_password"')
"""A password field, a Java EE form login, Keycloak's login form: a page that asks for credentials."""
_MAX_VERSION = 40


class Credential(BaseModel):
    """A vendor-documented default login (never a real user's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str
    password: str
    scheme: Literal["basic", "form"]
    source: str = Field(min_length=10)


class HttpSignature(BaseModel):
    """One PACS-related web service, as the data file describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    kind: str
    product: str | None = None
    vendor: str | None = None
    paths: tuple[str, ...] = Field(min_length=1)
    aets: tuple[str, ...] = ()
    statuses: tuple[int, ...] = (200,)
    json_keys: tuple[str, ...] = ()
    json_shape: Literal["object", "dicom-json-array", "string-array"] | None = None
    content_types: tuple[str, ...] = ()
    body_markers: tuple[str, ...] = ()
    header_markers: dict[str, str] = Field(default_factory=dict)
    auth_markers: dict[str, str] = Field(default_factory=dict)
    version_json: str | None = None
    version_regex: str | None = None
    lists_studies: bool = False
    counts: Literal["orthanc-statistics"] | None = None
    fallback: bool = False
    requires: tuple[str, ...] = ()
    default_credentials: tuple[Credential, ...] = ()
    source: str = Field(min_length=10)

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise ValueError(f"signature id must be lowercase [a-z0-9-]: {value!r}")
        return value

    @field_validator("paths")
    @classmethod
    def _valid_paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not p.startswith("/") for p in value):
            raise ValueError("paths must start with /")
        return value

    @field_validator("version_regex")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None and "(?P<version>" not in value:
            raise ValueError("version_regex needs a (?P<version>...) group")
        if value is not None:
            re.compile(value)
        return value

    @property
    def has_content_rule(self) -> bool:
        return bool(
            self.json_keys
            or self.json_shape
            or self.content_types
            or self.body_markers
            or self.header_markers
        )

    def expanded_paths(self) -> tuple[str, ...]:
        """`paths` with every ``{aet}`` replaced by each title in `aets`."""
        out: list[str] = []
        for path in self.paths:
            if "{aet}" in path:
                out.extend(path.replace("{aet}", aet) for aet in self.aets)
            else:
                out.append(path)
        return tuple(out)


@dataclass(frozen=True)
class Observed:
    """One answer as the probe saw it: never more body than it read, header names lowercase."""

    path: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    truncated: bool = False
    """The body went on past the byte cap (or past the time cap: `timed_out`); `body` is its beginning."""
    timed_out: bool = False
    """The body was still arriving when the request's time ran out."""


@dataclass(frozen=True)
class SignatureMatch:
    signature: HttpSignature
    path: str
    status: int
    auth_required: bool
    version: str | None = None
    json_body: Any = None
    """The parsed JSON body of a served answer (only for `counts` signatures; read, never stored)."""


def is_login_redirect(status: int, location: str | None) -> bool:
    """A redirect whose target is a login page (a path segment naming one): authentication, the web way."""
    if not 300 <= status < 400 or not location:
        return False
    try:
        path = urlsplit(location.strip()).path
    except ValueError:
        return False
    return any(segment.lower().split(".", 1)[0] in _LOGIN_SEGMENTS for segment in path.split("/"))


def is_login_page(observed: Observed) -> bool:
    """A served page asking for credentials (a password field, a form login): the page itself is a wall."""
    if observed.status != 200:
        return False
    body = observed.body.lower()
    return bool(_PASSWORD_FIELD.search(body)) or any(marker in body for marker in _LOGIN_PAGE_MARKERS)


def _refused(observed: Observed) -> bool:
    """Not served: a 401, a 403 or a redirect to a login page (whether it asks for credentials is
    `demands_auth`'s question)."""
    location = observed.headers.get("location")
    return observed.status in (401, 403) or is_login_redirect(observed.status, location)


def demands_auth(observed: Observed) -> bool:
    """Evidence that credentials are wanted: a 401 with a `WWW-Authenticate` challenge, a redirect to a
    login page, or a login page. A bare 403 is not (firewalls and WAFs send it for anything)."""
    if observed.status == 401 and observed.headers.get("www-authenticate", "").strip():
        return True
    return is_login_redirect(observed.status, observed.headers.get("location")) or is_login_page(observed)


def _markers_hold(markers: Mapping[str, str], headers: Mapping[str, str]) -> bool:
    return all(needle.lower() in headers.get(name.lower(), "").lower() for name, needle in markers.items())


def _json(observed: Observed) -> tuple[bool, Any]:
    if observed.truncated:
        return False, None
    try:
        return True, json.loads(observed.body)
    except (ValueError, RecursionError):
        return False, None


def _shape_holds(shape: str, parsed: Any) -> bool:
    if shape == "object":
        return isinstance(parsed, dict)
    if shape == "string-array":
        return isinstance(parsed, list) and all(isinstance(v, str) for v in parsed)
    return isinstance(parsed, list) and all(
        isinstance(item, dict) and all(_DICOM_TAG.fullmatch(k) for k in item) for item in parsed
    )


def _empty_qido(signature: HttpSignature, observed: Observed) -> bool:
    """QIDO-RS may answer an empty match with 204 No Content (PS3.18 8.3.3.1; dcm4chee does)."""
    return signature.json_shape == "dicom-json-array" and observed.status == 204 and not observed.body.strip()


def _is_dicom_json_dataset(item: Any) -> bool:
    """One DICOM JSON dataset (PS3.18 F.2): tags of 8 hex digits, each an object with a `vr`."""
    return (
        isinstance(item, dict)
        and bool(item)
        and all(_DICOM_TAG.fullmatch(k) and isinstance(v, dict) and "vr" in v for k, v in item.items())
    )


def _dicom_json_cut_short(signature: HttpSignature, observed: Observed) -> bool:
    """A DICOM JSON answer past the byte cap: the whole cannot be parsed, its first dataset can.

    The type label alone proves nothing (any bytes can be labelled `application/dicom+json`):
    the first element of the array must decode and look like a DICOM JSON dataset.
    """
    if not (
        signature.json_shape == "dicom-json-array"
        and observed.truncated
        and "application/dicom+json" in observed.headers.get("content-type", "").lower()
    ):
        return False
    text = observed.body.decode("utf-8", "replace").lstrip()
    if not text.startswith("["):
        return False
    try:
        first, _ = json.JSONDecoder().raw_decode(text[1:].lstrip())
    except (ValueError, RecursionError):
        return False
    return _is_dicom_json_dataset(first)


def _version(signature: HttpSignature, parsed: Any, text: str) -> str | None:
    found: object = None
    if signature.version_json and isinstance(parsed, dict):
        found = parsed.get(signature.version_json)
    if found is None and signature.version_regex:
        hit = re.search(signature.version_regex, text, re.IGNORECASE)
        found = hit.group("version") if hit else None
    if isinstance(found, str) and found.strip():
        return found.strip()[:_MAX_VERSION]
    return None


def match_response(
    signature: HttpSignature, observed: Observed, *, baseline: Observed | None = None
) -> SignatureMatch | None:
    """Does `observed` (the answer to one of `signature`'s paths) show this service?

    A served answer must satisfy every content rule of the signature; when it is a login page
    (a password field), the match says that authentication is required. A refusal (401, 403, a
    redirect to a login page) counts when it carries the signature's `auth_markers`; without
    markers, only when it asks for credentials (`demands_auth`: a 401 with a challenge or a login
    redirect, never a bare 403) and `baseline` (the answer to a random path on the same server)
    is neither refused nor a login page, since a server that wants credentials for everything
    says nothing about this path. Likewise a served answer on a path other than ``/`` counts
    only if `baseline` is not served the same way (a catch-all server).
    """
    if _refused(observed):
        if signature.auth_markers:
            held = _markers_hold(signature.auth_markers, observed.headers)
        else:
            held = (
                demands_auth(observed)
                and baseline is not None
                and not _refused(baseline)
                and not is_login_page(baseline)
            )
        if not held:
            return None
        return SignatureMatch(signature, observed.path, observed.status, auth_required=True)
    found = _served(signature, observed)
    if found is not None and is_login_page(observed):
        found = replace(found, auth_required=True)
    if found is None or baseline is None or observed.path == "/":
        return found
    if _served(signature, replace(baseline, path=observed.path)) is not None:
        return None
    return found


def _served(signature: HttpSignature, observed: Observed) -> SignatureMatch | None:
    if observed.status not in signature.statuses or not signature.has_content_rule:
        return None
    text = observed.body.decode("latin-1").lower()
    parsed: Any = None
    if signature.json_shape or signature.json_keys or signature.version_json:
        ok, parsed = _json(observed)
        if ok:
            if signature.json_shape and not _shape_holds(signature.json_shape, parsed):
                return None
            if signature.json_keys and not (
                isinstance(parsed, dict) and all(k in parsed for k in signature.json_keys)
            ):
                return None
        elif signature.json_keys or not (
            _empty_qido(signature, observed) or _dicom_json_cut_short(signature, observed)
        ):
            return None
    content_type = observed.headers.get("content-type", "").lower()
    if signature.content_types and not any(c.lower() in content_type for c in signature.content_types):
        return None
    if signature.body_markers and not any(m.lower() in text for m in signature.body_markers):
        return None
    if signature.header_markers and not _markers_hold(signature.header_markers, observed.headers):
        return None
    return SignatureMatch(
        signature,
        observed.path,
        observed.status,
        auth_required=False,
        version=_version(signature, parsed, observed.body.decode("latin-1")),
        json_body=parsed if signature.counts else None,
    )


def parse_http_signatures(document: Mapping[str, Any]) -> tuple[HttpSignature, ...]:
    """Validate a parsed signatures document; raise ``ValueError`` if malformed."""
    entries = document.get("signature")
    if not isinstance(entries, list) or not entries:
        raise ValueError("http signatures: expected a non-empty [[signature]] array")
    parsed = tuple(HttpSignature.model_validate(entry) for entry in entries)
    ids = [s.id for s in parsed]
    if len(set(ids)) != len(ids):
        raise ValueError("http signatures: duplicate id")
    for signature in parsed:
        unknown = set(signature.requires) - set(ids)
        if unknown:
            raise ValueError(f"http signature {signature.id}: requires unknown {sorted(unknown)}")
    return parsed


@functools.cache
def http_signatures() -> tuple[HttpSignature, ...]:
    """The signatures shipped in ``pacsaudit/data/http_signatures.toml``."""
    text = (resources.files("pacsaudit") / "data" / _SIGNATURES_FILE).read_text("utf-8")
    return parse_http_signatures(tomllib.loads(text))
