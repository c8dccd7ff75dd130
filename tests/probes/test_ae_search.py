"""The AE-title search against simulated PACS whose policy is known: what is proven, and at what cost."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from pacsaudit.config import ScanSettings
from pacsaudit.discovery import Connector
from pacsaudit.engine import scan_endpoint
from pacsaudit.lab.simulator import PacsPolicy, SimulatedPacs, start_simulated_pacs
from pacsaudit.model import DicomBlock
from pacsaudit.probes import DicomProbeContext
from pacsaudit.probes.dicom_association import random_ae_titles


def _probe(policy: PacsPolicy, **settings: Any) -> tuple[DicomBlock, list[tuple[str, str]]]:
    """Scan one simulated PACS; the DICOM block and the (called, calling) titles it was asked for."""

    async def go() -> tuple[DicomBlock, list[tuple[str, str]]]:
        pacs: SimulatedPacs = await start_simulated_pacs(policy)
        try:
            options = {
                "timeout": 2.0,
                "deadline": 20.0,
                "rate": 0.0,
                "ae_pause": 0.0,
                "busy_retry_pause": 0.05,
            }
            config = ScanSettings(**(options | settings))
            ctx = DicomProbeContext.create(config, Connector(timeout=config.timeout, rate=0, per_host=2))
            result = await scan_endpoint(pacs.host, pacs.port, ctx)
        finally:
            await pacs.close()
        assert result.dicom is not None
        return result.dicom, list(pacs.titles_seen)

    return asyncio.run(go())


def test_stranger_titles_are_random_and_never_a_real_default() -> None:
    d, seen = _probe(PacsPolicy())
    (called, calling) = seen[0]
    assert called != calling
    for title in (called, calling):
        assert len(title) == 12 and title.startswith("PA") and title.isalpha() and title.isupper()
    assert (d.open_to_any_ae, d.called_ae_check, d.calling_ae_check, d.ae_attempts) == (True, False, False, 1)


def test_honest_calling_reject_skips_the_called_search() -> None:
    """Reason 3 (calling AE not recognized) from an honest server: vary the calling title straight away."""
    d, seen = _probe(PacsPolicy(calling_aets=frozenset({"STORESCU"})))
    assert d.association == "accepted" and d.open_to_any_ae is False
    assert (d.called_ae_check, d.calling_ae_check) == (False, True)
    assert d.accepted_calling_ae == "STORESCU"
    stranger_called = seen[0][0]
    assert all(called == stranger_called for called, _ in seen), "only the calling title was varied"


def test_busy_once_then_open_is_not_an_ae_check() -> None:
    d, seen = _probe(PacsPolicy(busy_times=1))
    assert (d.association, d.transient, d.open_to_any_ae) == ("accepted", False, True)
    assert (d.called_ae_check, d.calling_ae_check) == (False, False)
    assert d.ae_attempts == 2 and seen[0] == seen[1], "one polite retry, same titles"


def test_always_busy_is_reported_as_busy_and_not_searched() -> None:
    d, _ = _probe(PacsPolicy(busy_times=100))
    assert (d.association, d.transient, d.open_to_any_ae) == ("rejected", True, None)
    assert d.reject is not None and (d.reject.result, d.reject.source, d.reject.reason) == (2, 3, 2)
    assert d.reject.reason_text == "local-limit-exceeded"
    assert (d.called_ae_check, d.calling_ae_check) == (None, None)
    assert d.ae_attempts == 2


def test_reject_not_about_titles_stops_the_search() -> None:
    d, _ = _probe(PacsPolicy(reject_all=(1, 2, 2)))  # ACSE: protocol version not supported
    assert d.association == "rejected" and d.ae_attempts == 1
    assert d.reject is not None and d.reject.reason_text == "protocol-version-not-supported"


def test_budget_is_a_hard_cap() -> None:
    d, seen = _probe(PacsPolicy(reject_all=(1, 1, 1)), max_ae_attempts=9)
    assert d.ae_attempts == 9 and len(seen) == 9
    assert (d.open_to_any_ae, d.called_ae_check, d.calling_ae_check) == (False, None, None)


def test_abort_on_associate_is_aborted_and_searched() -> None:
    d, seen = _probe(PacsPolicy(abort_on_associate=True), max_ae_attempts=4)
    assert (d.detected, d.association, d.abort_source) == (True, "aborted", 0)
    assert d.ae_attempts == 4 == len(seen)


def test_no_dictionary_tries_only_the_users_titles() -> None:
    d, seen = _probe(PacsPolicy(called_aets=frozenset({"ORTHANC"})), ae_dictionary=False)
    assert d.association == "rejected" and d.ae_attempts == 2
    assert seen[1][1] == "PACSAUDIT", "the calling title that identifies the tool"
    assert all("ORTHANC" not in pair for pair in seen)


def test_deadline_ends_a_long_search_keeping_the_evidence() -> None:
    d, _ = _probe(PacsPolicy(reject_all=(1, 1, 7)), ae_pause=0.2, deadline=1.0, max_ae_attempts=40)
    assert d.detected and d.association == "rejected" and d.open_to_any_ae is False
    assert d.status == "io-timeout" and d.error == "endpoint deadline reached"
    assert 2 <= d.ae_attempts <= 7


def test_stranger_titles_are_random_capitals_nobody_configures_and_never_repeat() -> None:
    pairs = [random_ae_titles() for _ in range(2000)]  # several refills of the pool
    titles = [title for pair in pairs for title in pair]
    assert all(re.fullmatch(r"PA[A-Z]{10}", title) for title in titles)
    assert len(set(titles)) == len(titles)
    assert all(called != calling for called, calling in pairs)
