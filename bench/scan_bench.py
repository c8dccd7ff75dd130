"""Scan benchmark: pacsaudit against nmap's dicom-ping and a pynetdicom C-ECHO sweep.

One run builds the compiled loopback fleet (``bench/fleet/dicom_fleet.c``), starts it, and
scans two fleets with every tool, each tool a subprocess whose wall clock, user+sys CPU and
peak RSS are read with ``os.wait4`` (that child's own resource usage):

* accept-any: N endpoints that accept any AE title and answer C-ECHO;
* mixed: closed ports, tarpits (accept, never answer), malformed peers (an A-ASSOCIATE-AC
  header claiming 0xFFFFFFF0 bytes) and accept-any endpoints, in a fixed shuffled order.

Every tool gets the same targets file and the same per-target timeout. Accuracy is computed
from the fleet's own address -> mode map: an accept-any endpoint must be detected; a tarpit,
malformed or closed endpoint must not be reported as an accepted association.

Every packet goes to 127.0.0.0/8: the fleet refuses other addresses and so does this script.

    python3 bench/scan_bench.py                # full run (about two minutes on 2 cores)
    python3 bench/scan_bench.py --quick        # smaller fleets, one run per tool
    python3 bench/scan_bench.py --tools nmap,pynetdicom --targets 500 --json results.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import platform
import random
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
FLEET_SRC = BENCH / "fleet" / "dicom_fleet.c"
FLEET_BIN = BENCH / "fleet" / "dicom_fleet"
LAUNCHER_SRC = BENCH / "fleet" / "rusage_exec.c"
LAUNCHER_BIN = BENCH / "fleet" / "rusage_exec"
SWEEP = BENCH / "peers" / "pynetdicom_sweep.py"
OUT_DIR = BENCH / "out"
DICOM_PING = Path("/usr/share/nmap/scripts/dicom-ping.nse")

TOOLS = ("pacsaudit", "nmap", "pynetdicom")
PACSAUDIT_WORKERS = 1
"""`--workers` of pacsaudit: processes, one event loop each (`--pacsaudit-workers`)."""
MODES = ("accept-any", "tarpit", "malformed", "closed")
ACCEPT_ANY_BASE = "127.78.0.1"
MIXED_BASE = "127.79.0.1"
STARTUP_TARGET = "127.77.0.1"
"""Nothing listens here: one refused connection measures a tool's fixed cost."""
PACSAUDIT_CONCURRENCY = 256
NMAP_PARALLELISM = 256
SWEEP_THREADS = 16
FLOOR_VS_NMAP = 2.0
FLOOR_VS_PYNETDICOM = 20.0
SHUFFLE_SEED = 20240611

console = Console(width=None if sys.stdout.isatty() else 150)


# --------------------------------------------------------------------------- fleet


@dataclass(frozen=True)
class FleetSpec:
    """A named fleet: consecutive loopback addresses from `base`, in (mode, count) blocks."""

    name: str
    base: str
    groups: tuple[tuple[str, int], ...]

    @property
    def size(self) -> int:
        return sum(n for _, n in self.groups)


def parse_groups(spec: str) -> tuple[tuple[str, int], ...]:
    """`accept-any:200,tarpit:20` -> (("accept-any", 200), ("tarpit", 20))."""
    groups: list[tuple[str, int]] = []
    for part in spec.split(","):
        mode, _, count = part.strip().partition(":")
        if mode not in MODES or not count.isdigit():
            raise argparse.ArgumentTypeError(f"bad fleet block {part!r}: want MODE:COUNT, MODE in {MODES}")
        groups.append((mode, int(count)))
    return tuple(groups)


def build_binaries() -> None:
    """Compile the fleet server and the rusage launcher when missing or older than their source."""
    for src, binary in ((FLEET_SRC, FLEET_BIN), (LAUNCHER_SRC, LAUNCHER_BIN)):
        if binary.exists() and binary.stat().st_mtime >= src.stat().st_mtime:
            continue
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise SystemExit("no C compiler: apt-get install -y gcc")
        cmd = [cc, "-O2", "-Wall", "-Wextra", "-o", str(binary), str(src)]
        console.print(f"[dim]building: {' '.join(cmd)}[/dim]")
        subprocess.run(cmd, check=True, timeout=120)


