"""Storage benchmark: observations written per second and peak RSS, and diff time, on SQLite
and on PostgreSQL.

One run measures, for each backend, in child processes started through the rusage launcher
(``bench/fleet/rusage_exec``, so a child's peak RSS is its own and not this harness's):

* **writes**: N synthetic observations (default 1,000,000) through `ScanStore.write_batch`,
  batches of 1,000 with a `LowWaterMark`, into a fresh SQLite file / a fresh PostgreSQL
  database. Half are closed ports; the other half is the mix of ``tests/storage/synthetic.py``
  (open archives with a census, archives that reject strangers, other services, timeouts).
* **diff**: two scans of M endpoints each (default 100,000) stored in a fresh database, the
  later one differing the way a rescan does (systems new and gone, AE checks added and
  dropped, versions upgraded, census counts grown); then `pacsaudit.reports.diff_from_store`
  timed in a child, and ``pacsaudit diff A B --format json --db URL`` end to end. The harness
  knows what the diff must find and checks it.

PostgreSQL is the local cluster on 127.0.0.1:5432 (user postgres, trust); every database is
created with a unique name and dropped at the end, as are the temporary SQLite files.

    python3 bench/storage_bench.py                       # about 5 minutes on 2 cores
    python3 bench/storage_bench.py --observations 100000 --diff-endpoints 10000 --backends sqlite
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rich.console import Console

    from pacsaudit.model import EndpointResult
    from pacsaudit.storage import ScanStore

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SYNTHETIC = REPO / "tests" / "storage" / "synthetic.py"
OUT_DIR = BENCH / "out"
DEFAULT_JSON = OUT_DIR / "storage_bench.json"

BACKENDS = ("sqlite", "postgresql")
BATCH = 1_000
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
DIFF_SEED = 20260126
PORT = 104
EARLIER_STAMP = "2026-01-05T10:00:00.000Z"
LATER_STAMP = "2026-03-06T10:00:00.000Z"
"""The later scan is 60 days on, as in the seed's diff."""
SCOPE = {"targets": ["127.0.0.0/8"], "ports": str(PORT), "exclude": []}
"""Both scans' recorded arguments: every synthetic endpoint is inside, so a system with no
record in the later scan is *gone*, not *not rescanned*."""

# How the later scan differs, as fractions of the earlier scan's endpoints (u) and of its
# census archives (v). Synthetic kind = index % 4: 0 open archive with a census, 1 rejects
# strangers, 2 not DICOM, 3 timeout.
ABSENT = 0.03
"""No record in the later scan (gone, if it was DICOM); as many new endpoints are added."""
SWITCHED = 0.01
"""A system that stopped speaking DICOM, or a non-DICOM endpoint that became an open archive."""
UPGRADED = 0.02
"""An open archive with a new version / an archive that rejected strangers, now open to any AE."""
LOCKED = 0.01
"""An open archive that added an AE title check (rejects strangers now)."""
GROWN = 0.85
"""Share of the remaining open archives whose census counts grew (studies up to +40 %,
instances up to +60 %, series up to +50 %, patients up to +30 %)."""


# =========================================================================== child side
# The children import only the standard library, pacsaudit and the synthetic generator, so
# their peak RSS is what storage and diff need, not what the harness (rich, psycopg) needs.


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


@dataclass(frozen=True)
class Synthetic:
    """`tests/storage/synthetic.py`, imported by path (tests/ is not a package on sys.path)."""

    result: Callable[..., EndpointResult]
    address: Callable[[int], str]

    @classmethod
    def load(cls) -> Synthetic:
        spec = importlib.util.spec_from_file_location("pacsaudit_bench_synthetic", SYNTHETIC)
        if spec is None or spec.loader is None:
            raise SystemExit(f"cannot import {SYNTHETIC}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return cls(
            cast("Callable[..., EndpointResult]", module.synthetic_result),
            cast("Callable[[int], str]", module.loopback_address),
        )


