"""The `pacsaudit` command.

No `from __future__ import annotations` here: Typer reads every command's annotations at each
start, and evaluating them as strings there cost more than evaluating them once at import.
"""

import functools
import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

# pydantic searches every installed distribution's entry points for plugins the first time a
# model is built: tens of milliseconds of each start, for plugins pacsaudit does not use. Set
# here, before any model is built, and only for the command: a user's own setting wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer
from pydantic import ValidationError

from pacsaudit import __version__
from pacsaudit.config import load_settings
from pacsaudit.engine.scan_run import ScanPlan, execute
from pacsaudit.engine.workers import WorkerFailedError
from pacsaudit.model import EndpointResult
from pacsaudit.output.console import summary_table
from pacsaudit.storage.states import DEFAULT_URL, StorageError
from pacsaudit.targets import TargetSpecError, parse_ports

if TYPE_CHECKING:
    from rich.console import Console

    from pacsaudit.storage import ScanStore

__all__ = ["app", "main"]

# Locals in a traceback could hold what a server sent: never print them.
_APP_SETTINGS: dict[str, Any] = {
    "add_completion": False,
    "pretty_exceptions_show_locals": False,
    "help": "Audit exposed medical-image archives (DICOM / PACS) — politely, without fetching patient data.",
}
app = typer.Typer(no_args_is_help=True, **_APP_SETTINGS)


@functools.cache
def err() -> "Console":
    """Standard error as a rich Console, made on first use: a quiet scan never loads rich."""
    from rich.console import Console

    return Console(stderr=True)


DbOption = Annotated[str, typer.Option("--db", help="Scan history database URL.", envvar="PACSAUDIT_DB")]


def _fail(message: str) -> typer.Exit:
    err().print(f"[red]error:[/red] {message}")
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
    web_ports: Annotated[
        str | None,
        typer.Option("--web-ports", help="Scanned ports to probe over HTTP(S) (default 80,443,8042,...)."),
    ] = None,
    try_default_credentials: Annotated[
        bool,
        typer.Option(
            "--try-default-credentials",
            help="Try vendor-documented default logins once each, where a PACS web service asks for one.",
        ),
    ] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Processes to scan with (1 per core).")
    ] = None,
    emit_all: Annotated[bool, typer.Option("--all", help="Also emit closed and filtered ports.")] = False,
    asn_db: Annotated[
        Path | None, typer.Option("--asn-db", help="GeoLite2-ASN / DB-IP ASN Lite MMDB: AS of every result.")
    ] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar, no summary.")] = False,
    db: DbOption = DEFAULT_URL,
    no_db: Annotated[bool, typer.Option("--no-db", help="Keep no history of this scan.")] = False,
    resume: Annotated[
        int | None,
        typer.Option("--resume", help="Continue an interrupted scan (its id in `pacsaudit scans`)."),
    ] = None,
) -> None:
    """Find DICOM services and fingerprint them: who may associate, what checks hold, what software."""
    if resume is not None:
        _resume(resume, db, output, quiet)
        return
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
            web_ports=parse_ports(web_ports) if web_ports else None,
            try_default_credentials=try_default_credentials or None,
            emit_all=emit_all or None,
            asn_database=asn_db.resolve() if asn_db else None,
        )
        plan = ScanPlan(
            targets=list(targets or []),
            settings=settings,
            files=[str(Path(f).resolve()) if str(f) != "-" else "-" for f in input_list or []],
            exclude=[s.strip() for spec in exclude or [] for s in spec.split(",") if s.strip()],
            exclude_files=[str(Path(f).resolve()) for f in exclude_file or []],
        )
        plan.stream(plan.exclusions())  # every spec and file checked before a packet is sent
    except (ValueError, ValidationError, OSError) as exc:
        raise _fail(str(exc)) from None
    if not targets and not input_list:
        raise _fail("no targets: give addresses, ranges or hostnames, or -iL FILE")
    _execute(plan, output, quiet, None if no_db else db)


