"""Name the software behind an A-ASSOCIATE-AC from its implementation identity.

The Implementation Class UID and Implementation Version Name (PS3.7 D.3.3.2 and D.3.3.3) are
the only self-description an association answer carries. The knowledge of which pair belongs to
which product lives in ``pacsaudit/data/signatures.toml``; this module only matches it, as a pure
function, so that a signature is added by editing data, never code.

Both values come from an untrusted peer: they are cleaned (padding stripped, length capped)
before matching, and an extracted version is kept only if it looks like a version.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

__all__ = ["Identification", "identify"]

Confidence = Literal["high", "low"]

_SIGNATURES_FILE = "signatures.toml"
_PADDING = " \x00\t\r\n"
# Both fields are at most 64 (UI) or 16 (SH) characters on the wire; anything longer is garbage,
# and capping it bounds the regex work a hostile peer can cause.
_MAX_INPUT = 128
_UID_TAIL = re.compile(r"\d{1,8}(?:\.\d{1,8}){0,7}", re.ASCII)
_PLAUSIBLE_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.\-]{0,31}", re.ASCII)
_ID = re.compile(r"[a-z0-9][a-z0-9-]*", re.ASCII)
_KEYS = frozenset(
    {
        "id",
        "uid",
        "uid_prefix",
        "name_regex",
        "product",
        "vendor",
        "version",
        "version_from",
        "version_format",
        "confidence",
        "source",
        "examples",
    }
)


@dataclass(frozen=True, slots=True)
class Identification:
    """What the implementation identity says the peer is."""

    product: str
    vendor: str | None
    version: str | None
    confidence: str
    """``"high"``: the pair names one product. ``"low"``: several products share it (a
    toolkit's default identity, a vendor's UID root), so only the toolkit or vendor is sure."""


@dataclass(frozen=True, slots=True)
class _Signature:
    id: str
    product: str
    vendor: str | None
    confidence: Confidence
    source: str
    uid: str | None = None
    uid_prefix: str | None = None
    name_regex: re.Pattern[str] | None = None
    version: str | None = None
    version_from: Literal["uid_tail", "name"] | None = None
    version_format: Literal["digits", "underscores"] | None = None

    def match(self, uid: str, name: str) -> Identification | None:
        if self.uid is not None and uid != self.uid:
            return None
        if self.uid_prefix is not None and not uid.startswith(self.uid_prefix):
            return None
        found: re.Match[str] | None = None
        if self.name_regex is not None:
            found = self.name_regex.search(name) if name else None
            if found is None:
                return None
        return Identification(
            product=self.product,
            vendor=self.vendor,
            version=self._version(uid, found),
            confidence=self.confidence,
        )

    def _version(self, uid: str, found: re.Match[str] | None) -> str | None:
        if self.version is not None:
            return self.version
        raw: str | None = None
        if self.version_from == "uid_tail" and self.uid_prefix is not None:
            tail = uid[len(self.uid_prefix) :]
            raw = tail if _UID_TAIL.fullmatch(tail) else None
        elif self.version_from == "name" and found is not None:
            raw = found.group("version")
        if not raw:
            return None
        if self.version_format == "digits":
            raw = ".".join(raw)
        elif self.version_format == "underscores":
            raw = raw.replace("_", ".")
        return raw if _PLAUSIBLE_VERSION.fullmatch(raw) else None


def identify(
    implementation_class_uid: str | None, implementation_version_name: str | None
) -> Identification | None:
    """Identify the peer from its A-ASSOCIATE-AC implementation identity.

    Signatures are tried in file order and the first whose every condition holds wins.
    Returns ``None`` when nothing is known about the pair (or both values are empty).
    """
    uid = _clean(implementation_class_uid)
    name = _clean(implementation_version_name)
    if not uid and not name:
        return None
    return _identify_clean(uid, name)


@functools.lru_cache(maxsize=4096)
def _identify_clean(uid: str, name: str) -> Identification | None:
    """Memoised: a sweep meets the same few identities thousands of times."""
    for signature in _signatures():
        found = signature.match(uid, name)
        if found is not None:
            return found
    return None


def _clean(value: object) -> str:
    """Strip wire padding (spaces, NULs) and cap the length; anything not a string is absent."""
    if not isinstance(value, str):
        return ""
    return value[: _MAX_INPUT * 2].strip(_PADDING)[:_MAX_INPUT]


@functools.cache
def _signatures() -> tuple[_Signature, ...]:
    text = (resources.files("pacsaudit") / "data" / _SIGNATURES_FILE).read_text("utf-8")
    return parse_signatures(tomllib.loads(text))


def parse_signatures(document: Mapping[str, Any]) -> tuple[_Signature, ...]:
    """Validate a parsed signatures document and compile it; raise ``ValueError`` if malformed."""
    entries = document.get("signature")
    if not isinstance(entries, list) or not entries:
        raise ValueError("signatures: expected a non-empty [[signature]] array")
    seen: set[str] = set()
    parsed = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"signature #{index}: not a table")
        signature = _parse_one(entry, f"signature #{index}")
        if signature.id in seen:
            raise ValueError(f"{signature.id}: duplicate id")
        seen.add(signature.id)
        parsed.append(signature)
    return tuple(parsed)


def _parse_one(entry: Mapping[str, Any], where: str) -> _Signature:
    unknown = set(entry) - _KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    ident = _text(entry, "id", where, required=True)
    assert ident is not None
    if not _ID.fullmatch(ident):
        raise ValueError(f"{where}: id {ident!r} must be lowercase [a-z0-9-]")
    where = ident
    product = _text(entry, "product", where, required=True)
    source = _text(entry, "source", where, required=True)
    assert product is not None and source is not None
    confidence = entry.get("confidence")
    if confidence not in ("high", "low"):
        raise ValueError(f"{where}: confidence must be 'high' or 'low'")
    uid = _text(entry, "uid", where)
    uid_prefix = _text(entry, "uid_prefix", where)
    pattern = _text(entry, "name_regex", where)
    if uid is None and uid_prefix is None and pattern is None:
        raise ValueError(f"{where}: needs at least one of uid, uid_prefix, name_regex")
    if uid is not None and uid_prefix is not None:
        raise ValueError(f"{where}: uid and uid_prefix are exclusive")
    try:
        name_regex = re.compile(pattern, re.IGNORECASE | re.ASCII) if pattern is not None else None
    except re.error as error:
        raise ValueError(f"{where}: name_regex does not compile: {error}") from error
    version = _text(entry, "version", where)
    version_from = entry.get("version_from")
    version_format = entry.get("version_format")
    if version is not None and version_from is not None:
        raise ValueError(f"{where}: version and version_from are exclusive")
    if version_from not in (None, "uid_tail", "name"):
        raise ValueError(f"{where}: version_from must be 'uid_tail' or 'name'")
    if version_from == "uid_tail" and uid_prefix is None:
        raise ValueError(f"{where}: version_from = 'uid_tail' needs uid_prefix")
    if version_from == "name" and (name_regex is None or "version" not in name_regex.groupindex):
        raise ValueError(f"{where}: version_from = 'name' needs a (?P<version>...) group")
    if version_format not in (None, "digits", "underscores"):
        raise ValueError(f"{where}: version_format must be 'digits' or 'underscores'")
    if version_format is not None and version_from != "name":
        raise ValueError(f"{where}: version_format applies to version_from = 'name' only")
    return _Signature(
        id=ident,
        product=product,
        vendor=_text(entry, "vendor", where),
        confidence=confidence,
        source=source,
        uid=uid,
        uid_prefix=uid_prefix,
        name_regex=name_regex,
        version=version,
        version_from=version_from,
        version_format=version_format,
    )


def _text(entry: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = entry.get(key)
    if value is None:
        if required:
            raise ValueError(f"{where}: missing {key}")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: {key} must be a non-empty string")
    return value