def mixed_result(synthetic: Synthetic, index: int) -> EndpointResult:
    """Half closed ports (what `--all` stores for most of a range), half synthetic.py's mix."""
    from pacsaudit.model import EndpointResult, Status

    if index % 8 < 4:
        return synthetic.result(index, port=PORT)
    return EndpointResult(
        ip=synthetic.address(index),
        port=PORT,
        status=Status.CONNECTION_REFUSED,
        elapsed_ms=0.25,
        timestamp=f"2026-01-{1 + index % 28:02d}T{index % 24:02d}:00:00.{index % 1000:03d}Z",
    )


class BackendCpu:
    """CPU time of the PostgreSQL server processes serving this database (none for SQLite)."""

    def __init__(self, store: ScanStore) -> None:
        self._store = store
        self._start = self._sample()

    def _sample(self) -> dict[int, float]:
        import sqlalchemy as sa

        if self._store.engine.dialect.name != "postgresql":
            return {}
        with self._store.engine.connect() as conn:
            pids = conn.execute(
                sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            ).scalars()
            return {int(pid): cpu for pid in pids if (cpu := _proc_cpu_s(int(pid))) is not None}

    def used_s(self) -> float | None:
        if self._store.engine.dialect.name != "postgresql":
            return None
        end = self._sample()
        return sum(cpu - self._start.get(pid, 0.0) for pid, cpu in end.items())


