"""One scan over several processes of this machine: an event loop per core.

On a sweep the scanner's CPU is the limit and one asyncio loop uses one core. Each worker
is forked with the (lazy) target stream, keeps the endpoints of its shard (by a hash of the
address, so every port of a host stays with one worker and per-host limits still hold),
and runs the ordinary `run_scan` with its share of the concurrency and the rate. Workers
append finished JSON lines to the output file themselves (or, for standard output, send them
through a pipe for the parent to write out); the parent merges the running totals for the
progress bar. A worker that dies loses only its own in-flight
endpoints; the others' results are all kept and the failure is reported.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import selectors
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection

from pacsaudit.config import ScanSettings
from pacsaudit.engine.local import ScanTotals, run_scan
from pacsaudit.engine.recording import StoreRecorder
from pacsaudit.engine.runner import run
from pacsaudit.model import EndpointResult
from pacsaudit.output.jsonl import WholeLines
from pacsaudit.targets import Endpoint, ExclusionList
from pacsaudit.targets.stream import TargetStream, shard_of

__all__ = ["WorkerFailedError", "run_scan_processes", "shard_of"]

_PROGRESS_EVERY = 0.2


class WorkerFailedError(RuntimeError):
    """A worker process ended without reporting its totals; its shard is incomplete."""


def _shard(endpoints: Iterable[Endpoint], shard: int, workers: int) -> Iterator[Endpoint]:
    if isinstance(endpoints, TargetStream):
        return endpoints.shard(shard, workers)
    return (ep for ep in endpoints if shard_of(ep, workers) == shard)


def _work(
    shard: int,
    workers: int,
    endpoints: Iterable[Endpoint],
    settings: ScanSettings,
    exclusions: ExclusionList | None,
    out_fd: int,
    report: Connection,
    store_url: str | None = None,
    scan_id: int | None = None,
) -> None:
    """A worker's whole life: scan the shard, write JSON lines to `out_fd`, report totals.

    `out_fd` is the worker's pipe to the coordinator, or the output file itself in append mode.
    With a store, the worker records its own results (its own connection, opened after the
    fork) and reports the mark its stored results reach; the coordinator keeps the scan's.
    """
    _die_with_parent()
    out = WholeLines(out_fd)
    recorder: StoreRecorder | None = None
    if store_url is not None and scan_id is not None:
        from pacsaudit.storage import ScanStore

        recorder = StoreRecorder(ScanStore.open(store_url), scan_id, track_mark=False)
    last = time.monotonic()

    def emit(result: EndpointResult) -> None:
        out.add(result.model_dump_json())

    def progress(totals: ScanTotals) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= _PROGRESS_EVERY:
            last = now
            out.flush()
            report.send(("progress", totals, recorder.flushed_mark if recorder is not None else None))

    try:
        totals = run(
            run_scan(
                _shard(endpoints, shard, workers),
                settings,
                emit,
                exclusions=exclusions,
                on_done=progress,
                recorder=recorder,
            )
        )
    finally:
        if recorder is not None:
            recorder.flush()
            recorder.store.close()
    out.close()
    report.send(("done", totals, recorder.flushed_mark if recorder is not None else None))
    report.close()


def _die_with_parent() -> None:
    """Linux: this worker gets SIGKILL when the coordinator dies (`kill -9` must stop the scan)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _share(settings: ScanSettings, workers: int) -> ScanSettings:
    """Each worker's part of the global limits."""
    return settings.model_copy(
        update={
            "concurrency": max(1, settings.concurrency // workers),
            "rate": settings.rate / workers,
        }
    )


def run_scan_processes(
    endpoints: Iterable[Endpoint],
    settings: ScanSettings,
    workers: int,
    write_line: Callable[[str], None],
    *,
    exclusions: ExclusionList | None = None,
    on_progress: Callable[[ScanTotals], None] | None = None,
    store_url: str | None = None,
    scan_id: int | None = None,
    on_mark: Callable[[int], None] | None = None,
    output_fd: int | None = None,
) -> ScanTotals:
    """Scan with `workers` processes; `write_line` gets each JSON line (no newline) in the parent;
    `on_mark` gets the scan's low-water mark (the lowest of the shards' stored marks) as it moves.

    With `output_fd` (a regular file in append mode: `JsonlWriter.shared_descriptor`) the workers
    write their lines to it themselves and `write_line` is not called: relaying every line
    through the coordinator cost a tenth of a sweep's CPU.
    """
    context = multiprocessing.get_context("fork")
    share = _share(settings, workers)
    selector = selectors.DefaultSelector()
    processes = []
    buffers: dict[int, bytes] = {}
    latest: dict[int, ScanTotals] = {}
    marks: dict[int, int] = {}
    reported = 0
    finished: dict[int, ScanTotals] = {}
    # The coordinator's objects frozen out of the collector while workers are forked: a
    # collection in a worker would otherwise write to every inherited object's header and copy
    # the pages they share with the coordinator, one page fault at a time.
    gc.freeze()
    try:
        for shard in range(workers):
            read_fd, write_fd = os.pipe() if output_fd is None else (-1, output_fd)
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=_work,
                args=(shard, workers, endpoints, share, exclusions, write_fd, send, store_url, scan_id),
                name=f"pacsaudit-worker-{shard}",
                daemon=True,
            )
            process.start()
            send.close()
            processes.append(process)
            if output_fd is None:
                os.close(write_fd)
                buffers[read_fd] = b""
                selector.register(read_fd, selectors.EVENT_READ, ("lines", shard))
            selector.register(receive, selectors.EVENT_READ, ("report", shard))
    finally:
        gc.unfreeze()
    open_channels = len(selector.get_map())
    while open_channels:
        for key, _ in selector.select(timeout=1.0):
            kind, shard = key.data
            if kind == "lines":
                fd = int(key.fd)
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    selector.unregister(fd)
                    os.close(fd)
                    open_channels -= 1
                    continue
                *lines, buffers[fd] = (buffers[fd] + chunk).split(b"\n")
                for line in lines:
                    write_line(line.decode("utf-8"))
            else:
                conn: Connection = key.fileobj  # type: ignore[assignment]
                try:
                    message, totals, mark = conn.recv()
                except EOFError:
                    selector.unregister(conn)
                    conn.close()
                    open_channels -= 1
                    continue
                latest[shard] = totals
                if mark is not None:
                    marks[shard] = mark
                    if on_mark is not None and len(marks) == workers and min(marks.values()) > reported:
                        reported = min(marks.values())
                        on_mark(reported)
                if message == "done":
                    finished[shard] = totals
                if on_progress is not None:
                    on_progress(merge_totals(latest.values()))
    selector.close()
    for process in processes:
        process.join()
    merged = merge_totals(finished.values())
    lost = [shard for shard in range(workers) if shard not in finished]
    if lost:
        raise WorkerFailedError(f"worker(s) {lost} died; their shards are incomplete")
    return merged


def merge_totals(parts: Iterable[ScanTotals]) -> ScanTotals:
    merged = ScanTotals()
    for part in parts:
        merged.endpoints += part.endpoints
        merged.open += part.open
        merged.dicom += part.dicom
        merged.open_to_any_ae += part.open_to_any_ae
        merged.excluded += part.excluded
        for status, count in part.by_status.items():
            merged.by_status[status] = merged.by_status.get(status, 0) + count
        for product, count in part.by_product.items():
            merged.by_product[product] = merged.by_product.get(product, 0) + count
    return merged
