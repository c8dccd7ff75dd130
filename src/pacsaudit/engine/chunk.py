"""A chunk of endpoints as one synchronous call: the unit a distributed worker will run.

It drives its own event loop and returns plain results, so a task that runs twice yields the
same records (writes downstream key them by scan, ip and port).
"""

from __future__ import annotations

from collections.abc import Sequence

from pacsaudit.config import ScanSettings
from pacsaudit.engine.local import run_scan
from pacsaudit.engine.runner import run
from pacsaudit.model import EndpointResult
from pacsaudit.targets import Endpoint, ExclusionList

__all__ = ["scan_chunk"]


def scan_chunk(
    endpoints: Sequence[Endpoint], settings: ScanSettings, exclusions: ExclusionList | None = None
) -> list[EndpointResult]:
    results: list[EndpointResult] = []
    run(run_scan(endpoints, settings, results.append, exclusions=exclusions))
    return sorted(results, key=lambda r: (r.ip, r.port))
