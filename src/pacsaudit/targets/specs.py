"""Parse one target spec into an address interval or a hostname, without expanding it.

A spec is kept as a closed interval of integers (`first`..`last`) so that a /8 or an IPv6
/64 costs three integers, however many addresses it holds. The forms accepted:

- `10.0.0.1`, `2001:db8::1`; CIDRs `10.0.0.0/8`, `2001:db8::/64` (host bits are ignored,
  as nmap does);
- ranges `192.168.5.10-40` (last octet) and `10.0.0.1-10.0.1.5`, `2001:db8::1-2001:db8::ff`;
- hostnames (RFC 1123 labels; `_` tolerated for internal names);
- any of those with a port, `host:4242`, `10.0.0.0/24:104` or `[2001:db8::1]:104`, which
  then replaces the `-p` list for that spec.

Files (`-iL`, `--exclude-file`) hold specs separated by newlines, blanks or commas, with
`#` comments; they are read line by line, never whole.
"""

from __future__ import annotations

import functools
import re
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from pathlib import Path
from typing import NamedTuple, TextIO

from pacsaudit.targets.ports import parse_port

__all__ = [
    "HOSTNAME",
    "SKIPPED",
    "STDIN",
    "TargetSpec",
    "TargetSpecError",
    "WordBlock",
    "canonical_ipv4",
    "ipv4_value",
    "iter_file_entries",
    "iter_file_specs",
    "parse_spec",
]

HOSTNAME = 0
"""`TargetSpec.version` of a hostname spec, next to 4 and 6."""

STDIN = Path("-")
"""The file name that means standard input, as for most command-line tools."""

_inet_aton = socket.inet_aton
_inet_ntoa = socket.inet_ntoa
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_SEPARATORS = re.compile(r"[\s,]+")


class TargetSpecError(ValueError):
    """A target or exclusion the user typed cannot be understood; the message says which."""


class TargetSpec(NamedTuple):
    """One parsed spec: addresses `first`..`last` of one IP version, or one hostname.

    A named tuple: a target list of millions of single addresses makes one per line.
    """

    text: str
    version: int
    """4 or 6, or `HOSTNAME`."""
    first: int
    last: int
    hostname: str | None = None
    port: int | None = None
    """The port typed with the spec, which replaces the port list; None to use the list."""

    @property
    def address_count(self) -> int:
        return self.last - self.first + 1


def parse_spec(text: str) -> TargetSpec:
    """Parse one spec; raise `TargetSpecError` naming the spec and what is wrong with it."""
    spec = text.strip()
    if not spec:
        raise TargetSpecError("empty target spec")
    host, port = _split_port(spec)
    if host.startswith("["):
        parsed = _parse_host(host[1:-1], spec)
        if parsed.version != 6:
            raise TargetSpecError(f"{spec!r}: brackets are for IPv6 addresses only")
    else:
        parsed = _parse_host(host, spec)
    return TargetSpec(spec, parsed.version, parsed.first, parsed.last, parsed.hostname, port)


class WordBlock(NamedTuple):
    """A block of a target file's lines with no comment and no comma: its words, not yet parsed.

    Nearly every word of a masscan or ZMap list is a plain dotted quad, which the stream takes
    with `canonical_ipv4` alone; `parse` is the general parser for the others.
    """

    words: list[str]
    lines: list[str]
    first_line: int
    """The number of the block's first line in its file (from 1)."""
    path: Path
    plain: bool
    """Every word is a canonical dotted quad (checked by one regular expression over the block):
    `ipv4_value` reads them, and nothing needs parsing."""

    def spec(self, word: str) -> TargetSpec:
        """One of the block's words as a spec: a canonical dotted quad directly, else `parse`."""
        value = ipv4_value(word) if self.plain else canonical_ipv4(word)
        return TargetSpec(word, 4, value, value) if value is not None else self.parse(word)

    def parse(self, word: str) -> TargetSpec:
        """`parse_spec`, with an error naming the file and the first line holding the word."""
        try:
            return parse_spec(word)
        except TargetSpecError:
            offset = next((i for i, line in enumerate(self.lines) if word in line.split()), 0)
            return _parse_line_word(word, self.path, self.first_line + offset)


_BLOCK = 1 << 16
"""Characters of a regular file's lines read at a time."""
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"


@functools.cache
def _plain_ipv4_block() -> re.Pattern[str]:
    """Dotted quads as `inet_ntoa` writes them, separated by ASCII blanks (which `str.split`
    splits on). Compiled on first use: a scan without a target file never needs it."""
    return re.compile(rf"[ \t\r\n]*(?:{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?:[ \t\r\n]+|\Z))*")


def iter_file_entries(
    path: Path, skip: Callable[[str], bool] | None = None
) -> Iterator[TargetSpec | WordBlock]:
    """A target file's specs, streamed, with blocks of plain lines left for the caller to parse.

    A regular file is read a block of lines at a time; a block without comments or commas is
    split in one call and handed over as a `WordBlock`. A sweep's list is read once to check and
    count it, then once by every worker, and parsing it word by word through `parse_spec` was
    a tenth of a sweep's start-up. Standard input stays line by line, so targets piped from a
    slow producer are scanned as they come.

    Outside word blocks, a word for which `skip` says True is not parsed: `SKIPPED` comes in
    its place (a caller counting positions needs to know it was there). A word block's words
    are the caller's to skip.
    """
    with _open(path) as stream:
        if path == STDIN:
            for number, line in enumerate(stream, start=1):
                yield from _line_specs(line, path, number, skip)
            return
        seen = 0
        while lines := stream.readlines(_BLOCK):
            block = "".join(lines)
            if "#" in block or "," in block:
                for number, line in enumerate(lines, start=seen + 1):
                    yield from _line_specs(line, path, number, skip)
            else:
                plain = _plain_ipv4_block().fullmatch(block) is not None
                yield WordBlock(block.split(), lines, seen + 1, path, plain)
            seen += len(lines)


