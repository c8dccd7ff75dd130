"""The `pacsaudit` command."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from pacsaudit import __version__
from pacsaudit.config import ScanSettings, load_settings
from pacsaudit.engine import run, run_scan
from pacsaudit.engine.local import ScanTotals
from pacsaudit.engine.workers import WorkerFailedError, run_scan_processes
from pacsaudit.model import EndpointResult
from pacsaudit.output import JsonlWriter
from pacsaudit.output.console import ScanProgress, summary_table
from pacsaudit.targets import ExclusionList, TargetSpecError, TargetStream, parse_ports

__all__ = ["app", "main"]

# Locals in a traceback could hold what a server sent: never print them.
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="Audit exposed medical-image archives (DICOM / PACS) — politely, without fetching patient data.",
)
err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


@app.command()
def scan(
    targets: Annotated[
        list[str] | None, typer.Argument(help="IPs, CIDRs, ranges a.b.c.d-e, hostnames, host:port.")
    ] = None,
    ports: Annotated[
        str | None, typer.Option("-p", "--ports", help="Ports, e.g. 104,11112,4242 or 1-1024.")
    ] = None,
    input_list: Annotated[
        list[Path] | None, typer.Option("-iL", "--input-list", help="File of targets, one a line.")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Targets never to touch (comma-separated).")
    ] = None,
    exclude_file: Annotated[
        list[Path] | None, typer.Option("--exclude-file", help="File of targets never to touch.")
    ] = None,
    output: Annotated[str, typer.Option("-o", "--output", help="JSON Lines file, or - for stdout.")] = "-",
    config: Annotated[Path | None, typer.Option("--config", help="TOML file of scan settings.")] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds for a TCP connect and for each answer.")
    ] = None,
    deadline: Annotated[float | None, typer.Option(help="Seconds for all the work on one endpoint.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Endpoints in flight at once.")] = None,
    per_host: Annotated[
        int | None, typer.Option("--per-host", help="Connections open to one IP at once.")
    ] = None,
    rate: Annotated[float | None, typer.Option(help="New connections per second (0: unlimited).")] = None,
    calling_ae: Annotated[
        str | None, typer.Option("--calling-ae", help="Calling AE title (default PACSAUDIT).")
    ] = None,
    called_ae: Annotated[
        list[str] | None, typer.Option("--called-ae", help="Called AE title to try first.")
    ] = None,
    no_ae_dictionary: Annotated[
        bool, typer.Option("--no-ae-dictionary", help="Try no AE titles from the dictionary.")
    ] = False,
    max_ae_attempts: Annotated[
        int | None, typer.Option("--max-ae-attempts", help="Associations per endpoint.")
    ] = None,
    census: Annotated[
        bool, typer.Option("--census", help="Count patients, studies, series, instances a stranger can list.")
    ] = False,
    max_queries: Annotated[
        int | None, typer.Option("--max-queries", help="C-FIND budget per endpoint.")
    ] = None,
    query_pause: Annotated[
        float | None, typer.Option("--query-pause", help="Seconds between C-FINDs.")
    ] = None,
    census_time: Annotated[
        float | None, typer.Option("--census-time", help="Seconds one endpoint's census may take.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Processes to scan with (1 per core).")
    ] = None,
    emit_all: Annotated[bool, typer.Option("--all", help="Also emit closed and filtered ports.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar, no summary.")] = False,
) -> None:
    """Find DICOM services and fingerprint them: who may associate, what checks hold, what software."""
    try:
        settings = load_settings(
            config,
            ports=parse_ports(ports) if ports else None,
            timeout=timeout,
            deadline=deadline,
            concurrency=concurrency,
            per_host=per_host,
            rate=rate,
            calling_ae=calling_ae,
            called_ae=called_ae or None,
            ae_dictionary=False if no_ae_dictionary else None,
            max_ae_attempts=max_ae_attempts,
            workers=workers,
            census=census or None,
            max_queries=max_queries,
            query_pause=query_pause,
            census_time=census_time,
            emit_all=emit_all or None,
        )
        exclusions = ExclusionList.from_specs(
            s for spec in exclude or [] for s in spec.split(",") if s.strip()
        )
        for path in exclude_file or []:
            exclusions = exclusions.merge(ExclusionList.from_file(path))
        stream = TargetStream(targets or [], settings.ports, files=input_list or [], exclusions=exclusions)
    except (ValueError, ValidationError, OSError) as exc:
        raise _fail(str(exc)) from None
    if not targets and not input_list:
        raise _fail("no targets: give addresses, ranges or hostnames, or -iL FILE")
    try:
        totals, elapsed = _run(stream, settings, exclusions, output, quiet)
    except (TargetSpecError, WorkerFailedError) as exc:
        raise _fail(str(exc)) from None
    if not quiet:
        err.print(summary_table(totals, elapsed))


def _run(
    stream: TargetStream, settings: ScanSettings, exclusions: ExclusionList, output: str, quiet: bool
) -> tuple[ScanTotals, float]:
    started = time.monotonic()
    with (
        JsonlWriter(output) as writer,
        ScanProgress(stream.estimated_total(), quiet=quiet, console=err) as progress,
    ):
        if settings.workers > 1 and stream.reusable:
            totals = run_scan_processes(
                stream,
                settings,
                settings.workers,
                writer.write_line,
                exclusions=exclusions,
                on_progress=progress.update,
            )
        else:
            totals = run(
                run_scan(stream, settings, writer.write, exclusions=exclusions, on_done=progress.update)
            )
    return totals, time.monotonic() - started


@app.command()
def lab(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Where to write the lab's JSON Lines.")
    ] = Path("lab-results.jsonl"),
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only the results table.")] = False,
) -> None:
    """Start a built-in lab of simulated PACS on loopback, scan it, show and write the results."""
    from pacsaudit.lab.demo import run_lab

    raise typer.Exit(run_lab(output, quiet=quiet, console=Console()))


@app.command()
def schema() -> None:
    """Print the JSON Schema of one result line."""
    sys.stdout.write(json.dumps(EndpointResult.model_json_schema(), indent=2, sort_keys=True) + "\n")


@app.command()
def version() -> None:
    """Print pacsaudit's version."""
    sys.stdout.write(f"pacsaudit {__version__}\n")


def main() -> None:
    app()
