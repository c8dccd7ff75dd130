"""`pacsaudit report`: one stored scan to HTML, Markdown, CSV, JSON or DefectDojo JSON.

The command in `cli.py` parses options and calls `write_report`; everything else is here, so
the same report can be made from Python (a scheduled job, a notebook) without the CLI.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pacsaudit.assessment import DEFAULT_COST_MODEL, Attributor, CostModel
from pacsaudit.reports.census import census_from_store
from pacsaudit.reports.census_model import Census
from pacsaudit.reports.csv_report import CsvTable, write_census_csv, write_systems_csv
from pacsaudit.reports.html import render_html
from pacsaudit.reports.json_report import render_census_json
from pacsaudit.reports.markdown import render_markdown
from pacsaudit.reports.text import cost_sentence

if TYPE_CHECKING:
    from rich.console import Console

    from pacsaudit.storage import ScanStore

__all__ = ["ReportFormat", "choice", "format_for", "output_file", "write_report"]


class ReportFormat(StrEnum):
    html = "html"
    md = "md"
    csv = "csv"
    json = "json"
    defectdojo = "defectdojo"


_SUFFIXES = {
    ".html": ReportFormat.html,
    ".htm": ReportFormat.html,
    ".md": ReportFormat.md,
    ".markdown": ReportFormat.md,
    ".csv": ReportFormat.csv,
    ".json": ReportFormat.json,
}


def choice(kind: type[ReportFormat] | type[CsvTable], text: str, what: str) -> Any:
    """`text` as a member of `kind`, or a `ValueError` that names the choices."""
    try:
        return kind(text)
    except ValueError:
        names = ", ".join(member.value for member in kind)
        raise ValueError(f"unknown {what} {text!r}: {names}") from None


def format_for(output: str, given: ReportFormat | None) -> ReportFormat:
    """The format asked for, else the one `-o`'s suffix names, else Markdown on standard output.

    Raises `ValueError` for a file whose suffix names no format (say `--format`)."""
    if given is not None:
        return given
    if output == "-":
        return ReportFormat.md
    suffix = Path(output).suffix.lower()
    if suffix not in _SUFFIXES:
        raise ValueError(f"cannot tell the format from {output!r}: give --format html|md|csv|json|defectdojo")
    return _SUFFIXES[suffix]


@contextmanager
def _progress(console: Console | None, total: int | None) -> Iterator[Callable[[int], None] | None]:
    """A Rich progress bar on `console` when it is a terminal; nothing otherwise."""
    if console is None or not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("report"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("results", total=total or None)
        yield lambda done: bar.update(task, completed=done)


def write_report(
    store: ScanStore,
    scan_id: int,
    out: TextIO,
    report_format: ReportFormat,
    *,
    diff_against: int | None = None,
    attributor: Attributor | None = None,
    model: CostModel = DEFAULT_COST_MODEL,
    table: CsvTable = CsvTable.countries,
    progress_console: Console | None = None,
) -> Census | None:
    """Write the report of stored scan `scan_id` to `out`; returns the census (None for DefectDojo).

    Raises `StorageError` when a scan is not there, `ValueError` for a scan stream out of order.
    """
    from pacsaudit.reports.defectdojo import defectdojo_findings
    from pacsaudit.storage import StorageError

    # One attributor for every output: with an ASN database, owners group by AS in the census, the
    # systems CSV and DefectDojo alike, as in `pacsaudit notify`.
    record = store.scan(scan_id)
    if record is None:
        raise StorageError(f"no scan {scan_id}")
    if report_format is ReportFormat.defectdojo:
        stream = store.observations(scan_id)
        try:
            document = defectdojo_findings(stream, scan_label=f"scan {scan_id}", attributor=attributor)
        finally:
            _close(stream)
        out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        return None
    with _progress(progress_console, record.endpoints_done) as progress:
        census = census_from_store(
            store,
            scan_id,
            diff_against=diff_against,
            attributor=attributor,
            cost_model=model,
            progress=progress,
        )
    if report_format is ReportFormat.html:
        out.write(render_html(census))
    elif report_format is ReportFormat.md:
        out.write(render_markdown(census))
    elif report_format is ReportFormat.json:
        out.write(render_census_json(census))
    elif table is CsvTable.systems:
        stream = store.observations(scan_id)
        try:
            write_systems_csv(
                stream, out, attributor=attributor, privacy=census.privacy, cost=cost_sentence(census.cost)
            )
        finally:
            _close(stream)
    else:
        write_census_csv(census, out, table)
    return census


def _close(stream: object) -> None:
    """A store stream holds a database connection until it is exhausted or closed."""
    close = getattr(stream, "close", None)
    if close is not None:
        close()


@contextmanager
def output_file(output: str) -> Iterator[TextIO]:
    """Standard output for `-`; otherwise a file that appears whole or not at all: written beside
    its final name and renamed once complete, so a failed build leaves no half report."""
    if output == "-":
        yield sys.stdout
        return
    final = Path(output)
    partial = final.with_name(f".{final.name}.part")
    try:
        with open(partial, "w", encoding="utf-8", newline="") as out:
            yield out
        partial.replace(final)
    finally:
        partial.unlink(missing_ok=True)
