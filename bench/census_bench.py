"""Census benchmark: exact counts on a capped archive, pacsaudit against a naive month split and findscu.

One run generates the synthetic capped archive (`capped_archive_spec()`: about 3,100 studies,
a busy day of 310 and 124 undated), loads it into two Orthancs on loopback, one with
``LimitFindResults: 100`` and one uncapped (both ``DicomAlwaysAllowFind: true``), and counts it
with every tool, each a subprocess whose wall clock and user+sys CPU are read with ``os.wait4``:

* pacsaudit: ``python -m pacsaudit scan 127.0.0.1:PORT --census --query-pause 0 ...``;
* a naive month-by-month split: one STUDY-level C-FIND per calendar month over the archive's
  years, written here on pacsaudit's own wire layer (and one universal query for comparison);
* DCMTK ``findscu -v -S``: one STUDY-level listing, counted by parsing what it prints.

Counts are checked against the generator's own truth (studies, series, instances, patients,
studies per year, undated studies). Everything talks to 127.0.0.1 only; the servers, the
temporary directory and this script stop by themselves (a watchdog process cleans up if the
harness is killed).

    python3 bench/census_bench.py                # one run per tool (about 70 s on 2 cores)
    python3 bench/census_bench.py --runs 3 --json census.json   # medians of 3 (about 2.5 min)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import importlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT_DIR = BENCH / "out"
LOOPBACK = "127.0.0.1"
CAP = 100
CANCEL = 0xFE00
TOOL_LIMIT_S = 150.0
"""Any one tool run is killed after this long."""
TIME_LIMIT_S = 270.0
"""The watchdog stops everything after this long (at --runs 1); each extra run adds RUN_EXTRA_S."""
RUN_EXTRA_S = 60.0

# The STUDY-level return keys every tool asks for: pacsaudit's census key set (docs/census.md).
QUERY_LEVEL = 0x00080052
STUDY_DATE = 0x00080020
MODALITIES_IN_STUDY = 0x00080061
INSTITUTION = 0x00080080
PATIENT_ID = 0x00100020
OTHER_PATIENT_IDS = 0x00101000
STUDY_UID = 0x0020000D
SERIES_IN_STUDY = 0x00201206
INSTANCES_IN_STUDY = 0x00201208
STUDY_KEYS: tuple[tuple[int, str, str], ...] = (
    (STUDY_UID, "UI", "StudyInstanceUID"),
    (STUDY_DATE, "DA", "StudyDate"),
    (MODALITIES_IN_STUDY, "CS", "ModalitiesInStudy"),
    (SERIES_IN_STUDY, "IS", "NumberOfStudyRelatedSeries"),
    (INSTANCES_IN_STUDY, "IS", "NumberOfStudyRelatedInstances"),
    (PATIENT_ID, "LO", "PatientID"),
    (OTHER_PATIENT_IDS, "LO", "OtherPatientIDs"),
    (INSTITUTION, "LO", "InstitutionName"),
)
COUNT_FIELDS = ("studies", "series", "instances", "patients", "per_year", "undated")


def console_for_output() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


# --------------------------------------------------------------------------- counting


@dataclass
class Tally:
    """What every tool's answers are reduced to: counters and in-memory hashes, never a value."""

    studies: set[str] = field(default_factory=set)
    patients: set[bytes] = field(default_factory=set)
    series: int = 0
    instances: int = 0
    per_year: Counter[str] = field(default_factory=Counter)
    undated: int = 0

    def add(self, uid: str, date: str, patient_id: str, series: str, instances: str) -> None:
        if uid in self.studies:
            return
        self.studies.add(uid)
        if patient_id:
            self.patients.add(hashlib.sha256(patient_id.encode("utf-8", "surrogateescape")).digest())
        date = date.strip()
        if len(date) >= 4 and date[:4].isdigit():
            self.per_year[date[:4]] += 1
        else:
            self.undated += 1
        self.series += int(series) if series.strip().isdigit() else 0
        self.instances += int(instances) if instances.strip().isdigit() else 0

    def counts(self) -> dict[str, Any]:
        return {
            "studies": len(self.studies),
            "series": self.series,
            "instances": self.instances,
            "patients": len(self.patients),
            "per_year": dict(sorted(self.per_year.items())),
            "undated": self.undated,
        }


