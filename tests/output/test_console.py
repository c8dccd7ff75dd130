"""What a person at a terminal sees: the live bar (only on a terminal) and the closing summary."""

from __future__ import annotations

import io

from rich.console import Console

from pacsaudit.engine.local import ScanTotals
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
