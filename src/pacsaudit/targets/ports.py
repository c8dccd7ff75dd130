"""Port lists as users type them after `-p`: `104,11112,4242`, `1-1024`, or a mix."""

from __future__ import annotations

__all__ = ["parse_port", "parse_ports"]

_MIN_PORT = 1
_MAX_PORT = 65535


def parse_port(text: str) -> int:
    """One TCP port, 1-65535. Only ASCII digits, so `+104` or `١٠٤` are not silently accepted."""
    item = text.strip()
    if not (item.isascii() and item.isdigit()):
        raise ValueError(f"not a port number: {text!r}")
    port = int(item)
    if not _MIN_PORT <= port <= _MAX_PORT:
        raise ValueError(f"port out of range {_MIN_PORT}-{_MAX_PORT}: {text!r}")
    return port


def parse_ports(spec: str) -> list[int]:
    """Ports in the order typed, duplicates dropped, so a scan never probes an endpoint twice."""
    ports: dict[int, None] = {}
    for item in spec.split(","):
        if not item.strip():
            raise ValueError(f"empty item in port list {spec!r}")
        low_text, dash, high_text = item.partition("-")
        try:
            low = parse_port(low_text)
            high = parse_port(high_text) if dash else low
        except ValueError as exc:
            raise ValueError(f"in port list {spec!r}: {exc}") from None
        if high < low:
            raise ValueError(f"in port list {spec!r}: range {item.strip()!r} runs backwards")
        ports.update(dict.fromkeys(range(low, high + 1)))
    return list(ports)