# --------------------------------------------------------------------------- the naive client


async def naive_find(
    host: str, port: int, ranges: Sequence[tuple[str, str]], timeout: float
) -> dict[str, Any]:
    """One association, one STUDY-level C-FIND per StudyDate range ("" = universal), no splitting.

    Built on pacsaudit's wire layer (the census's own calls), so the comparison is about the
    query plan, not the codec.
    """
    from pacsaudit.dicom import (
        AssociateRequest,
        PduLimits,
        PduTransport,
        PresentationContext,
        decode_identifier,
        encode_identifier,
        request_association,
    )
    from pacsaudit.dicom.constants import (
        EXPLICIT_VR_LE,
        IMPLEMENTATION_CLASS_UID,
        IMPLICIT_VR_LE,
        STUDY_ROOT_FIND,
    )
    from pacsaudit.dicom.dimse import is_pending
    from pacsaudit.discovery import Connector

    connector = Connector(timeout=timeout, rate=0, per_host=1)
    limits = PduLimits()
    request = AssociateRequest(
        called_ae="ANY-SCP",
        calling_ae="NAIVESPLIT",
        contexts=(PresentationContext(1, STUDY_ROOT_FIND, (IMPLICIT_VR_LE, EXPLICIT_VR_LE)),),
        max_pdu_length=64 * 1024,
        implementation_class_uid=IMPLEMENTATION_CLASS_UID,
        implementation_version_name="NAIVE_SPLIT",
    )
    wanted = frozenset(tag for tag, _, _ in STUDY_KEYS)
    tally = Tally()
    per_query: list[dict[str, Any]] = []
    async with connector.open(host, port, lambda: PduTransport(limits, timeout)) as conn:
        reply, association = await request_association(conn, request)
        if association is None:
            raise SystemExit(f"association refused: {reply}")
        syntax = association.transfer_syntax_for(STUDY_ROOT_FIND) or IMPLICIT_VR_LE
        for label, date_range in ranges:
            keys = [(tag, vr, date_range if tag == STUDY_DATE else "") for tag, vr, _ in STUDY_KEYS]
            identifier = encode_identifier([(QUERY_LEVEL, "CS", "STUDY"), *keys], syntax)
            answers, final = 0, None
            async for response in association.find(STUDY_ROOT_FIND, identifier, max_responses=20_000):
                if response.identifier is not None and is_pending(response.status):
                    answers += 1
                    got = decode_identifier(response.identifier, syntax, wanted)
                    tally.add(
                        got.get(STUDY_UID, ""),
                        got.get(STUDY_DATE, ""),
                        got.get(PATIENT_ID, ""),
                        got.get(SERIES_IN_STUDY, ""),
                        got.get(INSTANCES_IN_STUDY, ""),
                    )
                elif response.identifier is None:
                    final = response.status
            per_query.append({"range": label, "answers": answers, "final_status": final})
        await association.release()
    return {"queries": len(per_query), "per_query": per_query, **tally.counts()}


def month_ranges(first_year: int, last_year: int) -> list[tuple[str, str]]:
    """(label, StudyDate range) for every calendar month of the years, first to last."""
    out = []
    for year in range(first_year, last_year + 1):
        for month in range(1, 13):
            start = dt.date(year, month, 1)
            end = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
            out.append((f"{year}-{month:02d}", f"{start:%Y%m%d}-{end:%Y%m%d}"))
    return out


def naive_main(argv: Sequence[str]) -> int:
    """`census_bench.py naive-client HOST PORT (--months FIRST-LAST | --universal)`: JSON on stdout."""
    parser = argparse.ArgumentParser(prog="census_bench.py naive-client")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--months", help="year span, e.g. 2009-2024")
    parser.add_argument("--universal", action="store_true")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.host != LOOPBACK:
        parser.error("loopback only")
    if args.universal:
        ranges = [("universal", "")]
    elif args.months:
        first, _, last = args.months.partition("-")
        ranges = month_ranges(int(first), int(last))
    else:
        parser.error("--months or --universal")
    sys.path.insert(0, str(REPO / "src"))
    result = asyncio.run(naive_find(args.host, args.port, ranges, args.timeout))
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------- findscu


