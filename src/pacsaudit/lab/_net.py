"""What every lab server shares: loopback only, and bounded reads.

The lab exists to be scanned by this machine's own tools, so it refuses to listen anywhere a
packet could leave the host.
"""

from __future__ import annotations

import ipaddress

__all__ = ["IDLE_TIMEOUT", "MAX_PDU_BYTES", "require_loopback"]

MAX_PDU_BYTES = 64 * 1024
"""Largest PDU body a lab server reads; a longer announced length ends the connection."""

IDLE_TIMEOUT = 10.0
"""Seconds a lab server waits for the peer's next byte before it hangs up."""


def require_loopback(host: str) -> str:
    """Return `host` if it is a literal loopback address (127.0.0.0/8 or ::1), else raise."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"lab servers bind to a literal loopback address, not {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"lab servers bind to loopback only (127.0.0.0/8 or ::1), not {host}")
    return str(address)