def _proc_cpu_s(pid: int) -> float | None:
    """user+sys of a (single-threaded) process: /proc schedstat in ns, else stat in ticks."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None


def _database_mb(store: ScanStore, url: str) -> float:
    import sqlalchemy as sa

    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as conn:
            size = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
        return int(size) / 2**20
    path = Path(url.removeprefix("sqlite:///"))
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20


def _stored(store: ScanStore, scan_id: int) -> int:
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        count = conn.execute(
            sa.text("SELECT count(*) FROM observations WHERE scan_id = :id"), {"id": scan_id}
        ).scalar_one()
    return int(count)


def child_write(url: str, count: int, batch_size: int) -> dict[str, Any]:
    """Write `count` observations in batches; time and CPU inside `write_batch` only."""
    from pacsaudit.storage import LowWaterMark, ScanStore

    synthetic = Synthetic.load()
    rss_imports = _maxrss_mb()
    write_s = write_cpu_s = 0.0
    rss_tenth: float | None = None
    loop_started = time.perf_counter()
    with ScanStore.open(url) as store:
        scan_id = store.create_scan(
            {"bench": "storage writes"}, targets_estimated=count, tool_version="bench"
        )
        server = BackendCpu(store)
        lwm = LowWaterMark()
        for start in range(0, count, batch_size):
            pending: list[tuple[int, EndpointResult]] = []
            for position in range(start, min(start + batch_size, count)):
                lwm.started(position)
                pending.append((position, mixed_result(synthetic, position)))
                lwm.finished(position)
            wall, cpu = time.perf_counter(), _cpu_s()
            store.write_batch(scan_id, pending, low_water_mark=lwm.mark, endpoints_done=start + len(pending))
            write_cpu_s += _cpu_s() - cpu
            write_s += time.perf_counter() - wall
            if rss_tenth is None and start + len(pending) >= count // 10:
                rss_tenth = _maxrss_mb()
        store.finish_scan(scan_id, "finished")
        loop_s = time.perf_counter() - loop_started
        server_cpu_s = server.used_s()
        stored = _stored(store, scan_id)
        record = store.scan(scan_id)
        database_mb = _database_mb(store, url)
    return {
        "observations": count,
        "stored": stored,
        "low_water_mark": None if record is None else record.low_water_mark,
        "write_s": write_s,
        "write_cpu_s": write_cpu_s,
        "loop_s": loop_s,
        "server_cpu_s": server_cpu_s,
        "rss_after_imports_mb": rss_imports,
        "rss_after_tenth_mb": rss_tenth,
        "database_mb": database_mb,
    }


# --- the two scans for the diff


@dataclass
class Expected:
    """What `pacsaudit diff` must report for the two generated scans."""

    new: int = 0
    gone: int = 0
    changed: int = 0
    unchanged: int = 0
    earlier_records: int = 0
    later_records: int = 0


class RescanPlan:
    """An earlier scan of `size` endpoints and a later one of the same size, 60 days on."""

    def __init__(self, size: int, synthetic: Synthetic) -> None:
        self.size = size
        self.synthetic = synthetic
        rng = random.Random(DIFF_SEED)
        self._u = [rng.random() for _ in range(size)]
        self._v = [rng.random() for _ in range(size)]
        self.absent = sum(1 for u in self._u if u < ABSENT)
        self.expected = Expected(earlier_records=size, later_records=size)

    def _result(self, index: int, stamp: str, *, like: int | None = None) -> EndpointResult:
        """synthetic.py's result for `index`, or for `like` moved to `index`'s address."""
        if like is None:
            return self.synthetic.result(index, port=PORT, timestamp=stamp)
        twin = self.synthetic.result(like, port=PORT, timestamp=stamp)
        return twin.model_copy(update={"ip": self.synthetic.address(index)})

    def earlier(self) -> Iterator[EndpointResult]:
        for index in range(self.size):
            yield self._result(index, EARLIER_STAMP)

    def later(self) -> Iterator[EndpointResult]:
        """The rescan, in index order; fills `expected` as it goes."""
        e = self.expected
        for index in range(self.size):
            u, v, kind = self._u[index], self._v[index], index % 4
            dicom = kind in (0, 1)
            if u < ABSENT:
                e.gone += dicom
                continue
            if u < ABSENT + SWITCHED:
                if dicom:  # stopped speaking DICOM
                    e.gone += 1
                    yield self._result(index - kind + 2, LATER_STAMP).model_copy(
                        update={"ip": self.synthetic.address(index)}
                    )
                else:  # a new open archive on an address that answered something else
                    e.new += 1
                    yield self._result(index, LATER_STAMP, like=index - kind)
                continue
            if kind == 1 and u < ABSENT + SWITCHED + UPGRADED:  # opened to any AE
                e.changed += 1
                yield self._result(index, LATER_STAMP, like=index - 1)
                continue
            if kind != 0:
                e.unchanged += dicom
                yield self._result(index, LATER_STAMP)
                continue
            if ABSENT + SWITCHED + UPGRADED <= u < ABSENT + SWITCHED + UPGRADED + LOCKED:  # AE check added
                e.changed += 1
                yield self._result(index, LATER_STAMP, like=index + 1)
                continue
            result = self._result(index, LATER_STAMP)
            upgraded = u < ABSENT + SWITCHED + UPGRADED
            grown = v < GROWN
            if upgraded or grown:
                e.changed += 1
                result = self._changed(result, upgraded, v / GROWN if grown else None)
            else:
                e.unchanged += 1
            yield result
        for index in range(self.size, self.size + self.absent):  # as many new endpoints as absent
            e.new += index % 4 in (0, 1)
            yield self._result(index, LATER_STAMP)

    @staticmethod
    def _changed(result: EndpointResult, upgraded: bool, growth: float | None) -> EndpointResult:
        d = result.dicom
        assert d is not None and d.counts is not None
        update: dict[str, Any] = {}
        if upgraded:
            update["version"] = f"{d.version}.1"
        if growth is not None:
            c = d.counts
            assert c.studies and c.series and c.instances and c.patients
            update["counts"] = c.model_copy(
                update={
                    "studies": c.studies + 1 + int(c.studies * 0.4 * growth),
                    "series": c.series + 1 + int(c.series * 0.5 * growth),
                    "instances": c.instances + 1 + int(c.instances * 0.6 * growth),
                    "patients": c.patients + int(c.patients * 0.3 * growth),
                }
            )
        return result.model_copy(update={"dicom": d.model_copy(update=update)})


def _write_scan(store: ScanStore, results: Iterator[EndpointResult], batch_size: int) -> int:
    from pacsaudit.storage import LowWaterMark

    scan_id = store.create_scan(dict(SCOPE), targets_estimated=None, tool_version="bench")
    lwm = LowWaterMark()
    pending: list[tuple[int, EndpointResult]] = []
    position = -1
    for position, result in enumerate(results):
        lwm.started(position)
        pending.append((position, result))
        lwm.finished(position)
        if len(pending) == batch_size:
            store.write_batch(scan_id, pending, low_water_mark=lwm.mark, endpoints_done=position + 1)
            pending = []
    store.write_batch(scan_id, pending, low_water_mark=lwm.mark, endpoints_done=position + 1)
    store.finish_scan(scan_id, "finished")
    return scan_id


def child_populate(url: str, size: int, batch_size: int) -> dict[str, Any]:
    from dataclasses import asdict

    from pacsaudit.storage import ScanStore

    plan = RescanPlan(size, Synthetic.load())
    started = time.perf_counter()
    with ScanStore.open(url) as store:
        earlier = _write_scan(store, plan.earlier(), batch_size)
        later = _write_scan(store, plan.later(), batch_size)
        database_mb = _database_mb(store, url)
    return {
        "earlier_id": earlier,
        "later_id": later,
        "seconds": time.perf_counter() - started,
        "database_mb": database_mb,
        "expected": asdict(plan.expected),
    }


def child_diff(url: str, earlier: int, later: int) -> dict[str, Any]:
    """`diff_from_store` timed alone, then `render_json` of its result."""
    from pacsaudit.reports import diff_from_store, render_json
    from pacsaudit.storage import ScanStore

    rss_imports = _maxrss_mb()
    with ScanStore.open(url) as store:
        store.scan(earlier)  # the connection is open before the clock starts
        rss_open = _maxrss_mb()
        wall, cpu = time.perf_counter(), _cpu_s()
        diff = diff_from_store(store, earlier, later)
        diff_s, diff_cpu_s = time.perf_counter() - wall, _cpu_s() - cpu
    rss_diff = _maxrss_mb()
    wall = time.perf_counter()
    text = render_json(diff)
    render_s = time.perf_counter() - wall
    return {
        "diff_s": diff_s,
        "diff_cpu_s": diff_cpu_s,
        "render_json_s": render_s,
        "json_mb": len(text.encode()) / 2**20,
        "rss_after_imports_mb": rss_imports,
        "rss_after_open_mb": rss_open,
        "rss_after_diff_mb": rss_diff,
        **_diff_counts(json.loads(text)),
    }


def _diff_counts(doc: dict[str, Any]) -> dict[str, Any]:
    totals = doc["totals"]
    return {
        "new": len(doc["new"]),
        "gone": len(doc["gone"]),
        "not_rescanned": len(doc["not_rescanned"]),
        "changed": len(doc["changed"]),
        "unchanged": doc["unchanged"],
        "earlier_records": doc["earlier"]["records"],
        "later_records": doc["later"]["records"],
        "totals": {
            name: {
                "earlier": totals[name]["earlier"],
                "later": totals[name]["later"],
                "delta_pct": totals[name]["delta_pct"],
            }
            for name in totals
        },
    }


def child_main(argv: Sequence[str]) -> int:
    command, url, *rest = argv
    if command == "write":
        out = child_write(url, int(rest[0]), int(rest[1]))
    elif command == "populate":
        out = child_populate(url, int(rest[0]), int(rest[1]))
    elif command == "diff":
        out = child_diff(url, int(rest[0]), int(rest[1]))
    else:
        raise SystemExit(f"unknown child command {command!r}")
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


# =========================================================================== harness side


class BenchError(RuntimeError):
    """A child failed, timed out, or measured something other than asked."""


@dataclass(frozen=True)
class ChildRun:
    """A child's wall clock, CPU and peak RSS from wait4 in the launcher, and what it printed."""

    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    stdout: Path

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    def last_json(self) -> dict[str, Any]:
        lines = self.stdout.read_text().strip().splitlines()
        return cast("dict[str, Any]", json.loads(lines[-1]))