def parse_findscu_listing(text: str) -> dict[str, Any]:
    """Counts from `findscu -v` output: one "Find Response: N (Pending)" block per study."""
    tally = Tally()
    blocks = re.split(r"Find Response: \d+ \(Pending\)", text)
    pattern = re.compile(r"^I: \((\w{4}),(\w{4})\) \w\w \[(.*)\]\s+#", re.MULTILINE)
    wanted = {f"({tag >> 16:04x},{tag & 0xFFFF:04x})": tag for tag, _, _ in STUDY_KEYS}
    patient_ids_printed = 0
    for block in blocks[1:]:
        values: dict[int, str] = {}
        for group, element, value in pattern.findall(block.split("---------------------------")[0]):
            tag = wanted.get(f"({group.lower()},{element.lower()})")
            if tag is not None:
                values[tag] = value.strip()
        patient_ids_printed += bool(values.get(PATIENT_ID))
        tally.add(
            values.get(STUDY_UID, ""),
            values.get(STUDY_DATE, ""),
            values.get(PATIENT_ID, ""),
            values.get(SERIES_IN_STUDY, ""),
            values.get(INSTANCES_IN_STUDY, ""),
        )
    final = re.search(r"Received Final Find Response \(([^)]*)\)", text)
    return {
        "queries": 1,
        "answers": len(blocks) - 1,
        "final_status": final.group(1) if final else None,
        "patient_ids_printed": patient_ids_printed,
        "stdout_bytes": len(text.encode()),
        **tally.counts(),
    }


def findscu_cmd(findscu: Path, port: int) -> list[str]:
    # DCMTK's dictionary calls (0010,1000) RETIRED_OtherPatientIDs: give it the tag.
    names = [
        f"{tag >> 16:04x},{tag & 0xFFFF:04x}" if tag == OTHER_PATIENT_IDS else n for tag, _, n in STUDY_KEYS
    ]
    keys = [arg for name in names for arg in ("-k", name)]
    return [str(findscu), "-v", "-S", "-k", "QueryRetrieveLevel=STUDY", *keys, LOOPBACK, str(port)]


# --------------------------------------------------------------------------- measuring


@dataclass
class Measurement:
    wall_s: float
    cpu_s: float
    """user+sys of the tool's process (os.wait4)."""
    server_cpu_s: float | None
    """user+sys of the Orthanc process over the run (/proc/<pid>/stat, all threads)."""
    returncode: int
    killed: bool


def process_cpu_s(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_measured(
    cmd: Sequence[str], stdout: Path, env: dict[str, str], server_pid: int | None
) -> Measurement:
    """Run `cmd`; wall clock around it, CPU from os.wait4; kill its process group after TOOL_LIMIT_S."""
    server0 = process_cpu_s(server_pid)
    with stdout.open("wb") as out, stdout.with_suffix(".stderr").open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO, start_new_session=True)
        reaped: list[tuple[int, Any, float]] = []

        def reap() -> None:
            _, status, usage = os.wait4(proc.pid, 0)
            reaped.append((status, usage, time.perf_counter()))

        waiter = threading.Thread(target=reap, daemon=True)
        waiter.start()
        try:
            waiter.join(TOOL_LIMIT_S)
        except BaseException:  # interrupted (SIGTERM, Ctrl-C): the tool goes too
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        killed = waiter.is_alive()
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
            waiter.join(30)
    status, usage, end = reaped[0]
    proc.returncode = os.waitstatus_to_exitcode(status)
    server1 = process_cpu_s(server_pid)
    return Measurement(
        wall_s=end - start,
        cpu_s=usage.ru_utime + usage.ru_stime,
        server_cpu_s=None if server0 is None or server1 is None else server1 - server0,
        returncode=proc.returncode,
        killed=killed,
    )


@dataclass
class ToolRun:
    tool: str
    server: str
    run: int
    command: list[str]
    measurement: Measurement
    queries: int | None
    counts: dict[str, Any]
    exact: dict[str, bool]
    detail: dict[str, Any]

    @property
    def all_exact(self) -> bool:
        return bool(self.exact) and all(self.exact.values())


def compare(counts: dict[str, Any], truth: dict[str, Any]) -> dict[str, bool]:
    return {name: counts.get(name) == truth[name] for name in COUNT_FIELDS}


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# --------------------------------------------------------------------------- servers