def proc_cpu_seconds(pid: int) -> float:
    """CPU time of a running single-threaded process: /proc schedstat (ns), else stat (ticks)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Fleet:
    """The compiled fleet as a context manager; it stops on exit, or by itself after `lifetime`."""

    def __init__(self, spec: FleetSpec, port: int, workdir: Path, lifetime: int) -> None:
        self.spec = spec
        self.port = port
        self.map_path = workdir / f"fleet-{spec.name}.json"
        self.lifetime = lifetime
        self.proc: subprocess.Popen[bytes] | None = None
        self.hosts: dict[str, str] = {}
        self.stats = ""

    def __enter__(self) -> Fleet:
        self.map_path.unlink(missing_ok=True)
        cmd = [
            str(FLEET_BIN),
            "--base",
            self.spec.base,
            "--port",
            str(self.port),
            "--map",
            str(self.map_path),
        ]
        cmd += ["--lifetime", str(self.lifetime)]
        for mode, count in self.spec.groups:
            cmd += ["--fleet", f"{mode}:{count}"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 15.0)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("READY"):
            self.__exit__(None, None, None)
            raise SystemExit(f"fleet did not start: {line!r} {self.stats}")
        data = json.loads(self.map_path.read_text())
        self.hosts = dict(data["hosts"])
        for ip in self.hosts:
            if not ipaddress.ip_address(ip).is_loopback:
                raise SystemExit(f"fleet map holds a non-loopback address {ip}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
        self.stats = err.decode(errors="replace").strip()

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return proc_cpu_seconds(self.proc.pid)


# --------------------------------------------------------------------------- measuring


@dataclass
class Measurement:
    """Wall clock and the tool's own rusage (wait4 in the launcher), plus the harness's wait4."""

    wall_s: float
    user_s: float
    sys_s: float
    maxrss_mb: float
    returncode: int
    killed: bool
    outer_wall_s: float
    """Wall clock seen by the harness, launcher included."""
    outer_cpu_s: float
    """user+sys from the harness's os.wait4 on the launcher: the tool plus the launcher's ~1 ms."""


def run_measured(cmd: Sequence[str], stdout: Path, limit_s: float, env: dict[str, str]) -> Measurement:
    """Run `cmd` under the rusage launcher; kill its process group if it outlives `limit_s`.

    The launcher forks the tool from a tiny address space, so ru_maxrss is the tool's own peak
    (a child forked from this Python process would inherit our ~60 MB high-water mark). The
    harness reaps the launcher with os.wait4 as a cross-check of the CPU figure.
    """
    stderr = stdout.with_suffix(stdout.suffix + ".stderr")
    usage_file = stdout.with_suffix(".rusage.json")
    usage_file.unlink(missing_ok=True)
    argv = [str(LAUNCHER_BIN), str(usage_file), *cmd]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=REPO, start_new_session=True)
        reaped: list[tuple[int, Any, float]] = []

        def reap() -> None:
            _, status, usage = os.wait4(proc.pid, 0)
            reaped.append((status, usage, time.perf_counter()))

        waiter = threading.Thread(target=reap, daemon=True)
        waiter.start()
        waiter.join(limit_s)
        killed = waiter.is_alive()
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
            waiter.join(30)
    status, usage, end = reaped[0]
    proc.returncode = os.waitstatus_to_exitcode(status)
    outer_cpu = usage.ru_utime + usage.ru_stime
    inner = json.loads(usage_file.read_text()) if usage_file.exists() else None
    if inner is None:  # killed before the launcher could write: fall back to the outer figures
        inner = {"wall_s": end - start, "user_s": usage.ru_utime, "sys_s": usage.ru_stime, "maxrss_kb": 0}
    return Measurement(
        wall_s=inner["wall_s"],
        user_s=inner["user_s"],
        sys_s=inner["sys_s"],
        maxrss_mb=inner["maxrss_kb"] / 1024,
        returncode=proc.returncode,
        killed=killed,
        outer_wall_s=end - start,
        outer_cpu_s=outer_cpu,
    )


@dataclass
class Verdict:
    """What a tool said about one target."""

    detected: bool = False
    accepted: bool = False
    echo: bool | None = None


@dataclass
class ToolRun:
    tool: str
    fleet: str
    run: int
    targets: int
    command: list[str]
    measurement: Measurement
    fleet_cpu_s: float
    correct: int
    per_mode: dict[str, list[int]]
    """mode -> [correct, total]."""
    echo_ok: int | None
    missing: int

    @property
    def targets_per_s(self) -> float:
        return self.targets / self.measurement.wall_s

    @property
    def cpu_us_per_target(self) -> float:
        m = self.measurement
        return (m.user_s + m.sys_s) / self.targets * 1e6

    @property
    def accuracy(self) -> float:
        return self.correct / self.targets

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            targets_per_s=round(self.targets_per_s, 1),
            cpu_us_per_target=round(self.cpu_us_per_target, 1),
            accuracy=round(self.accuracy, 4),
            fleet_cpu_us_per_target=round(self.fleet_cpu_s / self.targets * 1e6, 1),
        )
        return d


def score(hosts: dict[str, str], verdicts: dict[str, Verdict]) -> tuple[int, dict[str, list[int]], int]:
    """Correct answers against the fleet's own map, per mode, and how many targets had no record."""
    per_mode: dict[str, list[int]] = {}
    correct = 0
    for ip, mode in hosts.items():
        v = verdicts.get(ip, Verdict())
        ok = v.detected if mode == "accept-any" else not v.accepted
        slot = per_mode.setdefault(mode, [0, 0])
        slot[0] += ok
        slot[1] += 1
        correct += ok
    missing = sum(1 for ip in hosts if ip not in verdicts)
    return correct, per_mode, missing


