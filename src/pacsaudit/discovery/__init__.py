"""Finding open ports: asyncio TCP connects under a global rate and a per-host cap."""

from pacsaudit.discovery.connect import (
    CONNECT_TIMED_OUT,
    ConnectFailedError,
    Connector,
    TlsHandshakeError,
    connect_failure,
    status_of_os_error,
)
from pacsaudit.discovery.limits import HostLimiter, RateLimiter

__all__ = [
    "CONNECT_TIMED_OUT",
    "ConnectFailedError",
    "Connector",
    "HostLimiter",
    "RateLimiter",
    "TlsHandshakeError",
    "connect_failure",
    "status_of_os_error",
]