def fixtures() -> tuple[ModuleType, ModuleType]:
    """tests/integration/archives.py and servers.py (plain modules, not on the package path)."""
    for path in (REPO / "src", REPO / "tests", REPO / "tests" / "integration"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    return importlib.import_module("archives"), importlib.import_module("servers")


def pids_under(directory: Path) -> list[int]:
    """Processes whose command line names `directory`: the servers this harness started there."""
    needle = str(directory).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def watchdog_main(argv: Sequence[str]) -> int:
    """`census_bench.py watchdog PARENT_PID DEADLINE DIR`: if the harness dies or overruns, clean up.

    Stops the processes started under DIR (by pid, found through DIR in their command line)
    and removes DIR. A harness that cleaned up after itself terminates the watchdog first.
    """
    parent, deadline, directory = int(argv[0]), float(argv[1]), Path(argv[2])
    while True:
        parent_gone = os.getppid() != parent
        if parent_gone or time.time() > deadline:
            break
        time.sleep(1.0)
    if not parent_gone:
        with contextlib.suppress(ProcessLookupError):
            os.kill(parent, signal.SIGTERM)
        time.sleep(15.0)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids_under(directory):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        time.sleep(3.0)
    shutil.rmtree(directory, ignore_errors=True)
    return 0


@contextlib.contextmanager
def watchdog(directory: Path, limit_s: float) -> Iterator[None]:
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "watchdog", str(os.getpid()),
         str(time.time() + limit_s), str(directory)],
        start_new_session=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        # The harness cleaned up itself: the watchdog has nothing left to do.
        proc.terminate()
        proc.wait(10)


def orthanc_pid(workdir: Path) -> int | None:
    pids = [p for p in pids_under(workdir) if b"Orthanc" in Path(f"/proc/{p}/cmdline").read_bytes()]
    return pids[0] if pids else None


# --------------------------------------------------------------------------- the run


@dataclass
class Server:
    name: str
    port: int
    pid: int | None


def truth_of(archive: Any) -> dict[str, Any]:
    t = archive.truth
    return {
        "studies": t.studies,
        "series": t.series,
        "instances": t.instances,
        "patients": t.patients,
        "per_year": {str(y): n for y, n in sorted(t.study_years.items())},
        "undated": t.undated_studies,
    }


def run_pacsaudit(server: Server, work: Path, run: int, truth: dict[str, Any]) -> ToolRun:
    out = work / f"pacsaudit-{server.name}-{run}.jsonl"
    cmd = [sys.executable, "-m", "pacsaudit", "scan", f"{LOOPBACK}:{server.port}", "--census",
           "--query-pause", "0", "--census-time", "600", "-o", str(out), "-q"]  # fmt: skip
    m = run_measured(cmd, out.with_suffix(".stdout"), tool_env(), server.pid)
    record: dict[str, Any] = {}
    if out.exists():
        for line in out.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                record = json.loads(line)
    d = record.get("dicom") or {}
    c, years = d.get("counts") or {}, d.get("study_dates") or {}
    counts = {
        "studies": c.get("studies"),
        "series": c.get("series"),
        "instances": c.get("instances"),
        "patients": c.get("patients"),
        "per_year": years.get("per_year"),
        "undated": years.get("undated"),
    }
    detail = {
        k: c.get(k) for k in ("complete", "capped", "cap", "split", "counted_from", "incomplete_reason")
    }
    return ToolRun("pacsaudit", server.name, run, cmd, m, c.get("queries"), counts, compare(counts, truth),
                   detail)  # fmt: skip


