"""The endpoints of a scan, (address, port) by (address, port), generated as they are needed.

Nothing is materialised: each spec is an interval of integers and the stream counts through
it, so `0.0.0.0/0` or an IPv6 /64 costs the same memory as one address.
"""

from __future__ import annotations

import functools
import socket
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from ipaddress import IPv6Address
from pathlib import Path
from typing import NamedTuple

from pacsaudit.targets.exclusions import ExclusionList
from pacsaudit.targets.specs import (
    HOSTNAME,
    SKIPPED,
    STDIN,
    TargetSpec,
    TargetSpecError,
    WordBlock,
    ipv4_value,
    iter_file_entries,
    parse_spec,
)

__all__ = ["Endpoint", "TargetStream", "shard_of"]


class Endpoint(NamedTuple):
    """One (address, port) to probe (a named tuple: the stream makes one per endpoint)."""

    position: int
    """0-based index in the stream order, stable across runs of the same inputs (for resume)."""
    ip: str | None
    """None when only a hostname is known: the engine resolves it, then checks the exclusions."""
    port: int
    hostname: str | None
    """As typed, when the spec was a hostname."""


class TargetStream:
    """Endpoints of command-line specs, then of each file's lines, each address with every port.

    Order is address-major: specs as given, then for each address all ports in order (or only
    the port typed with the spec, as in `host:4242`). `position` counts every (address, port)
    pair *before* exclusions, so editing the exclusion list never shifts positions and a resume
    point stays valid; excluded endpoints are simply not yielded. Network and broadcast
    addresses of a CIDR are kept, as nmap does: what is typed is what is scanned. Duplicates
    across specs are not removed, since that would need memory per address.

    Command-line specs are validated here, before anything is scanned; file lines are parsed
    while streaming and a bad one raises `TargetSpecError` naming file and line. Standard
    input (`-` in `files`) can be read only once: iterate such a stream a single time.
    """

    def __init__(
        self,
        specs: Sequence[str],
        ports: Sequence[int],
        *,
        files: Sequence[Path] = (),
        exclusions: ExclusionList | None = None,
    ) -> None:
        self._ports = _checked_ports(ports)
        self._specs = tuple(parse_spec(spec) for spec in specs)
        self._files = tuple(Path(file) for file in files)
        self._exclusions = exclusions if exclusions is not None else ExclusionList()
        for file in self._files:
            if file != STDIN and not file.is_file():
                raise TargetSpecError(f"target file not found: {str(file)!r}")
        if self._files.count(STDIN) > 1:
            raise TargetSpecError("standard input ('-') can be given only once as a target file")

    def __iter__(self) -> Iterator[Endpoint]:
        return self.iter_from(0)

    @property
    def reusable(self) -> bool:
        """Whether the stream can be iterated more than once (not if it reads standard input)."""
        return STDIN not in self._files

    def iter_from(self, start: int) -> Iterator[Endpoint]:
        """Endpoints from position `start` on. Ranges are entered by arithmetic, not by walking,
        so resuming deep inside a /8 is immediate; earlier file lines are still read (not expanded).
        """
        if start < 0:
            raise ValueError(f"start position must be >= 0, not {start}")
        return self._iter_from(start)

    def estimated_total(self) -> int | None:
        """How many endpoints the stream will yield, exclusions applied; for a progress bar.

        Exact, except that hostnames count as one address (their resolution is the engine's job)
        and file contents may change before the scan. Files are read once to count; None when
        a file is standard input, which cannot be read twice.
        """
        if STDIN in self._files:
            return None
        total = 0
        width = len(self._ports)
        unexcluded = not self._exclusions.has_ipv4
        for entry in self._entries():
            if not isinstance(entry, WordBlock):
                total += self._allowed_count(entry)
            elif entry.plain and unexcluded:
                total += len(entry.words) * width  # checked by the block's regular expression
            else:
                total += sum(self._allowed_count(entry.spec(word)) for word in entry.words)
        return total

    def shard(self, index: int, count: int) -> Iterator[Endpoint]:
        """The endpoints that worker `index` of `count` owns (`shard_of`), positions unchanged.

        File words that are plain dotted quads of another shard are skipped without being
        parsed: each worker reads the whole list, and parsing it all was a measurable share
        of a sweep's CPU. Such a word is its own address text, so the owner is the same.
        """
        return self._iter_from(0, (index, count))

    def _iter_from(self, start: int, shard: tuple[int, int] | None = None) -> Iterator[Endpoint]:
        position = 0
        foreign = None if shard is None else functools.partial(_foreign, shard=shard)
        for entry in self._entries(foreign):
            if entry is SKIPPED:
                position += len(self._ports)  # another shard's address: its owner checks it
            elif not isinstance(entry, WordBlock):
                position = yield from self._spec_endpoints(entry, position, start, shard)
            elif entry.plain:
                position = yield from self._plain_endpoints(entry.words, position, start, shard)
            else:
                for word in entry.words:
                    if shard is not None and _foreign(word, shard):
                        position += len(self._ports)  # its owner checks it (and the parent's count did)
                        continue
                    position = yield from self._spec_endpoints(entry.spec(word), position, start, shard)

    def _plain_endpoints(
        self, words: list[str], position: int, start: int, shard: tuple[int, int] | None
    ) -> Generator[Endpoint, None, int]:
        """The endpoints of a plain block's addresses (nearly all of a sweep's list): each word is
        its own address text; another shard's words cost a checksum, and a block wholly before
        `start` costs nothing."""
        ports = self._ports
        width = len(ports)
        end = position + len(words) * width
        if end <= start:
            return end
        excluded = self._exclusions.excludes_ipv4 if self._exclusions.has_ipv4 else None
        index, count = shard if shard is not None else (0, 1)
        for word in words:
            if position < start:
                if start < position + width:  # resuming among this address's ports
                    value = ipv4_value(word)
                    yield from self._spec_endpoints(TargetSpec(word, 4, value, value), position, start, shard)
            elif (count == 1 or _key_shard(word, count) == index) and (
                excluded is None or not excluded(ipv4_value(word))
            ):
                for offset in range(width):
                    yield Endpoint(position + offset, word, ports[offset], None)
            position += width
        return end

    def _spec_endpoints(
        self, spec: TargetSpec, position: int, start: int, shard: tuple[int, int] | None
    ) -> Generator[Endpoint, None, int]:
        """The endpoints of `spec`, whose first position is `position`, from `start` on and in
        `shard`; returns the position after the spec."""
        ports = self._ports_of(spec)
        size = spec.address_count * len(ports)
        if position + size > start:
            endpoints = self._expand(spec, ports, position, max(start - position, 0))
            if shard is None:
                yield from endpoints
            else:
                index, count = shard
                yield from (ep for ep in endpoints if shard_of(ep, count) == index)
        return position + size

    def _entries(self, skip: Callable[[str], bool] | None = None) -> Iterator[TargetSpec | WordBlock]:
        yield from self._specs
        for file in self._files:
            yield from iter_file_entries(file, skip)

    def _ports_of(self, spec: TargetSpec) -> tuple[int, ...]:
        return self._ports if spec.port is None else (spec.port,)

    def _expand(self, spec: TargetSpec, ports: tuple[int, ...], base: int, skip: int) -> Iterator[Endpoint]:
        """The endpoints of one spec whose first position is `base`, leaving out the first `skip`."""
        address_skip, port_skip = divmod(skip, len(ports))
        if spec.version == HOSTNAME:
            assert spec.hostname is not None
            if not self._exclusions.contains_hostname(spec.hostname):
                for index in range(port_skip, len(ports)):
                    yield Endpoint(base + index, None, ports[index], spec.hostname)
            return
        to_text = _ipv4_text if spec.version == 4 else _ipv6_text
        resume_at = spec.first + address_skip
        for low, high in self._exclusions.allowed_intervals(spec.version, resume_at, spec.last):
            for address in range(low, high + 1):
                ip = to_text(address)
                position = base + (address - spec.first) * len(ports)
                for index in range(port_skip if address == resume_at else 0, len(ports)):
                    yield Endpoint(position + index, ip, ports[index], None)

    def _allowed_count(self, spec: TargetSpec) -> int:
        ports = len(self._ports_of(spec))
        if spec.version == HOSTNAME:
            assert spec.hostname is not None
            return 0 if self._exclusions.contains_hostname(spec.hostname) else ports
        intervals = self._exclusions.allowed_intervals(spec.version, spec.first, spec.last)
        return ports * sum(high - low + 1 for low, high in intervals)


def shard_of(endpoint: Endpoint, count: int) -> int:
    """Which of `count` workers owns `endpoint`: a stable hash of its address (or hostname), so
    every port of a host goes to one worker and per-host limits still hold."""
    return _key_shard(endpoint.ip or endpoint.hostname or "", count)


def _key_shard(key: str, count: int) -> int:
    return zlib.crc32(key.encode()) % count


def _foreign(word: str, shard: tuple[int, int]) -> bool:
    """A file word that is one IPv4 address (if valid at all) owned by another shard."""
    return word.isascii() and word.replace(".", "").isdigit() and _key_shard(word, shard[1]) != shard[0]


def _checked_ports(ports: Iterable[int]) -> tuple[int, ...]:
    unique = tuple(dict.fromkeys(ports))
    if not unique:
        raise ValueError("the port list is empty")
    for port in unique:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"not a TCP port (1-65535): {port!r}")
    return unique


def _ipv4_text(address: int) -> str:
    return socket.inet_ntoa(address.to_bytes(4, "big"))  # as str(IPv4Address(...)), at a fifth of the cost


def _ipv6_text(address: int) -> str:
    return str(IPv6Address(address))
