"""What a person watching the terminal sees: a live progress bar and a closing summary (stderr)."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from pacsaudit.engine.local import ScanTotals

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.table import Table

__all__ = ["ScanProgress", "summary_table"]


class ScanProgress:
    """Targets done, DICOM found, rate and ETA; silent when stderr is not a terminal or `quiet`."""

    def __init__(self, total: int | None, *, quiet: bool, console: Console | None = None) -> None:
        """Rich is loaded only when the bar may be shown: a quiet scan starts faster without it."""
        self.enabled = False
        self._progress: Progress | None = None
        if quiet:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console = console or Console(stderr=True)
        self.enabled = self.console.is_terminal
        self._progress = Progress(
            TextColumn("[bold]scan"),
            BarColumn(),
            TextColumn(
                "{task.completed:,}/{task.total:,} endpoints" if total else "{task.completed:,} endpoints"
            ),
            TextColumn("[green]{task.fields[dicom]:,} DICOM"),
            TextColumn("{task.fields[rate]:,.0f}/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.enabled,
            refresh_per_second=5,
        )
        self._task: TaskID = self._progress.add_task("scan", total=total, dicom=0, rate=0.0)

    def update(self, totals: ScanTotals) -> None:
        if not self.enabled or self._progress is None:
            return
        task = self._progress.tasks[0]
        elapsed = task.elapsed or 0.0
        rate = totals.endpoints / elapsed if elapsed > 0 else 0.0
        self._progress.update(
            self._task, completed=totals.endpoints + totals.excluded, dicom=totals.dicom, rate=rate
        )

    def __enter__(self) -> ScanProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()


def summary_table(totals: ScanTotals, elapsed_s: float) -> Table:
    """The few numbers a scan ends with: how much was open, how much spoke DICOM, to whom."""
    from rich.table import Table

    table = Table(title="pacsaudit scan summary", show_header=True, header_style="bold")
    table.add_column("measure")
    table.add_column("count", justify="right")
    rate = totals.endpoints / elapsed_s if elapsed_s > 0 else 0.0
    table.add_row("endpoints probed", f"{totals.endpoints:,}")
    table.add_row("open ports", f"{totals.open:,}")
    table.add_row("DICOM detected", f"{totals.dicom:,}")
    table.add_row("open to any AE title", f"{totals.open_to_any_ae:,}")
    if totals.web:
        table.add_row("PACS web services", f"{totals.web:,}")
    if totals.tls:
        table.add_row("TLS endpoints", f"{totals.tls:,}")
    if totals.excluded:
        table.add_row("excluded after resolving", f"{totals.excluded:,}")
    for status, count in sorted(totals.by_status.items()):
        table.add_row(f"status {status}", f"{count:,}")
    for product, count in sorted(totals.by_product.items(), key=lambda kv: -kv[1])[:10]:
        table.add_row(f"product {product}", f"{count:,}")
    table.add_row("elapsed", f"{elapsed_s:,.1f} s ({rate:,.0f} endpoints/s)")
    return table