def run_naive(
    server: Server,
    work: Path,
    run: int,
    truth: dict[str, Any],
    years: tuple[int, int] | None,
    per_month: Counter[str] | None = None,
) -> ToolRun:
    """The naive client: every month of `years` (the span the generator used), or one universal query."""
    mode = ["--universal"] if years is None else ["--months", f"{years[0]}-{years[1]}"]
    cmd = [sys.executable, str(Path(__file__).resolve()), "naive-client", LOOPBACK, str(server.port), *mode]
    name = "universal query" if years is None else "naive month split"
    stdout = work / f"{name.replace(' ', '-')}-{server.name}-{run}.stdout"
    m = run_measured(cmd, stdout, tool_env(), server.pid)
    try:
        result = json.loads(stdout.read_text())
    except (OSError, json.JSONDecodeError):
        result = {}
    counts = {k: result.get(k) for k in COUNT_FIELDS}
    per_query = result.get("per_query", [])
    # Cut short: Orthanc ends a capped answer with status 0xFE00 (cancel) that nobody asked for.
    at_cap = [q for q in per_query if q["final_status"] == CANCEL or q["answers"] == CAP]
    detail: dict[str, Any] = {"queries_at_cap": len(at_cap)}
    if per_month is not None:
        # Which studies the split could not see, from the generator's per-month truth.
        capped_months = {q["range"]: per_month[q["range"]] for q in at_cap}
        detail.update(
            months=len(per_query),
            capped_months=capped_months,
            missed_in_capped_months=sum(per_month[q["range"]] - q["answers"] for q in at_cap),
            missed_undated=truth["undated"] - (result.get("undated") or 0),
            missed_total=truth["studies"] - (result.get("studies") or 0),
        )
    else:
        detail["final_status"] = per_query[0]["final_status"] if per_query else None
    return ToolRun(
        name, server.name, run, cmd, m, result.get("queries"), counts, compare(counts, truth), detail
    )


def run_findscu(findscu: Path, server: Server, work: Path, run: int, truth: dict[str, Any]) -> ToolRun:
    cmd = findscu_cmd(findscu, server.port)
    stdout = work / f"findscu-{server.name}-{run}.stdout"
    m = run_measured(cmd, stdout, dict(os.environ), server.pid)
    # findscu -v prints every answer, PatientIDs included: parse, then delete it at once.
    text = stdout.read_text(errors="replace") + stdout.with_suffix(".stderr").read_text(errors="replace")
    stdout.unlink()
    stdout.with_suffix(".stderr").unlink()
    parsed = parse_findscu_listing(text)
    counts = {k: parsed[k] for k in COUNT_FIELDS}
    detail = {k: parsed[k] for k in ("answers", "final_status", "patient_ids_printed", "stdout_bytes")}
    return ToolRun("findscu listing", server.name, run, cmd, m, 1, counts, compare(counts, truth), detail)