def build_launcher() -> Path:
    from scan_bench import LAUNCHER_BIN, LAUNCHER_SRC

    if not LAUNCHER_BIN.exists() or LAUNCHER_BIN.stat().st_mtime < LAUNCHER_SRC.stat().st_mtime:
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise SystemExit("no C compiler: apt-get install -y gcc")
        cmd = [cc, "-O2", "-Wall", "-Wextra", "-o", str(LAUNCHER_BIN), str(LAUNCHER_SRC)]
        subprocess.run(cmd, check=True, timeout=120)
    return LAUNCHER_BIN


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_child(launcher: Path, cmd: Sequence[str], workdir: Path, name: str, limit_s: float) -> ChildRun:
    """Run `cmd` under the launcher: forked from a small process, its ru_maxrss is its own
    (a child forked from this harness would carry our high-water RSS; see bench/README.md).
    Killed with its process group on timeout, Ctrl-C or SIGTERM."""
    usage = workdir / f"{name}.rusage.json"
    out, err = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [str(launcher), str(usage), *cmd],
            stdout=stdout, stderr=stderr, env=child_env(), cwd=REPO, start_new_session=True,
        )  # fmt: skip
        try:
            proc.wait(timeout=limit_s)
        except BaseException as exc:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if isinstance(exc, subprocess.TimeoutExpired):
                raise BenchError(f"{name}: killed after {limit_s:.0f} s") from None
            raise
    if proc.returncode != 0 or not usage.exists():
        tail = err.read_text(errors="replace").strip().splitlines()[-5:]
        raise BenchError(f"{name}: exit {proc.returncode}: " + " | ".join(tail))
    data = json.loads(usage.read_text())
    return ChildRun(data["wall_s"], data["user_s"], data["sys_s"], data["maxrss_kb"] / 1024, out)


