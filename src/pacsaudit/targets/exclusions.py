"""Addresses and hostnames that must never receive a packet (`--exclude`, `--exclude-file`).

Addresses are held per IP version as sorted, merged, disjoint intervals, so a lookup is one
bisect and a target range can jump over an excluded block instead of walking it. Hostnames
are matched against the name a target was typed as; they are never resolved here (this
package sends no packets), so the engine checks every address it resolves with `contains_ip`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

from pacsaudit.targets.specs import HOSTNAME, TargetSpec, TargetSpecError, iter_file_specs, parse_spec

__all__ = ["ExclusionList"]


class _Intervals:
    """Disjoint closed intervals of integers, sorted, with adjacent ones merged."""

    __slots__ = ("ends", "starts")

    def __init__(self, intervals: Iterable[tuple[int, int]]) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for first, last in sorted(intervals):
            if self.ends and first <= self.ends[-1] + 1:
                self.ends[-1] = max(self.ends[-1], last)
            else:
                self.starts.append(first)
                self.ends.append(last)

    def __len__(self) -> int:
        return len(self.starts)

    def pairs(self) -> Iterator[tuple[int, int]]:
        return zip(self.starts, self.ends, strict=True)

    def contains(self, value: int) -> bool:
        index = bisect_right(self.starts, value) - 1
        return index >= 0 and self.ends[index] >= value

    def gaps(self, first: int, last: int) -> Iterator[tuple[int, int]]:
        """The parts of `first`..`last` outside every interval, in order."""
        index = max(bisect_right(self.starts, first) - 1, 0)
        cursor = first
        while cursor <= last and index < len(self.starts):
            start, end = self.starts[index], self.ends[index]
            if start > last:
                break
            if end >= cursor:
                if start > cursor:
                    yield cursor, start - 1
                cursor = end + 1
            index += 1
        if cursor <= last:
            yield cursor, last


class ExclusionList:
    """What not to scan. Empty by default; build one with `from_specs` or `from_file`."""

    __slots__ = ("_hostnames", "_v4", "_v6")

    def __init__(self, intervals: Iterable[tuple[int, int, int]] = (), hostnames: Iterable[str] = ()) -> None:
        """`intervals` are `(ip_version, first, last)` with addresses as integers."""
        by_version: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for version, first, last in intervals:
            by_version[version].append((first, last))
        self._v4 = _Intervals(by_version[4])
        self._v6 = _Intervals(by_version[6])
        self._hostnames = frozenset(_normalise(name) for name in hostnames)

    @classmethod
    def from_specs(cls, specs: Iterable[str]) -> ExclusionList:
        """Each item may hold several specs split by commas or blanks, as `--exclude a,b` does."""
        return cls._from_parsed(parse_spec(word) for item in specs for word in item.replace(",", " ").split())

    @classmethod
    def from_file(cls, path: str | Path) -> ExclusionList:
        """Same format as a target file: one or more specs a line, `#` comments."""
        return cls._from_parsed(iter_file_specs(Path(path)))

    @classmethod
    def _from_parsed(cls, specs: Iterable[TargetSpec]) -> ExclusionList:
        intervals: list[tuple[int, int, int]] = []
        hostnames: list[str] = []
        for spec in specs:
            if spec.port is not None:
                raise TargetSpecError(f"{spec.text!r}: exclusions cover whole hosts; drop the port")
            if spec.version == HOSTNAME:
                assert spec.hostname is not None
                hostnames.append(spec.hostname)
            else:
                intervals.append((spec.version, spec.first, spec.last))
        return cls(intervals, hostnames)

    def merge(self, other: ExclusionList) -> ExclusionList:
        return ExclusionList([*self._intervals(), *other._intervals()], self._hostnames | other._hostnames)

    def contains_ip(self, ip: str | IPv4Address | IPv6Address) -> bool:
        """True if the address is excluded. An IPv4-mapped IPv6 address counts as its IPv4 one."""
        address = ip_address(ip) if isinstance(ip, str) else ip
        if isinstance(address, IPv4Address):
            return self._v4.contains(int(address))
        mapped = address.ipv4_mapped
        return self._v6.contains(int(address)) or (mapped is not None and self._v4.contains(int(mapped)))

    @property
    def has_ipv4(self) -> bool:
        """Whether any IPv4 address is excluded (the stream skips `excludes_ipv4` when not)."""
        return bool(self._v4.starts)

    def excludes_ipv4(self, value: int) -> bool:
        """`contains_ip` for an IPv4 address given as its integer (no parsing: the stream's check)."""
        return self._v4.contains(value)

    def contains_hostname(self, name: str) -> bool:
        """Case-insensitive, and `host.` is the same name as `host`."""
        return _normalise(name) in self._hostnames

    def allowed_intervals(self, version: int, first: int, last: int) -> Iterator[tuple[int, int]]:
        """The parts of addresses `first`..`last` (IPv`version`) not excluded, as closed intervals.

        A target range iterates these instead of testing each address, so an excluded /9 is
        skipped in one step.
        """
        return self._family(version).gaps(first, last)

    def __len__(self) -> int:
        """The number of rules: merged address intervals plus hostnames."""
        return len(self._v4) + len(self._v6) + len(self._hostnames)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __repr__(self) -> str:
        return (
            f"ExclusionList(v4_intervals={len(self._v4)}, v6_intervals={len(self._v6)}, "
            f"hostnames={len(self._hostnames)})"
        )

    def _family(self, version: int) -> _Intervals:
        if version == 4:
            return self._v4
        if version == 6:
            return self._v6
        raise ValueError(f"not an IP version: {version!r}")

    def _intervals(self) -> Iterator[tuple[int, int, int]]:
        for version in (4, 6):
            for first, last in self._family(version).pairs():
                yield version, first, last


def _normalise(name: str) -> str:
    return name.lower().removesuffix(".")