def _check_asn_database(path: Path | None) -> None:
    """Open the ASN database once before any packet is sent, so a wrong file fails the command."""
    if path is None:
        return
    from pacsaudit.assessment import AttributionError, Attributor

    try:
        Attributor(path).close()
    except AttributionError as exc:
        raise _fail(str(exc)) from None


def _open_store(url: str) -> "ScanStore":
    """The scan history (imported here: a scan with `--no-db` never loads SQLAlchemy)."""
    from sqlalchemy.exc import SQLAlchemyError

    from pacsaudit.storage import ScanStore

    try:
        return ScanStore.open(url)
    except (StorageError, SQLAlchemyError, OSError) as exc:
        raise _fail(f"cannot open the scan history {url!r}: {type(exc).__name__}: {exc}") from None


def _execute(plan: ScanPlan, output: str, quiet: bool, db: str | None, resume: int | None = None) -> None:
    _check_asn_database(plan.settings.asn_database)  # again on resume: the file may have moved
    store = _open_store(db) if db is not None else None
    try:
        outcome = execute(
            plan,
            output=output,
            quiet=quiet,
            progress_console=None if quiet else err(),
            store=store,
            resume=resume,
        )
    except KeyboardInterrupt:
        if store is not None:
            err().print(
                "[yellow]interrupted[/yellow]: `pacsaudit scan --resume ID` continues it (`pacsaudit scans`)"
            )
        raise typer.Exit(130) from None
    except (TargetSpecError, WorkerFailedError, StorageError) as exc:
        raise _fail(str(exc)) from None
    finally:
        if store is not None:
            store.close()
    if not quiet:
        err().print(summary_table(outcome.totals, outcome.elapsed))
        if outcome.scan_id is not None:
            err().print(f"stored as scan {outcome.scan_id} in {db}")


def _resume(scan_id: int, db: str, output: str, quiet: bool) -> None:
    store = _open_store(db)
    try:
        record = store.scan(scan_id)
    finally:
        store.close()
    if record is None:
        raise _fail(f"no scan {scan_id} in {db}")
    try:
        plan = ScanPlan.from_arguments(record.arguments)
    except (KeyError, ValueError, ValidationError) as exc:
        raise _fail(
            f"scan {scan_id} cannot be resumed (it was imported, or its arguments are gone): {exc}"
        ) from None
    _execute(plan, output, quiet, db, resume=scan_id)


@app.command()
def scans(
    db: DbOption = DEFAULT_URL,
) -> None:
    """List the stored scans: id, started, finished, targets, DICOM found, state."""
    store = _open_store(db)
    try:
        records = store.scans()
    finally:
        store.close()
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"scans in {db}", header_style="bold")
    for column in ("id", "started", "finished", "targets", "done", "DICOM found", "state"):
        table.add_column(
            column, justify="right" if column in ("id", "targets", "done", "DICOM found") else "left"
        )
    for r in records:
        table.add_row(
            str(r.id),
            r.started_at.isoformat(timespec="seconds") if r.started_at else "-",
            r.finished_at.isoformat(timespec="seconds") if r.finished_at else "-",
            "-" if r.targets_estimated is None else f"{r.targets_estimated:,}",
            f"{r.endpoints_done:,}",
            f"{r.dicom_found:,}",
            str(r.state),
        )
    Console().print(table)


@app.command("import")
def import_(
    path: Annotated[
        Path, typer.Argument(help="JSON Lines of results (from `scan -o` or `export`), - for stdin.")
    ],
    db: DbOption = DEFAULT_URL,
) -> None:
    """Store results made elsewhere (another sensor) as a new scan."""
    store = _open_store(db)
    try:
        summary = store.import_jsonl(sys.stdin if str(path) == "-" else path)
    except (OSError, StorageError) as exc:
        raise _fail(str(exc)) from None
    finally:
        store.close()
    err().print(
        f"imported {summary.stored:,} results as scan {summary.scan_id}; {len(summary.bad_lines)} bad line(s)"
    )
    for bad in summary.bad_lines[:10]:
        err().print(f"  line {bad.line}: {bad.error}")