def iter_file_specs(path: Path) -> Iterator[TargetSpec]:
    """Specs from a file (or stdin for `-`), streamed; errors name the file and line."""
    for entry in iter_file_entries(path):
        if isinstance(entry, WordBlock):
            yield from map(entry.spec, entry.words)
        else:
            yield entry


def ipv4_value(word: str) -> int:
    """The integer of a dotted quad already known to be canonical (a word of a plain block)."""
    return int.from_bytes(_inet_aton(word), "big")


SKIPPED = TargetSpec("", 4, 0, 0)
"""Stands for a word `iter_file_entries` was told to skip: one address, not parsed."""


def _line_specs(
    line: str, path: Path, number: int, skip: Callable[[str], bool] | None
) -> Iterator[TargetSpec]:
    text = line.partition("#")[0]
    for word in _SEPARATORS.split(text) if "," in text else text.split():
        if word:
            yield SKIPPED if skip is not None and skip(word) else _parse_line_word(word, path, number)


def _parse_line_word(word: str, path: Path, number: int) -> TargetSpec:
    try:
        return parse_spec(word)
    except TargetSpecError as exc:
        raise TargetSpecError(f"{path}, line {number}: {exc}") from None


def _open(path: Path) -> AbstractContextManager[TextIO]:
    if path == STDIN:
        return nullcontext(sys.stdin)  # stdin belongs to the process, not to us: leave it open
    try:
        # utf-8-sig: lists saved by Windows editors start with a BOM. errors="replace": a stray
        # byte then fails as a bad spec with its own line number, not as a decode error chunks later.
        return path.open(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise TargetSpecError(f"cannot read target file {str(path)!r}: {exc.strerror}") from None


def _split_port(spec: str) -> tuple[str, int | None]:
    if spec.startswith("["):
        inner, bracket, rest = spec[1:].partition("]")
        if not bracket:
            raise TargetSpecError(f"{spec!r}: '[' without ']'")
        if not rest:
            return f"[{inner}]", None
        if not rest.startswith(":"):
            raise TargetSpecError(f"{spec!r}: only ':port' may follow ']'")
        return f"[{inner}]", _port(rest[1:], spec)
    if spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
        return host, _port(port_text, spec)
    return spec, None


def _port(text: str, spec: str) -> int:
    try:
        return parse_port(text)
    except ValueError as exc:
        raise TargetSpecError(f"{spec!r}: {exc}") from None


def _parse_host(host: str, spec: str) -> TargetSpec:
    if "%" in host:
        raise TargetSpecError(f"{spec!r}: IPv6 zone indices (%...) are not supported")
    if "/" in host:
        try:
            network = ip_network(host, strict=False)
        except ValueError as exc:
            raise TargetSpecError(f"{spec!r}: not a valid CIDR: {exc}") from None
        first = int(network.network_address)
        return TargetSpec(spec, network.version, first, first + network.num_addresses - 1)
    value = canonical_ipv4(host)
    if value is not None:  # the common line of a masscan/ZMap list, at a tenth of ip_address's cost
        return TargetSpec(spec, 4, value, value)
    address = _address(host)
    if address is not None:
        return TargetSpec(spec, address.version, int(address), int(address))
    start_text, dash, end_text = host.partition("-")
    start = _address(start_text) if dash else None
    if start is not None:
        return _parse_range(start, end_text, spec)
    return _parse_hostname(host, spec)


def _parse_range(start: IPv4Address | IPv6Address, end_text: str, spec: str) -> TargetSpec:
    first = int(start)
    if start.version == 4 and end_text.isascii() and end_text.isdigit():
        last_octet = int(end_text)
        if not (first & 0xFF) <= last_octet <= 255:
            raise TargetSpecError(f"{spec!r}: last octet range must run from {first & 0xFF} up to 255")
        last = first - (first & 0xFF) + last_octet
    else:
        end = _address(end_text)
        if end is None or end.version != start.version:
            raise TargetSpecError(f"{spec!r}: range end must be an IPv{start.version} address")
        last = int(end)
        if last < first:
            raise TargetSpecError(f"{spec!r}: range runs backwards")
    return TargetSpec(spec, start.version, first, last)


def _parse_hostname(host: str, spec: str) -> TargetSpec:
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    valid = (
        name.isascii()
        and len(name) <= 253
        and all(_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
    )
    if not valid:
        raise TargetSpecError(f"{spec!r}: not an IP address, CIDR, range or hostname")
    return TargetSpec(spec, HOSTNAME, 0, 0, hostname=host)


def canonical_ipv4(text: str) -> int | None:
    """A dotted quad written the one canonical way (as `inet_ntoa` prints it), else None.

    Anything else (leading zeros, IPv6, ranges, names) goes through `ip_address`, so what is
    accepted does not change; this only skips its cost on the overwhelmingly common case.
    (`inet_aton` alone takes `10.1` and `010.0.0.1`: the round trip rules them out.)
    """
    try:
        packed = _inet_aton(text)
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return None
    if _inet_ntoa(packed) != text:
        return None
    return int.from_bytes(packed, "big")


def _address(text: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(text)
    except ValueError:
        return None
