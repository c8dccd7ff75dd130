"""Test helper: scan endpoints in-process, the way `pacsaudit scan` does, and get the records back."""

from __future__ import annotations

import os
from typing import Any, NoReturn

import pytest

from pacsaudit.config import ScanSettings
from pacsaudit.engine import run, run_scan
from pacsaudit.model import EndpointResult
from pacsaudit.targets import TargetStream


def scan_endpoints(targets: list[str], ports: list[int], **settings: Any) -> list[EndpointResult]:
    """Scan `targets` x `ports` with `settings` on top of fast-test defaults; results sorted by ip, port."""
    options: dict[str, Any] = {"rate": 0, "timeout": 3.0, "deadline": 15.0, "ae_pause": 0.0, "emit_all": True}
    options.update(settings)
    config = ScanSettings(ports=ports, **options)
    results: list[EndpointResult] = []
    run(run_scan(TargetStream(targets, ports), config, results.append))
    return sorted(results, key=lambda r: (r.ip, r.port))


def scan_one(host: str, port: int, **settings: Any) -> EndpointResult:
    (result,) = scan_endpoints([host], [port], **settings)
    return result


def missing_software(message: str) -> NoReturn:
    """Skip when real PACS software is absent, except under `./run test` (which installs it): fail there."""
    if os.environ.get("REQUIRE_PACS_SERVERS"):
        pytest.fail(f"{message}, and REQUIRE_PACS_SERVERS is set")
    pytest.skip(message)