@app.command()
def export(
    scan_id: Annotated[int, typer.Argument(help="The scan to export.")],
    output: Annotated[str, typer.Option("-o", "--output", help="JSON Lines file, or - for stdout.")] = "-",
    db: DbOption = DEFAULT_URL,
) -> None:
    """Write a stored scan's results as JSON Lines."""
    store = _open_store(db)
    try:
        if store.scan(scan_id) is None:
            raise _fail(f"no scan {scan_id} in {db}")
        if output == "-":
            store.export_jsonl(scan_id, sys.stdout)
        else:
            with open(output, "w", encoding="utf-8") as out:
                store.export_jsonl(scan_id, out)
    finally:
        store.close()


@app.command()
def notify(
    scan_id: Annotated[int, typer.Argument(help="The stored scan to notify about.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for the notices.")],
    asn_db: Annotated[
        Path | None, typer.Option("--asn-db", help="GeoLite2-ASN / DB-IP ASN Lite MMDB to group by AS.")
    ] = None,
    db: DbOption = DEFAULT_URL,
) -> None:
    """One PHI-free Markdown notice per network owner (AS, else country) of a scan, and an index."""
    from pacsaudit.assessment import AttributionError, Attributor
    from pacsaudit.reports.notify import write_owner_notices

    try:
        attributor = Attributor(asn_db)
    except AttributionError as exc:
        raise _fail(str(exc)) from None
    store = _open_store(db)
    try:
        if store.scan(scan_id) is None:
            raise _fail(f"no scan {scan_id} in {db}")
        paths = write_owner_notices(
            store.observations(scan_id), output, attributor=attributor, scan_label=f"scan {scan_id}"
        )
    except (OSError, StorageError) as exc:
        raise _fail(str(exc)) from None
    finally:
        store.close()
        attributor.close()
    err().print(f"{len(paths) - 1} owner notice(s) in {output}, listed in {paths[-1].name}")


class DiffFormat(StrEnum):
    table = "table"
    json = "json"
    md = "md"


