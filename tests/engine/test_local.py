"""The local engine: bounded in flight whatever the stream size; IPv6; hostnames and exclusions."""

from __future__ import annotations

import asyncio

from pacsaudit.config import ScanSettings
from pacsaudit.engine import run_scan
from pacsaudit.lab.simulator import PacsPolicy, start_simulated_pacs
from pacsaudit.model import EndpointResult
from pacsaudit.targets import ExclusionList, TargetStream


def test_in_flight_endpoints_stay_within_concurrency() -> None:
    """4096 closed loopback endpoints, concurrency 16: never more than 16 jobs alive at once."""

    async def go() -> tuple[int, int]:
        peak = 0

        def watch(_totals: object) -> None:
            nonlocal peak
            peak = max(peak, len(asyncio.all_tasks()))

        settings = ScanSettings(ports=[9], concurrency=16, rate=0, timeout=1, emit_all=False)
        results: list[EndpointResult] = []
        totals = await run_scan(TargetStream(["127.81.0.0/20"], [9]), settings, results.append, on_done=watch)
        assert results == [], "closed ports are not emitted without --all"
        return peak, totals.endpoints

    peak, done = asyncio.run(go())
    assert done == 4096
    assert peak <= 16 + 1  # the jobs, plus the scan's own task


def test_ipv6_loopback_is_scanned() -> None:
    async def go() -> EndpointResult:
        pacs = await start_simulated_pacs(PacsPolicy(), host="::1")
        try:
            settings = ScanSettings(ports=[pacs.port], rate=0, timeout=2)
            results: list[EndpointResult] = []
            await run_scan(TargetStream(["::1"], [pacs.port]), settings, results.append)
        finally:
            await pacs.close()
        (result,) = results
        return result

    result = asyncio.run(go())
    assert result.ip == "::1"
    assert result.dicom is not None and result.dicom.open_to_any_ae is True


def test_hostname_is_resolved_then_checked_against_exclusions() -> None:
    async def go(exclusions: ExclusionList) -> tuple[list[EndpointResult], int]:
        pacs = await start_simulated_pacs(PacsPolicy())
        try:
            settings = ScanSettings(ports=[pacs.port], rate=0, timeout=2)
            results: list[EndpointResult] = []
            totals = await run_scan(
                TargetStream(["localhost"], [pacs.port]), settings, results.append, exclusions=exclusions
            )
            seen = pacs.associations
        finally:
            await pacs.close()
        return results, seen + 1000 * totals.excluded

    results, seen = asyncio.run(go(ExclusionList()))
    assert [(r.hostname, r.dicom is not None and r.dicom.detected) for r in results] == [("localhost", True)]
    results, seen = asyncio.run(go(ExclusionList.from_specs(["127.0.0.0/8", "::1"])))
    assert results == [] and seen == 1000, "resolved into an excluded range: counted, never contacted"
