"""Which probes a scan runs inside an accepted association, in order: one line per probe."""

from __future__ import annotations

import secrets

from pacsaudit.config import ScanSettings
from pacsaudit.probes.services import ServicesProbe
from pacsaudit.probes.session import EchoProbe, SessionProbe

__all__ = ["session_probes"]


def session_probes(settings: ScanSettings) -> tuple[SessionProbe, ...]:
    """The capability matrix (negotiation only, so it never fails) and C-ECHO always; the census with
    `--census`. A probe that fails ends the session, so the cheap and certain come first.

    The census's patient-hash key is made here, once per scan (per process), and never leaves memory.
    """
    probes: list[SessionProbe] = [ServicesProbe(), EchoProbe()]
    if settings.census:
        from pacsaudit.probes.census import CensusProbe  # most scans count nothing: loaded on demand

        probes.append(CensusProbe(secrets.token_bytes(32)))
    return tuple(probes)
