"""One `pacsaudit scan`, start to end: plan, stream, record, and resume after a crash.

A `ScanPlan` is everything needed to rebuild the target stream and the settings, stored with
the scan so `--resume` continues the same scan from its low-water mark: positions below it
are finished and stored; those from it on are redone, except endpoints already stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pacsaudit import __version__
from pacsaudit.config import ScanSettings
from pacsaudit.engine.local import ScanTotals, run_scan
from pacsaudit.engine.recording import StoreRecorder
from pacsaudit.engine.runner import run
from pacsaudit.engine.workers import run_scan_processes
from pacsaudit.output import JsonlWriter
from pacsaudit.output.console import ScanProgress
from pacsaudit.storage.states import ScanState
from pacsaudit.targets import Endpoint, ExclusionList, TargetStream

if TYPE_CHECKING:
    from pacsaudit.storage import ScanStore

__all__ = ["ScanOutcome", "ScanPlan", "execute"]


@dataclass(frozen=True)
class ScanPlan:
    """What was asked: targets, files, exclusions and settings, as stored with the scan."""

    targets: list[str]
    settings: ScanSettings
    files: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    exclude_files: list[str] = field(default_factory=list)

    def arguments(self) -> dict[str, Any]:
        return {
            "targets": self.targets,
            "ports": self.settings.ports,
            "files": self.files,
            "exclude": self.exclude,
            "exclude_files": self.exclude_files,
            "settings": self.settings.model_dump(mode="json"),
        }

    @classmethod
    def from_arguments(cls, arguments: dict[str, Any]) -> ScanPlan:
        return cls(
            targets=list(arguments.get("targets", [])),
            settings=ScanSettings.model_validate(arguments["settings"]),
            files=list(arguments.get("files", [])),
            exclude=list(arguments.get("exclude", [])),
            exclude_files=list(arguments.get("exclude_files", [])),
        )

    def exclusions(self) -> ExclusionList:
        exclusions = ExclusionList.from_specs(self.exclude)
        for path in self.exclude_files:
            exclusions = exclusions.merge(ExclusionList.from_file(Path(path)))
        return exclusions

    def stream(self, exclusions: ExclusionList) -> TargetStream:
        files = [Path(f) for f in self.files]
        return TargetStream(self.targets, self.settings.ports, files=files, exclusions=exclusions)


@dataclass
class ScanOutcome:
    totals: ScanTotals
    elapsed: float
    scan_id: int | None
    state: ScanState | None


def _mark_writer(store: ScanStore | None, scan_id: int | None) -> Callable[[int], None] | None:
    """Store a multi-process scan's low-water mark, at most once a second."""
    if store is None or scan_id is None:
        return None
    last = 0.0

    def write(mark: int) -> None:
        nonlocal last
        if time.monotonic() - last >= 1.0:
            last = time.monotonic()
            store.write_batch(scan_id, [], low_water_mark=mark, endpoints_done=None)

    return write


def _skipping(endpoints: Iterator[Endpoint], stored: set[int]) -> Iterator[Endpoint]:
    """Leave out the positions already stored (by position: a hostname's address is not known yet)."""
    return (ep for ep in endpoints if ep.position not in stored)


def execute(
    plan: ScanPlan,
    *,
    output: str,
    quiet: bool,
    progress_console: Any,
    store: ScanStore | None,
    resume: int | None = None,
) -> ScanOutcome:
    """Run the scan; with a store, record it (or continue scan `resume`). Ctrl-C stops cleanly."""
    settings = plan.settings
    exclusions = plan.exclusions()
    stream = plan.stream(exclusions)
    start = 0
    endpoints: Iterator[Endpoint] = iter(stream)
    scan_id: int | None = None
    done = 0
    if store is not None and resume is not None:
        record = store.resume_scan(resume)
        scan_id, start, done = record.id, record.low_water_mark, record.endpoints_done
        endpoints = _skipping(stream.iter_from(start), store.observed_positions(scan_id, start))
    elif store is not None:
        scan_id = store.create_scan(
            plan.arguments(), targets_estimated=stream.estimated_total(), tool_version=__version__
        )
    started = time.monotonic()
    state = ScanState.FAILED
    recorder: StoreRecorder | None = None
    try:
        with (
            JsonlWriter(output) as writer,
            ScanProgress(stream.estimated_total(), quiet=quiet, console=progress_console) as progress,
        ):
            if settings.workers > 1 and stream.reusable and resume is None:
                url = store.engine.url.render_as_string(hide_password=False) if store is not None else None
                if store is not None:
                    store.engine.dispose()  # no pooled connection may cross the fork
                totals = run_scan_processes(
                    stream,  # each worker walks its own shard of it
                    settings,
                    settings.workers,
                    writer.write_line,
                    exclusions=exclusions,
                    on_progress=progress.update,
                    store_url=url,
                    scan_id=scan_id,
                    on_mark=_mark_writer(store, scan_id),
                    output_fd=writer.shared_descriptor(),
                )
                if store is not None and scan_id is not None:  # the shards each stored their results
                    store.write_batch(scan_id, [], low_water_mark=None, endpoints_done=totals.endpoints)
            else:
                if store is not None and scan_id is not None:
                    recorder = StoreRecorder(store, scan_id, start=start, done=done)
                totals = run(
                    run_scan(
                        endpoints,
                        settings,
                        writer.write,
                        exclusions=exclusions,
                        on_done=progress.update,
                        recorder=recorder,
                    )
                )
        state = ScanState.FINISHED
    except KeyboardInterrupt:
        state = ScanState.INTERRUPTED
        raise
    finally:
        if store is not None and scan_id is not None:
            try:
                if recorder is not None:
                    recorder.flush()
            except Exception:
                state = ScanState.FAILED  # what was flushed before stays; the mark never ran ahead
                raise
            finally:
                store.finish_scan(scan_id, state.value)
    return ScanOutcome(totals, time.monotonic() - started, scan_id, state)