def median_run(runs: list[ToolRun]) -> ToolRun:
    ordered = sorted(runs, key=lambda r: r.measurement.wall_s)
    return ordered[(len(ordered) - 1) // 2]


def fmt_count(value: Any, exact: bool) -> str:
    """A count, in red where it differs from the truth."""
    if value is None:
        return "[red]—[/red]"
    return str(value) if exact else f"[red]{value}[/red]"


def report(runs: list[ToolRun], truth: dict[str, Any], console: Any) -> dict[str, Any]:
    from rich.table import Table

    keys = list(dict.fromkeys((r.tool, r.server) for r in runs))
    n_runs = max(r.run for r in runs) + 1
    table = Table(
        title=f"census of {truth['studies']} studies / {truth['series']} series / {truth['instances']} "
        f"instances / {truth['patients']} patients (cap {CAP}); median of {n_runs} run(s) by wall clock"
    )
    for col in ("tool", "server", "queries", "wall s", "CPU s", "Orthanc CPU s", "studies / truth",
                "series", "instances", "patients", "years + undated", "exact?"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("tool", "server") else "right")
    summary: dict[str, Any] = {}
    for tool, server in keys:
        group = [r for r in runs if (r.tool, r.server) == (tool, server)]
        r = median_run(group)
        m = r.measurement
        c, e = r.counts, r.exact
        years_ok = e.get("per_year") and e.get("undated")
        table.add_row(
            tool + (" [red](killed)[/red]" if m.killed else (f" rc={m.returncode}" if m.returncode else "")),
            server,
            str(r.queries),
            f"{m.wall_s:.2f}",
            f"{m.cpu_s:.2f}",
            "?" if m.server_cpu_s is None else f"{m.server_cpu_s:.2f}",
            f"{fmt_count(c['studies'], e['studies'])} / {truth['studies']}",
            fmt_count(c["series"], e["series"]),
            fmt_count(c["instances"], e["instances"]),
            fmt_count(c["patients"], e["patients"]),
            "exact" if years_ok else f"[red]undated {c['undated']}/{truth['undated']}[/red]",
            "[green]yes[/green]" if r.all_exact else "[red]no[/red]",
        )
        summary[f"{tool} / {server}"] = {
            "tool": tool,
            "server": server,
            "queries": r.queries,
            "wall_s": round(m.wall_s, 3),
            "cpu_s": round(m.cpu_s, 3),
            "server_cpu_s": None if m.server_cpu_s is None else round(m.server_cpu_s, 3),
            "wall_s_all_runs": [round(x.measurement.wall_s, 3) for x in group],
            "wall_s_median": round(statistics.median(x.measurement.wall_s for x in group), 3),
            "counts": c,
            "exact": e,
            "all_exact": r.all_exact,
            "detail": r.detail,
            "command": r.command,
        }
    console.print(table)
    ratios: dict[str, Any] = {}
    pa, naive = summary.get("pacsaudit / capped"), summary.get("naive month split / capped")
    if pa and naive:
        ratios["naive_split_queries_over_pacsaudit"] = round(naive["queries"] / pa["queries"], 2)
        ratios["naive_split_wall_over_pacsaudit"] = round(naive["wall_s"] / pa["wall_s"], 2)
        d = naive["detail"]
        q_ratio, wall_ratio = (
            ratios["naive_split_queries_over_pacsaudit"],
            ratios["naive_split_wall_over_pacsaudit"],
        )
        console.print(
            f"capped server: pacsaudit {pa['queries']} queries, {pa['wall_s']:.2f} s, "
            f"exact: {pa['all_exact']}; naive month split {naive['queries']} queries ({q_ratio}×), "
            f"{naive['wall_s']:.2f} s ({wall_ratio}×), "
            f"{naive['counts']['studies']}/{truth['studies']} studies: missed {d['missed_total']} = "
            f"{d['missed_in_capped_months']} in {len(d['capped_months'])} month(s) cut at the cap "
            f"({', '.join(f'{k}: {v} studies' for k, v in d['capped_months'].items())}) "
            f"+ {d['missed_undated']} undated"
        )
    fu = summary.get("findscu listing / uncapped")
    if pa and fu:
        ratios["pacsaudit_capped_wall_over_findscu_uncapped"] = round(pa["wall_s"] / fu["wall_s"], 2)
        console.print(
            f"findscu on the uncapped server: 1 query, {fu['wall_s']:.2f} s, exact: {fu['all_exact']}; "
            f"it printed {fu['detail']['patient_ids_printed']} PatientIDs "
            f"({fu['detail']['stdout_bytes']} bytes of listing); pacsaudit writes none"
        )
    return {"tools": summary, "ratios": ratios}


def machine_info() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def versions(findscu: Path | None, orthanc: Path | None) -> dict[str, str]:
    def first_line(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
        except (OSError, subprocess.SubprocessError):
            return "?"
        lines = [x for x in (out.stdout + out.stderr).splitlines() if x.strip()]
        return lines[0].strip() if lines else "?"

    rev = first_line(["git", "-C", str(REPO), "describe", "--always", "--dirty"])
    return {
        "pacsaudit": f"source tree {rev}",
        "findscu": first_line([str(findscu), "--version"]) if findscu else "?",
        "orthanc": first_line([str(orthanc), "--version"]) if orthanc else "?",
    }


def bench(args: argparse.Namespace, console: Any) -> int:
    archives, servers = fixtures()
    from pacsaudit.lab.testdata import capped_archive_spec

    findscu = servers.dcmtk_tool("findscu")
    orthanc_bin = servers.orthanc_binary()
    if orthanc_bin is None:
        console.print("[red]Orthanc is required: apt-get install -y orthanc[/red]")
        return 2
    if findscu is None:
        console.print("[yellow]DCMTK findscu not found (apt-get install -y dcmtk): skipping it[/yellow]")
    limit_s = TIME_LIMIT_S + RUN_EXTRA_S * (args.runs - 1)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="census-bench-") as tmp_name:
        tmp = Path(tmp_name)
        work = tmp / "work"
        work.mkdir()
        with watchdog(tmp, limit_s), contextlib.ExitStack() as stack:
            archive = archives.make_archive(tmp / "archive", capped_archive_spec())
            truth = truth_of(archive)
            per_month: Counter[str] = Counter()
            for day, n in archive.truth.studies_per_day.items():
                per_month[f"{day[:4]}-{day[4:6]}"] += n
            years = (min(archive.truth.study_years), max(archive.truth.study_years))
            console.print(
                f"archive: {truth['studies']} studies, {truth['series']} series, {truth['instances']} "
                f"instances, {truth['patients']} patients, years {years[0]}–{years[1]}, "
                f"{truth['undated']} undated, busiest day {archive.truth.studies_on_busiest_day} studies "
                f"({time.monotonic() - started:.1f} s)"
            )
            configs = {"capped": CAP, "uncapped": 0}
            running: dict[str, Server] = {}
            for name, cap in configs.items():
                t0 = time.monotonic()
                s = stack.enter_context(
                    archives.loaded_orthanc(
                        tmp, archive.files, always_allow_find=True, limit_find_results=cap
                    )
                )
                if s.host != LOOPBACK:
                    raise SystemExit(f"server on {s.host}: loopback only")
                running[name] = Server(name, s.port, orthanc_pid(s.workdir))
                console.print(
                    f"orthanc {name} (LimitFindResults {cap}) on {LOOPBACK}:{s.port}, loaded in "
                    f"{time.monotonic() - t0:.1f} s"
                )
            capped, uncapped = running["capped"], running["uncapped"]
            plan: list[tuple[str, Any]] = [
                ("pacsaudit capped", lambda r: run_pacsaudit(capped, work, r, truth)),
                ("pacsaudit uncapped", lambda r: run_pacsaudit(uncapped, work, r, truth)),
                ("naive capped", lambda r: run_naive(capped, work, r, truth, years, per_month)),
                ("naive uncapped", lambda r: run_naive(uncapped, work, r, truth, years, per_month)),
                ("universal capped", lambda r: run_naive(capped, work, r, truth, None)),
            ]
            if findscu is not None:
                plan += [
                    ("findscu uncapped", lambda r: run_findscu(findscu, uncapped, work, r, truth)),
                    ("findscu capped", lambda r: run_findscu(findscu, capped, work, r, truth)),
                ]
            runs: list[ToolRun] = []
            for r in range(args.runs):
                for _, step in plan:
                    time.sleep(args.settle)
                    run = step(r)
                    runs.append(run)
                    m = run.measurement
                    flag = (
                        " [red]KILLED[/red]" if m.killed else (f" rc={m.returncode}" if m.returncode else "")
                    )
                    console.print(
                        f"  {run.tool:<18} {run.server:<8} run {r + 1}/{args.runs}: {run.queries} queries, "
                        f"{m.wall_s:6.2f} s, CPU {m.cpu_s:5.2f} s, studies {run.counts['studies']}"
                        f"/{truth['studies']}, exact {run.all_exact}{flag}"
                    )
        summary = report(runs, truth, console)
    result = {
        "machine": {**machine_info(), "loadavg_1m_before": round(load_before, 2)},
        "parameters": {
            "runs": args.runs,
            "cap": CAP,
            "archive": "capped_archive_spec()",
            "year_span_given_to_naive_split": list(years),
        },
        "versions": versions(findscu, orthanc_bin),
        "truth": truth,
        **summary,
        "runs": [{**asdict(x), "all_exact": x.all_exact} for x in runs],
        "harness_wall_s": round(time.monotonic() - started, 1),
    }
    text = json.dumps(result, indent=2) + "\n"
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "census_bench.json").write_text(text)
    if args.json:
        args.json.write_text(text)
    console.print(
        f"[dim]results: {OUT_DIR / 'census_bench.json'} (harness {result['harness_wall_s']} s)[/dim]"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["naive-client"]:
        return naive_main(argv[1:])
    if argv[:1] == ["watchdog"]:
        return watchdog_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--runs", type=int, default=1, help="runs per tool; the median wall clock is reported"
    )
    parser.add_argument("--settle", type=float, default=0.5, help="pause before each tool run, seconds")
    parser.add_argument("--json", type=Path, help="also write the machine-readable results here")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 5:
        parser.error("--runs must be between 1 and 5")

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    console = console_for_output()
    try:
        return bench(args, console)
    except KeyboardInterrupt as exc:
        console.print(f"[red]interrupted ({exc or 'Ctrl-C'}): servers stopped, temporary files removed[/red]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