@app.command()
def diff(
    earlier: Annotated[int, typer.Argument(help="The earlier scan's id.")],
    later: Annotated[int, typer.Argument(help="The later scan's id.")],
    format: Annotated[
        DiffFormat, typer.Option("--format", "-f", help="table, json or md.")
    ] = DiffFormat.table,
    output: Annotated[str, typer.Option("-o", "--output", help="File to write, or - for stdout.")] = "-",
    assume_same_scope: Annotated[
        bool,
        typer.Option(
            "--assume-same-scope", help="Treat every earlier system as rescanned (for imported scans)."
        ),
    ] = False,
    db: DbOption = DEFAULT_URL,
) -> None:
    """What changed between two scans: new, gone and changed systems, and growth in the census totals."""
    from pacsaudit.reports import Scope, diff_from_store, render_json, render_markdown, render_table

    store = _open_store(db)
    try:
        result = diff_from_store(
            store, earlier, later, later_scope=Scope.everything() if assume_same_scope else None
        )
    except (StorageError, ValueError) as exc:
        raise _fail(str(exc)) from None
    finally:
        store.close()
    if format is DiffFormat.table:
        from rich.console import Console

        console = Console(file=open(output, "w", encoding="utf-8") if output != "-" else None)  # noqa: SIM115
        console.print(render_table(result))
        if output != "-":
            console.file.close()
        return
    text = render_json(result) if format is DiffFormat.json else render_markdown(result)
    if output == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        Path(output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


@app.command()
def report(
    scan_id: Annotated[int, typer.Argument(help="The stored scan to report on.")],
    output: Annotated[str, typer.Option("-o", "--output", help="File to write, or - for stdout.")] = "-",
    format: Annotated[
        str | None,
        typer.Option("--format", "-f", help="html, md, csv, json, defectdojo (default: -o's suffix or md)."),
    ] = None,
    diff: Annotated[
        int | None, typer.Option("--diff", help="An earlier scan's id: add the growth since it.")
    ] = None,
    table: Annotated[
        str, typer.Option("--table", help="CSV table: countries, owners, products, worst, findings, systems.")
    ] = "countries",
    asn_db: Annotated[
        Path | None, typer.Option("--asn-db", help="GeoLite2-ASN / DB-IP ASN Lite MMDB, for older results.")
    ] = None,
    cost_per_record: Annotated[
        float | None, typer.Option("--cost-per-record", help="Cost per exposed patient record.")
    ] = None,
    cost_per_ssn_record: Annotated[
        float | None, typer.Option("--cost-per-ssn-record", help="Cost per record with an SSN-shaped ID.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings (cost_per_record, asn_database...).")
    ] = None,
    db: DbOption = DEFAULT_URL,
) -> None:
    """The census of a stored scan (per country, owner, product; charts and map in HTML), or findings."""
    from pacsaudit.assessment import AttributionError, Attributor, cost_model
    from pacsaudit.reports.csv_report import CsvTable
    from pacsaudit.reports.writer import ReportFormat, choice, format_for, output_file, write_report

    try:
        chosen = format_for(output, None if format is None else choice(ReportFormat, format, "format"))
        csv_table = choice(CsvTable, table, "CSV table")
        settings = load_settings(
            config,
            cost_per_record=cost_per_record,
            cost_per_ssn_record=cost_per_ssn_record,
            asn_database=asn_db,
        )
        model = cost_model(settings.cost_per_record, settings.cost_per_ssn_record)
        attributor = Attributor(settings.asn_database)
    except (ValueError, AttributionError, OSError) as exc:
        raise _fail(str(exc)) from None
    store = _open_store(db)
    try:
        with output_file(output) as out:
            write_report(store, scan_id, out, chosen, diff_against=diff, attributor=attributor, model=model,
                         table=csv_table, progress_console=err())  # fmt: skip
    except (StorageError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    finally:
        store.close()
        attributor.close()


@app.command()
def lab(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Where to write the lab's JSON Lines.")
    ] = Path("lab-results.jsonl"),
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only the results table.")] = False,
    report: Annotated[
        Path, typer.Option("--report", help="Where to write the HTML census report of the lab scan.")
    ] = Path("lab-report.html"),
) -> None:
    """Start a built-in lab of simulated PACS on loopback, scan it, show and write the results."""
    from rich.console import Console

    from pacsaudit.lab.demo import run_lab

    raise typer.Exit(run_lab(output, quiet=quiet, console=Console(), report=report))


@app.command()
def schema() -> None:
    """Print the JSON Schema of one result line."""
    sys.stdout.write(json.dumps(EndpointResult.model_json_schema(), indent=2, sort_keys=True) + "\n")


@app.command()
def version() -> None:
    """Print pacsaudit's version."""
    sys.stdout.write(f"pacsaudit {__version__}\n")


def main() -> None:
    """Run the command line, building only the command asked for.

    Typer turns every registered command's signature into parameters at each start (a few
    milliseconds a command); a scan should not pay for the nine it does not run. Help, an
    unknown name or no name at all get the whole application.
    """
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    wanted = [info for info in app.registered_commands if _command_name(info) == name]
    if not wanted:
        app()
        return
    alone = typer.Typer(**_APP_SETTINGS)
    alone.registered_commands = wanted
    alone.callback()(_group)  # a group of one: `pacsaudit NAME ...` parses as in the whole app
    alone()


def _group() -> None:
    """The command group's own step, which has nothing to do."""


def _command_name(info: typer.models.CommandInfo) -> str | None:
    if info.name is not None:
        return info.name
    return info.callback.__name__.lower().replace("_", "-") if info.callback is not None else None
