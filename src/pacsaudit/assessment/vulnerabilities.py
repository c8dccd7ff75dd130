"""Known-vulnerable product versions, as data (`data/vulnerable_versions.toml`), matched purely.

A version is compared as a tuple of its leading numbers ("1.12.10" -> (1, 12, 10), "1.5.0c" ->
(1, 5, 0)); one that has no number (or none was observed) matches nothing: no guesses.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib.resources import files
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["KnownVulnerability", "load_vulnerabilities", "matching_vulnerabilities", "parse_version"]

_NUMBER = re.compile(r"\d+")
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")


def parse_version(text: str) -> tuple[int, ...] | None:
    """The leading numbers of each dot-separated part, up to the first part without one."""
    numbers: list[int] = []
    for part in text.strip().split(".")[:8]:
        match = _NUMBER.match(part)
        if match is None:
            break
        numbers.append(int(match.group()[:9]))
    return tuple(numbers) or None


def _padded(a: tuple[int, ...], length: int) -> tuple[int, ...]:
    return a + (0,) * (length - len(a))


def _compare(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = max(len(a), len(b))
    left, right = _padded(a, n), _padded(b, n)
    return (left > right) - (left < right)


class KnownVulnerability(BaseModel):
    """One advisory: which product versions it affects, its CVE ids, and where that is written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9-]+$")
    product: str
    """The product's name as the advisory gives it."""
    match: list[str]
    """Product names as pacsaudit reports them (`dicom.product`, `http.product`), case-insensitive."""
    introduced: str | None = None
    """First affected version (inclusive); none: every earlier version."""
    fixed: str | None = None
    """First fixed version (exclusive bound)."""
    last_affected: str | None = None
    """Last affected version (inclusive bound), when the advisory names no fixed one."""
    cves: list[str] = Field(min_length=1)
    severity: Literal["critical", "high", "medium", "low"]
    summary: str
    remediation: str
    source: str
    """Where the affected range and the CVE ids are published."""
    version_confidence: Literal["product", "toolkit"] = "product"
    """`toolkit`: the observed version is that of a toolkit (e.g. DCMTK inside another product): its
    findings say "may be affected" and are at most medium (`web_rules.rule_vulnerable_version`)."""

    @model_validator(mode="after")
    def _check(self) -> KnownVulnerability:
        if (self.fixed is None) == (self.last_affected is None):
            raise ValueError(f"{self.id}: give exactly one of fixed / last_affected")
        for bound in (self.introduced, self.fixed, self.last_affected):
            if bound is not None and parse_version(bound) is None:
                raise ValueError(f"{self.id}: {bound!r} is not a version")
        for cve in self.cves:
            if not _CVE.match(cve):
                raise ValueError(f"{self.id}: {cve!r} is not a CVE id")
        return self

    @property
    def affected_text(self) -> str:
        low = f">= {self.introduced}, " if self.introduced else ""
        high = f"< {self.fixed}" if self.fixed else f"<= {self.last_affected}"
        return low + high

    def affects(self, product: str, version: str) -> bool:
        if product.strip().casefold() not in {m.casefold() for m in self.match}:
            return False
        observed = parse_version(version)
        if observed is None:
            return False
        if self.introduced is not None and _compare(observed, _version(self.introduced)) < 0:
            return False
        if self.fixed is not None:
            return _compare(observed, _version(self.fixed)) < 0
        assert self.last_affected is not None
        return _compare(observed, _version(self.last_affected)) <= 0


def _version(text: str) -> tuple[int, ...]:
    parsed = parse_version(text)
    assert parsed is not None  # checked when the file was loaded
    return parsed


@cache
def load_vulnerabilities() -> tuple[KnownVulnerability, ...]:
    """The shipped advisories (read once per process)."""
    text = (files("pacsaudit") / "data" / "vulnerable_versions.toml").read_text("utf-8")
    data = tomllib.loads(text)
    return tuple(KnownVulnerability.model_validate(entry) for entry in data.get("vulnerability", []))


def matching_vulnerabilities(product: str, version: str) -> list[KnownVulnerability]:
    """The shipped advisories that cover this product version, in file order."""
    return [v for v in load_vulnerabilities() if v.affects(product, version)]
