"""Quick measurement (not a test, not the bench): observations written per second and peak RSS
for N synthetic observations, per backend, each in a fresh process.

    PYTHONPATH=src:tests python3 tests/storage/measure_writes.py [--count 100000] [--batch 1000]
        [--backends sqlite,postgresql] [--all-census]

Only the time inside `write_batch` counts (serialising the results is part of it; building
the synthetic results is not). PostgreSQL: a database with a unique name is created on
127.0.0.1:5432 and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


def _run(url: str, count: int, batch_size: int, all_census: bool) -> dict[str, float]:
    from pacsaudit.storage import LowWaterMark, ScanStore
    from storage.synthetic import synthetic_result

    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    writing = cpu = 0.0
    with ScanStore.open(url) as store:
        scan_id = store.create_scan({"measure": True}, targets_estimated=count, tool_version="measure")
        lwm = LowWaterMark()
        for start in range(0, count, batch_size):
            pending = []
            for position in range(start, min(start + batch_size, count)):
                lwm.started(position)
                # a multiple of 4 is an open archive with a census (1.2 kB of JSON)
                pending.append((position, synthetic_result(position * 4 if all_census else position)))
                lwm.finished(position)
            wall, usage = time.perf_counter(), os.times()
            store.write_batch(scan_id, pending, low_water_mark=lwm.mark, endpoints_done=start + len(pending))
            after = os.times()
            writing += time.perf_counter() - wall
            cpu += (after.user - usage.user) + (after.system - usage.system)
        store.finish_scan(scan_id, "finished")
        read_started = time.perf_counter()
        read = sum(1 for _ in store.observations(scan_id))
        reading = time.perf_counter() - read_started
    assert read == count
    return {
        "observations": count,
        "written_per_s": count / writing,
        "write_cpu_us_per_obs": cpu / count * 1e6,
        "read_per_s": count / reading,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_after_imports_mb": rss_start / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--all-census", action="store_true", help="only open archives with a census")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(_run(options.child, options.count, options.batch, options.all_census)))
        return
    import psycopg

    report = {}
    with tempfile.TemporaryDirectory() as directory:
        targets = {"sqlite": f"sqlite:///{Path(directory) / 'measure.db'}"}
        name = f"pacsaudit_measure_{uuid.uuid4().hex[:12]}"
        admin = dict(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True)
        with psycopg.connect(**admin) as connection:  # type: ignore[arg-type]
            connection.execute(f'CREATE DATABASE "{name}"')
        targets["postgresql"] = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        try:
            for backend in options.backends.split(","):
                child = [sys.executable, __file__, "--child", targets[backend], "--count", str(options.count)]
                child += ["--batch", str(options.batch)] + (["--all-census"] if options.all_census else [])
                done = subprocess.run(child, capture_output=True, text=True, check=True)
                report[backend] = json.loads(done.stdout.strip().splitlines()[-1])
        finally:
            with psycopg.connect(**admin) as connection:  # type: ignore[arg-type]
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