class Databases:
    """Fresh databases: a SQLite file in the work directory, or a uniquely named PostgreSQL
    database on the local cluster; every one is removed by `drop` or at exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.prefix = f"pacsaudit_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self._pg: list[str] = []

    def __enter__(self) -> Databases:
        return self

    def __exit__(self, *exc: object) -> None:
        for url in list(self._pg):
            self.drop(url)

    @staticmethod
    def _admin() -> Any:
        import psycopg

        return psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True, connect_timeout=5
        )

    def create(self, backend: str, purpose: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{self.workdir / f'{purpose}.db'}"
        name = f"{self.prefix}_{purpose}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
        self._pg.append(url)
        return url

    def drop(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            for p in path.parent.glob(path.name + "*"):
                p.unlink()
            return
        name = url.rsplit("/", 1)[1]
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._pg.remove(url)

    @classmethod
    def postgres_version(cls) -> str | None:
        try:
            with cls._admin() as conn:
                return str(conn.execute("SHOW server_version").fetchone()[0])
        except Exception:
            return None


def self_cmd(*args: object) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", *map(str, args)]


def bench_writes(
    launcher: Path, dbs: Databases, backend: str, count: int, console: Console
) -> dict[str, Any]:
    url = dbs.create(backend, "writes")
    try:
        run = run_child(
            launcher, self_cmd("write", url, count, BATCH), dbs.workdir, f"write-{backend}", 60 + count / 1500
        )
    finally:
        dbs.drop(url)
    inner = run.last_json()
    if inner["stored"] != count or inner["low_water_mark"] != count:
        raise BenchError(f"{backend}: stored {inner['stored']} of {count}, mark {inner['low_water_mark']}")
    server = inner["server_cpu_s"]
    row = {
        "observations": count,
        "batch": BATCH,
        "written_per_s": count / inner["write_s"],
        "write_s": inner["write_s"],
        "write_cpu_us_per_obs": inner["write_cpu_s"] / count * 1e6,
        "server_cpu_us_per_obs": None if server is None else server / count * 1e6,
        "end_to_end_per_s": count / run.wall_s,
        "child_wall_s": run.wall_s,
        "child_cpu_s": run.cpu_s,
        "peak_rss_mb": run.peak_rss_mb,
        "rss_after_imports_mb": inner["rss_after_imports_mb"],
        "rss_after_tenth_mb": inner["rss_after_tenth_mb"],
        "database_mb": inner["database_mb"],
    }
    console.print(
        f"  writes {backend:<10} {row['written_per_s']:8.0f} obs/s in write_batch"
        f"  {row['write_cpu_us_per_obs']:5.1f} µs CPU/obs  peak RSS {run.peak_rss_mb:5.1f} MB"
        f"  ({run.wall_s:.1f} s in all)"
    )
    return row


def bench_diff(launcher: Path, dbs: Databases, backend: str, size: int, console: Console) -> dict[str, Any]:
    url = dbs.create(backend, "diff")
    try:
        limit = 60 + size / 500
        pop = run_child(
            launcher, self_cmd("populate", url, size, BATCH), dbs.workdir, f"pop-{backend}", limit
        )
        made = pop.last_json()
        a, b = made["earlier_id"], made["later_id"]
        lib = run_child(launcher, self_cmd("diff", url, a, b), dbs.workdir, f"diff-{backend}", limit)
        cli_cmd = [sys.executable, "-m", "pacsaudit", "diff", str(a), str(b), "--format", "json", "--db", url]
        cli = run_child(launcher, cli_cmd, dbs.workdir, f"cli-{backend}", limit)
    finally:
        dbs.drop(url)
    inner = lib.last_json()
    cli_doc = json.loads(cli.stdout.read_text())
    cli_counts = _diff_counts(cli_doc)
    expected = made["expected"]
    for source, counts in (("diff_from_store", inner), ("pacsaudit diff", cli_counts)):
        wrong = {k: (counts[k], v) for k, v in expected.items() if counts[k] != v}
        if wrong or counts["not_rescanned"]:
            raise BenchError(f"{backend}: {source} found (got, expected) {wrong}")
    row = {
        "endpoints_per_scan": size,
        "expected": expected,
        "found": {k: inner[k] for k in ("new", "gone", "not_rescanned", "changed", "unchanged")},
        "totals": inner["totals"],
        "populate_s": made["seconds"],
        "database_mb": made["database_mb"],
        "diff_s": inner["diff_s"],
        "diff_cpu_s": inner["diff_cpu_s"],
        "render_json_s": inner["render_json_s"],
        "json_mb": inner["json_mb"],
        "child_wall_s": lib.wall_s,
        "peak_rss_mb": lib.peak_rss_mb,
        "rss_after_open_mb": inner["rss_after_open_mb"],
        "rss_after_diff_mb": inner["rss_after_diff_mb"],
        "cli_wall_s": cli.wall_s,
        "cli_cpu_s": cli.cpu_s,
        "cli_peak_rss_mb": cli.peak_rss_mb,
        "cli_command": [*cli_cmd[:-1], "URL"],
    }
    console.print(
        f"  diff   {backend:<10} diff_from_store {row['diff_s']:5.2f} s, peak RSS {lib.peak_rss_mb:5.1f} MB;"
        f"  CLI {cli.wall_s:5.2f} s, {cli.peak_rss_mb:5.1f} MB"
        f"  (new {inner['new']}, gone {inner['gone']}, changed {inner['changed']})"
    )
    return row


def report(writes: dict[str, dict[str, Any]], diffs: dict[str, dict[str, Any]], console: Console) -> None:
    from rich.table import Table

    if writes:
        n = next(iter(writes.values()))["observations"]
        table = Table(title=f"writes: {n:,} observations, batches of {BATCH:,}, one child per backend")
        for col in ("backend", "written/s (write_batch)", "end to end obs/s", "client CPU µs/obs",
                    "server CPU µs/obs", "peak RSS MB", "RSS after imports MB", "database MB"):  # fmt: skip
            table.add_column(col, justify="left" if col == "backend" else "right")
        for backend, r in writes.items():
            server = r["server_cpu_us_per_obs"]
            table.add_row(
                backend,
                f"{r['written_per_s']:,.0f}",
                f"{r['end_to_end_per_s']:,.0f}",
                f"{r['write_cpu_us_per_obs']:.1f}",
                "n/a" if server is None else f"{server:.1f}",
                f"{r['peak_rss_mb']:.1f}",
                f"{r['rss_after_imports_mb']:.1f}",
                f"{r['database_mb']:,.0f}",
            )
        console.print(table)
        if {"sqlite", "postgresql"} <= writes.keys():
            ratio = writes["postgresql"]["written_per_s"] / writes["sqlite"]["written_per_s"]
            console.print(f"PostgreSQL/SQLite written/s: {ratio:.2f}×")
    if diffs:
        n = next(iter(diffs.values()))["endpoints_per_scan"]
        table = Table(title=f"diff: two scans of {n:,} endpoints each")
        for col in ("backend", "new / gone / changed / same", "diff s", "diff CPU s",
                    "RSS after diff MB", "peak RSS MB", "CLI s", "CLI peak RSS MB", "JSON MB",
                    "store 2 scans s"):  # fmt: skip
            table.add_column(col, justify="left" if col == "backend" else "right")
        for backend, r in diffs.items():
            f = r["found"]
            table.add_row(
                backend,
                f"{f['new']:,} / {f['gone']:,} / {f['changed']:,} / {f['unchanged']:,}",
                f"{r['diff_s']:.2f}",
                f"{r['diff_cpu_s']:.2f}",
                f"{r['rss_after_diff_mb']:.1f}",
                f"{r['peak_rss_mb']:.1f}",
                f"{r['cli_wall_s']:.2f}",
                f"{r['cli_peak_rss_mb']:.1f}",
                f"{r['json_mb']:.1f}",
                f"{r['populate_s']:.1f}",
            )
        console.print(table)
        totals = next(iter(diffs.values()))["totals"]
        console.print(
            "growth the diff reports: "
            + ", ".join(
                f"{k} {v['earlier']:,} → {v['later']:,} ({v['delta_pct']:+}%)" for k, v in totals.items()
            )
        )


def versions() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, Any] = {"sqlite": sqlite3.sqlite_version, "postgresql": Databases.postgres_version()}
    for package in ("sqlalchemy", "psycopg", "pydantic"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    rev = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
        capture_output=True, text=True, timeout=30, check=False,
    ).stdout.strip()  # fmt: skip
    out["pacsaudit_source_tree"] = rev or None
    return out


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--child"]:
        return child_main(args_list[1:])

    from rich.console import Console

    from scan_bench import machine_info

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--observations", type=int, default=1_000_000, help="observations to write")
    parser.add_argument("--diff-endpoints", type=int, default=100_000, help="endpoints in each diffed scan")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgresql")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    args = parser.parse_args(args_list)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if unknown := set(backends) - set(BACKENDS):
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    if args.observations < BATCH or args.diff_endpoints < 100:
        parser.error(f"--observations must be at least {BATCH}, --diff-endpoints at least 100")

    console = Console(width=None if sys.stdout.isatty() else 150)
    signal.signal(signal.SIGTERM, _terminate)
    if "postgresql" in backends and Databases.postgres_version() is None:
        console.print(f"[red]PostgreSQL is not reachable on {PG_HOST}:{PG_PORT} as {PG_USER}[/red]")
        return 2
    launcher = build_launcher()
    load_before = os.getloadavg()[0]
    console.print(
        f"storage benchmark: {args.observations:,} observations written, diff of 2 × "
        f"{args.diff_endpoints:,} endpoints; backends {', '.join(backends)}; {os.cpu_count()} CPUs, "
        f"load {load_before:.2f}"
    )
    writes: dict[str, dict[str, Any]] = {}
    diffs: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="pacsaudit-storage-bench-") as tmp,
            Databases(Path(tmp)) as dbs,
        ):
            for backend in backends:
                writes[backend] = bench_writes(launcher, dbs, backend, args.observations, console)
            for backend in backends:
                diffs[backend] = bench_diff(launcher, dbs, backend, args.diff_endpoints, console)
    except BenchError as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; temporary files and databases removed[/yellow]")
        return 130
    report(writes, diffs, console)
    result = {
        "machine": {**machine_info(), "loadavg_1m_before": round(load_before, 2)},
        "versions": versions(),
        "parameters": {
            "observations": args.observations,
            "diff_endpoints": args.diff_endpoints,
            "batch": BATCH,
            "backends": backends,
            "write_mix": "index % 8 < 4: tests/storage/synthetic.py (census, rejected, not-dicom, "
            "io-timeout); else connection-refused",
            "diff_seed": DIFF_SEED,
        },
        "run_s": round(time.perf_counter() - started, 1),
        "writes": writes,
        "diff": diffs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"[dim]results: {args.json} ({result['run_s']} s)[/dim]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
