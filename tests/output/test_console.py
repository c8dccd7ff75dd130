"""What a person at a terminal sees: the live bar (only on a terminal) and the closing summary."""

from __future__ import annotations

import io

from rich.console import Console

from pacsaudit.engine.local import ScanTotals
from pacsaudit.model import EndpointResult, HttpBlock, HttpService, TlsBlock
from pacsaudit.output.console import ScanProgress, summary_table


def _totals() -> ScanTotals:
    return ScanTotals(
        endpoints=40, open=5, dicom=3, open_to_any_ae=2,
        by_status={"success": 3, "connection-refused": 35, "io-timeout": 2},
        by_product={"DCMTK-based": 2, "unidentified": 1},
    )  # fmt: skip


def test_progress_bar_shows_targets_dicom_and_rate_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with ScanProgress(100, quiet=False, console=console) as progress:
        progress.update(_totals())
        progress._progress.refresh()
    text = out.getvalue()
    assert progress.enabled
    assert "40/100 endpoints" in text and "3 DICOM" in text and "/s" in text


def test_progress_bar_is_silent_off_a_terminal_or_when_quiet() -> None:
    for console, quiet in ((Console(file=io.StringIO(), force_terminal=False), False),
                           (Console(file=io.StringIO(), force_terminal=True), True)):  # fmt: skip
        with ScanProgress(10, quiet=quiet, console=console) as progress:
            progress.update(_totals())
        assert not progress.enabled
        assert console.file.getvalue() == ""  # type: ignore[attr-defined]


def test_summary_table_counts() -> None:
    console = Console(file=io.StringIO(), width=100, record=True)
    console.print(summary_table(_totals(), elapsed_s=2.0))
    text = console.export_text()
    for row in ("endpoints probed", "DICOM detected", "open to any AE title", "status io-timeout",
                "product DCMTK-based", "20 endpoints/s"):  # fmt: skip
        assert row in text


def test_summary_counts_web_services_and_tls_endpoints() -> None:
    totals = ScanTotals()
    service = HttpService(kind="orthanc-rest", path="/system")
    web = HttpBlock(detected=True, product="Orthanc", services=[service])
    plain_web = HttpBlock(detected=True)  # an HTTP server, but nothing PACS-like recognised
    for http, tls in ((web, TlsBlock(detected=True)), (plain_web, None), (None, TlsBlock(detected=False))):
        totals.add(EndpointResult(ip="127.0.0.1", port=443, status="success", elapsed_ms=1, timestamp="t",
                                  http=http, tls=tls))  # fmt: skip
    assert (totals.web, totals.tls) == (1, 1)
    assert totals.by_product == {"Orthanc (web)": 1}
    console = Console(file=io.StringIO(), width=100, record=True)
    console.print(summary_table(totals, elapsed_s=1.0))
    text = console.export_text()
    assert "PACS web services" in text and "TLS endpoints" in text and "product Orthanc (web)" in text