# --------------------------------------------------------------------------- tools


@dataclass(frozen=True)
class Tool:
    name: str
    command: Callable[[Path, Path, int, float], list[str]]
    """(targets file, output file, port, timeout) -> argv."""
    parse: Callable[[Path, Path], dict[str, Verdict]]
    """(output file, stdout file) -> verdicts by IP."""
    output_suffix: str


def pacsaudit_cmd(targets: Path, out: Path, port: int, timeout: float) -> list[str]:
    return [
        sys.executable, "-m", "pacsaudit", "scan", "-iL", str(targets), "-p", str(port), "-o", str(out),
        "-q", "--rate", "0", "--concurrency", str(PACSAUDIT_CONCURRENCY),
        "--timeout", f"{timeout:g}", "--deadline", f"{timeout:g}", "--no-ae-dictionary",
        "--workers", str(PACSAUDIT_WORKERS), "--no-db",
    ]  # fmt: skip


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON Lines file; a torn last line (a killed tool) is skipped, not fatal."""
    records: list[dict[str, Any]] = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "ip" in rec:
                records.append(rec)
    return records


def pacsaudit_parse(out: Path, _stdout: Path) -> dict[str, Verdict]:
    verdicts: dict[str, Verdict] = {}
    for rec in json_lines(out):
        d = rec.get("dicom") or {}
        verdicts[rec["ip"]] = Verdict(
            detected=d.get("detected") is True,
            accepted=d.get("association") == "accepted",
            echo=d.get("echo") is True,
        )
    return verdicts


def nmap_flags(timeout: float) -> list[str]:
    """Timing flags: -T4, no retries, NSE socket parallelism raised to pacsaudit's concurrency.

    NSE lets max(20, --max-parallelism) script threads hold a connected socket (nse_nsock.cc),
    so without --max-parallelism dicom-ping runs 20 at a time (256 matches pacsaudit's
    --concurrency; 128, 512 and --min-hostgroup 1024/4096 measured no faster). The script timeout is the
    per-target timeout; --host-timeout is left unset: the script timeout already bounds the
    per-target work, and a host that hits the host timeout loses its results altogether.
    """
    return [
        "-T4", "--max-retries", "0", "--max-parallelism", str(NMAP_PARALLELISM),
        "--script-timeout", f"{int(timeout * 1000)}ms",
    ]  # fmt: skip


def nmap_cmd(targets: Path, out: Path, port: int, timeout: float) -> list[str]:
    base = ["nmap", "-sT", "-Pn", "-n", "-p", str(port), "--script", "dicom-ping", "-oX", str(out)]
    return [*base, *nmap_flags(timeout), "-iL", str(targets)]


def nmap_parse(out: Path, _stdout: Path) -> dict[str, Verdict]:
    verdicts: dict[str, Verdict] = {}
    try:
        root = ET.parse(out).getroot()
    except (OSError, ET.ParseError):
        return verdicts
    for host in root.iter("host"):
        addr = host.find("address")
        if addr is None:
            continue
        v = Verdict()
        for script in host.iter("script"):
            if script.get("id") != "dicom-ping":
                continue
            elems = {e.get("key"): (e.text or "") for e in script.iter("elem")}
            v.detected = "discovered" in elems.get("dicom", "")
            v.accepted = elems.get("config", "").startswith("Any AET is accepted")
        verdicts[addr.get("addr", "")] = v
    return verdicts


def sweep_cmd(targets: Path, _out: Path, port: int, timeout: float) -> list[str]:
    return [
        sys.executable, str(SWEEP), "-iL", str(targets), "-p", str(port),
        "--timeout", f"{timeout:g}", "--threads", str(SWEEP_THREADS),
    ]  # fmt: skip


def sweep_parse(_out: Path, stdout: Path) -> dict[str, Verdict]:
    return {
        rec["ip"]: Verdict(rec.get("detected") is True, rec.get("accepted") is True, rec.get("echo") is True)
        for rec in json_lines(stdout)
    }


TOOL_TABLE: dict[str, Tool] = {
    "pacsaudit": Tool("pacsaudit", pacsaudit_cmd, pacsaudit_parse, ".jsonl"),
    "nmap": Tool("nmap", nmap_cmd, nmap_parse, ".xml"),
    "pynetdicom": Tool("pynetdicom", sweep_cmd, sweep_parse, ".jsonl"),
}


def check_prerequisites(tools: Sequence[str]) -> list[str]:
    """Return the tools that can run; install nmap when root, else say how."""
    usable = list(tools)
    if "nmap" in tools and (shutil.which("nmap") is None or not DICOM_PING.exists()):
        if os.geteuid() == 0 and shutil.which("apt-get"):
            console.print("[yellow]nmap or dicom-ping missing: apt-get install -y nmap[/yellow]")
            subprocess.run(["apt-get", "install", "-y", "nmap"], check=False, timeout=600)
        if shutil.which("nmap") is None or not DICOM_PING.exists():
            console.print("[red]nmap with dicom-ping is required: sudo apt-get install -y nmap[/red]")
            usable.remove("nmap")
    if "pynetdicom" in tools:
        try:
            import pynetdicom  # noqa: F401
        except ImportError:
            console.print("[red]pynetdicom missing: python3 -m pip install pynetdicom[/red]")
            usable.remove("pynetdicom")
    if "pacsaudit" in tools:
        env = tool_env()
        probe = subprocess.run(
            [sys.executable, "-m", "pacsaudit", "scan", "--help"],
            env=env, cwd=REPO, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        if probe.returncode != 0:
            console.print("[red]`python -m pacsaudit scan` is not available; skipping pacsaudit[/red]")
            usable.remove("pacsaudit")
    return usable


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def tool_version(tool: str) -> str:
    try:
        if tool == "nmap":
            out = subprocess.run(["nmap", "--version"], capture_output=True, text=True, timeout=30).stdout
            return out.splitlines()[0] if out else "?"
        if tool == "pynetdicom":
            import pynetdicom

            return f"pynetdicom {pynetdicom.__version__}"
        rev = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=30, check=False,
        ).stdout.strip()  # fmt: skip
        return f"pacsaudit (source tree {rev or '?'})"
    except (OSError, subprocess.SubprocessError, ImportError, IndexError):
        return "?"


# --------------------------------------------------------------------------- the run


def bench_fleet(
    spec: FleetSpec, tools: Sequence[str], args: argparse.Namespace, workdir: Path
) -> list[ToolRun]:
    """Start one fleet, write its targets file, run every tool `args.runs` times (rotating order)."""
    runs: list[ToolRun] = []
    limit_s = 60 + spec.size * args.timeout / 8
    lifetime = int(60 + len(tools) * args.runs * limit_s)
    with Fleet(spec, args.port, workdir, lifetime) as fleet:
        ips = list(fleet.hosts)
        if spec.name != "accept-any":
            random.Random(SHUFFLE_SEED).shuffle(ips)
        targets = workdir / f"targets-{spec.name}.txt"
        targets.write_text("".join(ip + "\n" for ip in ips))
        env = tool_env()
        for r in range(args.runs):
            order = list(tools[r % len(tools) :]) + list(tools[: r % len(tools)])
            for name in order:
                tool = TOOL_TABLE[name]
                out = workdir / f"{spec.name}-{name}-{r}{tool.output_suffix}"
                stdout = workdir / f"{spec.name}-{name}-{r}.stdout"
                out.unlink(missing_ok=True)
                cmd = tool.command(targets, out, args.port, args.timeout)
                time.sleep(args.settle)
                fleet_cpu0 = fleet.cpu_seconds()
                m = run_measured(cmd, stdout, limit_s, env)
                fleet_cpu = fleet.cpu_seconds() - fleet_cpu0
                verdicts = tool.parse(out, stdout)
                correct, per_mode, missing = score(fleet.hosts, verdicts)
                echo_ok = None
                if name != "nmap":
                    echo_ok = sum(
                        1 for ip, v in verdicts.items() if v.echo and fleet.hosts.get(ip) == "accept-any"
                    )
                run = ToolRun(
                    name, spec.name, r, len(ips), cmd, m, fleet_cpu, correct, per_mode, echo_ok, missing
                )
                runs.append(run)
                flag = " [red]KILLED[/red]" if m.killed else (f" rc={m.returncode}" if m.returncode else "")
                console.print(
                    f"  {spec.name:<10} {name:<10} run {r + 1}/{args.runs}:"
                    f" {run.targets_per_s:8.1f} targets/s"
                    f"  {run.cpu_us_per_target:7.0f} µs CPU/target  {m.maxrss_mb:6.1f} MB"
                    f"  accuracy {run.correct}/{run.targets}{flag}"
                )
    console.print(f"  [dim]fleet {spec.name}: {fleet.stats}[/dim]")
    return runs


def measure_startup(tools: Sequence[str], args: argparse.Namespace, workdir: Path) -> dict[str, Measurement]:
    """Each tool's fixed cost (interpreter, imports, nmap's script engine): one refused target."""
    import socket

    probe = socket.socket()
    probe.settimeout(2)
    try:
        refused = probe.connect_ex((STARTUP_TARGET, args.port)) != 0
    finally:
        probe.close()
    if not refused:
        console.print(f"[yellow]{STARTUP_TARGET}:{args.port} is listening; skipping the startup measurement")
        return {}
    targets = workdir / "targets-startup.txt"
    targets.write_text(STARTUP_TARGET + "\n")
    fixed: dict[str, Measurement] = {}
    for name in tools:
        tool = TOOL_TABLE[name]
        out = workdir / f"startup-{name}{tool.output_suffix}"
        out.unlink(missing_ok=True)
        cmd = tool.command(targets, out, args.port, args.timeout)
        fixed[name] = m = run_measured(cmd, workdir / f"startup-{name}.stdout", 120, tool_env())
        console.print(
            f"  startup    {name:<10} {m.wall_s:6.3f} s wall, {(m.user_s + m.sys_s) * 1e3:6.0f} ms CPU, "
            f"{m.maxrss_mb:5.1f} MB"
        )
    return fixed


def median_run(runs: list[ToolRun]) -> ToolRun:
    """The run with the median targets/s (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda r: r.targets_per_s)
    return ordered[(len(ordered) - 1) // 2]


def report(
    fleets: list[FleetSpec], runs: list[ToolRun], tools: Sequence[str], fixed: dict[str, Measurement]
) -> dict[str, Any]:
    """Print one table per fleet and return the summary (medians, ratios, floors)."""
    summary: dict[str, Any] = {}
    for spec in fleets:
        med = {t: median_run([r for r in runs if r.fleet == spec.name and r.tool == t]) for t in tools}
        blocks = ", ".join(f"{m}:{n}" for m, n in spec.groups)
        n_runs = sum(1 for r in runs if r.fleet == spec.name and r.tool == tools[0])
        table = Table(title=f"{spec.name} fleet: {spec.size} targets ({blocks}); median of {n_runs} run(s)")
        columns = ("tool", "wall s", "targets/s", "CPU µs/target", "peak RSS MB", "accuracy", "by mode",
                   "echo ok", "fleet CPU µs/target", "pacsaudit ×")  # fmt: skip
        for col in columns:
            table.add_column(col, justify="left" if col in ("tool", "by mode") else "right")
        fleet_summary: dict[str, Any] = {}
        for t, r in med.items():
            ratio = None
            if "pacsaudit" in med and t != "pacsaudit":
                ratio = med["pacsaudit"].targets_per_s / r.targets_per_s
            by_mode = " ".join(f"{m} {c}/{n}" for m, (c, n) in r.per_mode.items())
            fleet_us = r.fleet_cpu_s / r.targets * 1e6
            table.add_row(
                t + (" [red](killed)[/red]" if r.measurement.killed else ""),
                f"{r.measurement.wall_s:.2f}",
                f"{r.targets_per_s:.0f}",
                f"{r.cpu_us_per_target:.0f}",
                f"{r.measurement.maxrss_mb:.0f}",
                f"{r.correct}/{r.targets}",
                by_mode,
                "n/a" if r.echo_ok is None else str(r.echo_ok),
                f"{fleet_us:.0f}",
                "" if ratio is None else f"{ratio:.2f}",
            )
            fleet_summary[t] = {
                "targets": r.targets,
                "wall_s": round(r.measurement.wall_s, 3),
                "targets_per_s": round(r.targets_per_s, 1),
                "cpu_us_per_target": round(r.cpu_us_per_target, 1),
                "peak_rss_mb": round(r.measurement.maxrss_mb, 1),
                "accuracy": round(r.accuracy, 4),
                "correct": r.correct,
                "per_mode": r.per_mode,
                "echo_ok": r.echo_ok,
                "missing_records": r.missing,
                "fleet_cpu_us_per_target": round(fleet_us, 1),
                "targets_per_s_all_runs": [
                    round(x.targets_per_s, 1) for x in runs if x.fleet == spec.name and x.tool == t
                ],
                "pacsaudit_ratio": None if ratio is None else round(ratio, 2),
            }
        console.print(table)
        summary[spec.name] = fleet_summary

    startup: dict[str, Any] = {}
    if fixed:
        table = Table(title="fixed cost per run: one refused target (interpreter, imports, script engine)")
        for col in ("tool", "wall s", "CPU ms", "peak RSS MB"):
            table.add_column(col, justify="left" if col == "tool" else "right")
        for t, m in fixed.items():
            table.add_row(t, f"{m.wall_s:.3f}", f"{(m.user_s + m.sys_s) * 1e3:.0f}", f"{m.maxrss_mb:.0f}")
            startup[t] = {"wall_s": round(m.wall_s, 3), "cpu_ms": round((m.user_s + m.sys_s) * 1e3, 1),
                          "peak_rss_mb": round(m.maxrss_mb, 1)}  # fmt: skip
        console.print(table)

    floors: dict[str, Any] = {}
    aa = summary.get("accept-any", {})
    if "pacsaudit" in aa:
        for peer, floor in (("nmap", FLOOR_VS_NMAP), ("pynetdicom", FLOOR_VS_PYNETDICOM)):
            if peer in aa:
                ratio = aa["pacsaudit"]["targets_per_s"] / aa[peer]["targets_per_s"]
                acc_ok = all(s["pacsaudit"]["accuracy"] >= s[peer]["accuracy"] for s in summary.values())
                floors[peer] = {"floor": floor, "ratio": round(ratio, 2), "accuracy_ok": acc_ok,
                                "pass": ratio >= floor and acc_ok}  # fmt: skip
                verdict = "[green]PASS[/green]" if floors[peer]["pass"] else "[red]FAIL[/red]"
                console.print(
                    f"floor pacsaudit/{peer} ≥ {floor:g}× targets/s on accept-any: {ratio:.2f}× "
                    f"(accuracy ≥ peer on every fleet: {acc_ok}) {verdict}"
                )
    return {"fleets": summary, "startup": startup, "floors": floors}


def machine_info() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    global PACSAUDIT_WORKERS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--targets", type=int, help="accept-any fleet size (default 5000, --quick 300)")
    parser.add_argument(
        "--mixed", type=parse_groups, help="mixed fleet, e.g. accept-any:200,closed:50,tarpit:50"
    )
    parser.add_argument(
        "--timeout", type=float, default=2.0, help="per-target timeout for every tool, seconds"
    )
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help="comma-separated subset of " + ",".join(TOOLS)
    )
    parser.add_argument("--fleets", default="accept-any,mixed", help="accept-any, mixed or both")
    parser.add_argument(
        "--runs", type=int, help="runs per tool per fleet; the median is reported (default 3)"
    )
    parser.add_argument("--port", type=int, default=11112)
    parser.add_argument("--settle", type=float, default=1.0, help="pause before each tool run, seconds")
    parser.add_argument("--json", type=Path, help="also write the machine-readable results here")
    parser.add_argument("--quick", action="store_true", help="small fleets, one run per tool")
    parser.add_argument("--check", action="store_true", help="exit 1 when a floor is missed")
    parser.add_argument(
        "--pacsaudit-workers", type=int, default=PACSAUDIT_WORKERS, help="pacsaudit --workers (processes)"
    )
    args = parser.parse_args(argv)
    PACSAUDIT_WORKERS = args.pacsaudit_workers

    if args.quick:
        args.targets = args.targets or 300
        args.mixed = args.mixed or parse_groups("accept-any:100,closed:20,tarpit:20,malformed:20")
        args.runs = args.runs or 1
    args.targets = args.targets or 5000
    args.mixed = args.mixed or parse_groups("accept-any:200,closed:50,tarpit:50,malformed:50")
    args.runs = args.runs or 3
    if args.targets < 1 or args.runs < 1 or not 0 < args.timeout <= 60:
        parser.error("--targets and --runs must be positive, --timeout in (0, 60]")
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    if unknown := set(tools) - set(TOOLS):
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")

    fleets = []
    wanted = {f.strip() for f in args.fleets.split(",")}
    if "accept-any" in wanted:
        fleets.append(FleetSpec("accept-any", ACCEPT_ANY_BASE, (("accept-any", args.targets),)))
    if "mixed" in wanted:
        fleets.append(FleetSpec("mixed", MIXED_BASE, args.mixed))

    tools = check_prerequisites(tools)
    if not tools or not fleets:
        console.print("[red]nothing to run[/red]")
        return 2
    build_binaries()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    workdir = OUT_DIR / "work"
    workdir.mkdir(exist_ok=True)

    console.print(
        f"scan benchmark: tools {', '.join(tools)}; per-target timeout {args.timeout:g} s; "
        f"{args.runs} run(s) each; {os.cpu_count()} CPUs"
    )
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        console.print(
            f"[yellow]load average {load_before:.2f}: other work shares the CPUs; expect noise[/yellow]"
        )
    fixed = measure_startup(tools, args, workdir)
    all_runs: list[ToolRun] = []
    for spec in fleets:
        all_runs += bench_fleet(spec, tools, args, workdir)
    summary = report(fleets, all_runs, tools, fixed)

    result = {
        "machine": {**machine_info(), "loadavg_1m_before": round(load_before, 2)},
        "parameters": {
            "timeout_s": args.timeout,
            "runs": args.runs,
            "port": args.port,
            "tools": tools,
            "fleets": {f.name: {"base": f.base, "groups": [list(g) for g in f.groups]} for f in fleets},
            "pacsaudit_concurrency": PACSAUDIT_CONCURRENCY,
            "pacsaudit_workers": PACSAUDIT_WORKERS,
            "nmap_flags": nmap_flags(args.timeout),
            "pynetdicom_threads": SWEEP_THREADS,
            "mixed_order": f"shuffled, seed {SHUFFLE_SEED}",
        },
        "versions": {t: tool_version(t) for t in tools},
        **summary,
        "runs": [r.summary() for r in all_runs],
    }
    text = json.dumps(result, indent=2) + "\n"
    (OUT_DIR / "scan_bench.json").write_text(text)
    if args.json:
        args.json.write_text(text)
    console.print(f"[dim]results: {OUT_DIR / 'scan_bench.json'}[/dim]")
    if args.check and not all(f["pass"] for f in summary["floors"].values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
