"""`--census` over HTTP: Orthanc's `/statistics` where open, else QIDO-RS paging.

The tally is the C-FIND census's own (`pacsaudit.probes.census.StudyTally`): each DICOM JSON
dataset is turned into the ``{tag: string}`` a C-FIND answer decodes to and folded in, so both
censuses count patients (keyed hashes), years, modalities, identifier shapes and the NumberOf...
keys by the same rules and bounds.

Paging tells a per-page limit (a page shorter than asked, then more: paging goes past it, the
listing stays complete) from a silent total cap (answers cut before `offset` applies, which only
a StudyDate split shows): only the latter makes the counts lower bounds.

Privacy: a QIDO-RS answer is parsed, then reduced at once to what the tally keeps; per listing,
a hash of each UID (to tell a new answer from a repeated one) and the year of StudyDate (to plan
a split). No value is stored, logged or put in an error message.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pacsaudit.config import ScanSettings
from pacsaudit.model import HttpBlock, StudyCounts
from pacsaudit.probes.census import (
    INSTANCES_IN_SERIES,
    INSTANCES_IN_STUDY,
    INSTITUTION,
    MODALITIES_IN_STUDY,
    OTHER_PATIENT_IDS,
    PATIENT_BIRTH_DATE,
    PATIENT_ID,
    SERIES_IN_STUDY,
    SERIES_UID,
    SOP_INSTANCE_UID,
    STUDY_DATE,
    STUDY_UID,
    StudyTally,
    count_value,
    tally_summary,
)
from pacsaudit.probes.http.client import JSON_BYTES, BoundedHttp, BudgetSpent, HttpFailure

__all__ = ["QIDO_PAGE", "QidoCensus", "counts_from_orthanc_statistics", "dicom_json_keys"]

QIDO_PAGE = 500
"""Studies asked per QIDO-RS page (a study is 1-3 KiB of DICOM JSON: a page stays well under the cap)."""

_STUDY_TAGS = (
    STUDY_UID, STUDY_DATE, MODALITIES_IN_STUDY, SERIES_IN_STUDY, INSTANCES_IN_STUDY, PATIENT_ID,
    OTHER_PATIENT_IDS, INSTITUTION, PATIENT_BIRTH_DATE,
)  # fmt: skip
_INCLUDED = (
    STUDY_DATE, MODALITIES_IN_STUDY, SERIES_IN_STUDY, INSTANCES_IN_STUDY, OTHER_PATIENT_IDS, INSTITUTION,
)  # fmt: skip
"""Asked with `includefield` (the rest are QIDO-RS defaults at STUDY level, PS3.18 Table 10.6.3-3)."""
_MAX_VALUES = 64
_MAX_VALUE_CHARS = 256
"""A value longer than any VR allows is cut: hashing and prefix tables stay bounded."""

Level = Literal["studies", "series", "instances"]


def counts_from_orthanc_statistics(document: Any) -> StudyCounts | None:
    """Orthanc's `/statistics` answer as exact counts; ``None`` unless all four counts are there."""
    if not isinstance(document, dict):
        return None
    values = [document.get(k) for k in ("CountPatients", "CountStudies", "CountSeries", "CountInstances")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**12 for v in values):
        return None
    patients, studies, series, instances = values
    return StudyCounts(
        patients=patients, studies=studies, series=series, instances=instances, complete=True, queries=1
    )


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value[:_MAX_VALUE_CHARS]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # IS/US as a JSON number; `count_value` still bounds it to 12 digits
    return None  # a PN object, a float, anything else: nothing the tally reads


def dicom_json_keys(dataset: dict[str, Any], tags: tuple[int, ...]) -> dict[int, str]:
    """The `tags` of one DICOM JSON dataset (PS3.18 F.2) as a C-FIND answer decodes them: one string
    per tag, multiple values joined by backslashes; elements without a usable value left out."""
    out: dict[int, str] = {}
    for tag in tags:
        element = dataset.get(f"{tag:08X}")
        if not isinstance(element, dict):
            continue
        values = element.get("Value")
        if not isinstance(values, list):
            continue
        texts = [t for t in (_text(v) for v in values[:_MAX_VALUES]) if t is not None]
        if texts:
            out[tag] = "\\".join(texts)
    return out


def _marker(dataset: dict[str, Any], uid_tag: int) -> str:
    """What stands for one answer: its UID, or a digest of the whole answer when it has none."""
    uid = dicom_json_keys(dataset, (uid_tag,)).get(uid_tag)
    if uid:
        return uid
    whole = json.dumps(dataset, sort_keys=True).encode("utf-8", "replace")
    return "pacsaudit-" + hashlib.sha256(whole).hexdigest()


def _year(value: str | None) -> int | None:
    """The year of a StudyDate, to plan a split (the tally counts years by its own rule)."""
    text = (value or "").strip()[:4]
    return int(text) if len(text) == 4 and text.isascii() and text.isdigit() else None


class _PageError(Exception):
    """A page that cannot be counted; the message is ours (never the peer's bytes)."""


@dataclass
class QidoCensus:
    """Pages through `{root}/studies` (and `/series`, `/instances` when the NumberOf keys are missing)."""

    http: BoundedHttp
    root: str
    settings: ScanSettings
    key: bytes = field(default_factory=lambda: os.urandom(32))
    tally: StudyTally = field(init=False)
    series: int = 0
    instances: int = 0
    studies_without_keys: int = 0
    queries: int = 0
    answers: int = 0
    capped: bool = False
    """A silent total cap is proven (a split found studies the full listing lacked)."""
    cap: int | None = None
    page_limit: int | None = None
    """The server's per-page limit, where a short page was followed by more (not a cap on the total)."""
    split: list[Literal["study-date", "patient-birth-date", "patient-id"]] = field(default_factory=list)
    counted_from: Literal["study-keys", "series-level", "image-level"] | None = None
    series_done: bool = False
    instances_done: bool = False
    listed_below: bool = False
    """`/series` listing began: `series` and `instances` come from there, not from the study keys."""
    _served: dict[Level, int] = field(default_factory=dict)
    """The most answers one page held, per level: a page shorter than that (and than asked) is the last."""
    _request_budget: int = field(init=False)

    def __post_init__(self) -> None:
        self.tally = StudyTally(self.key)
        self._request_budget = self.http.requests + self.settings.max_queries

    @property
    def page_size(self) -> int:
        return max(1, min(QIDO_PAGE, self.settings.max_answers_per_query))

    def _add_study(self, dataset: dict[str, Any]) -> None:
        keys = dicom_json_keys(dataset, _STUDY_TAGS)
        keys[STUDY_UID] = _marker(dataset, STUDY_UID)  # a UID-less study is still told apart (and descended)
        pending = len(self.tally.to_descend)
        self.tally.add_study(keys)
        if len(self.tally.to_descend) > pending:
            self.studies_without_keys += 1
        self.tally.to_descend.clear()  # QIDO-RS lists /series whole: no per-study descent to plan

    async def _page(self, path: str) -> list[dict[str, Any]]:
        if self.queries >= self.settings.max_queries:
            raise _PageError("query budget spent")
        self.queries += 1
        fetched = await self.http.get(path, budget=self._request_budget, max_bytes=JSON_BYTES)
        observed = fetched.observed
        if observed.status == 204:
            return []
        if observed.status != 200:
            raise _PageError(f"QIDO-RS answered HTTP {observed.status}")
        if observed.timed_out:
            raise _PageError("a QIDO-RS page did not arrive in time")
        if observed.truncated:
            raise _PageError(f"a QIDO-RS page went past the {JSON_BYTES}-byte cap")
        try:
            parsed = json.loads(observed.body) if observed.body.strip() else []
        except (ValueError, RecursionError):
            raise _PageError("a QIDO-RS page was not JSON") from None
        if not isinstance(parsed, list):
            raise _PageError("a QIDO-RS page was not a JSON array")
        return [item for item in parsed if isinstance(item, dict)]

    async def _paged(
        self, level: Level, query: str, fold: Callable[[dict[str, Any]], None], uid_tag: int
    ) -> tuple[int, list[int]]:
        """Page `query` to the end, folding each new answer; return (distinct answers, their study years).

        The end is an empty page, or a page shorter than asked and than the server has been seen to
        serve (no extra request then). A short page followed by more shows a per-page limit; a first
        page shorter than asked that the next one repeats was everything (the server ignores limit
        and offset); a full page repeated means offset is ignored: `_PageError`, lower bounds.
        """
        s = self.settings
        offset = 0
        first_short = False
        short_before: int | None = None
        seen_here: set[str] = set()
        years: list[int] = []
        while True:
            if self.answers >= s.max_answers:
                raise _PageError(f"answer budget of {s.max_answers} spent")
            limit = min(self.page_size, s.max_answers - self.answers)
            sep = "&" if "?" in query else "?"
            items = await self._page(f"{query}{sep}limit={limit}&offset={offset}")
            self.answers += len(items)
            if not items:
                return len(seen_here), years
            new = 0
            for item in items:
                marker = _marker(item, uid_tag)
                if marker in seen_here:
                    continue
                seen_here.add(marker)
                new += 1
                if (year := _year(dicom_json_keys(item, (STUDY_DATE,)).get(STUDY_DATE))) is not None:
                    years.append(year)
                fold(item)
            if offset and not new:
                if first_short:  # the second page repeated a short first one: that was all of it
                    return len(seen_here), years
                raise _PageError("the server ignores offset (a page repeated what was counted)")
            first_short = first_short and not offset
            if short_before is not None:
                self.page_limit = max(self.page_limit or 0, short_before)
            served = self._served.get(level, 0)
            if len(items) < min(limit, served):
                return len(seen_here), years
            self._served[level] = max(served, len(items))
            short_before = len(items) if len(items) < limit else None
            if not offset:
                first_short = short_before is not None
            offset += len(items)

    async def _studies(self, date_range: str = "") -> tuple[int, list[int]]:
        fields = "&".join(f"includefield={tag:08X}" for tag in _INCLUDED)
        where = f"StudyDate={date_range}&" if date_range else ""
        query = f"{self.root}/studies?{where}{fields}"
        return await self._paged("studies", query, self._add_study, STUDY_UID)

    async def count_studies(self) -> None:
        try:
            total, years = await self._studies()
            # Listing both halves costs about as much again as the full listing: only when affordable.
            affordable = 2 * (total // self.page_size + 2) <= self.settings.max_queries - self.queries
            if total and years and affordable:
                await self._check_silent_cap(total, years)
        finally:
            if not self.studies_without_keys:
                self.counted_from = "study-keys"
                self.series_done = self.instances_done = True

    async def _check_silent_cap(self, total: int, years: list[int]) -> None:
        """A server may cut the whole answer at a fixed total (Orthanc's LimitFindResults does, before
        offset applies), which paging cannot see. List the studies before and after the median year:
        a study the full listing lacked proves the cut; then bisect on StudyDate (years) until every
        range answers below the cap."""
        before = len(self.tally.studies)
        middle = sorted(years)[len(years) // 2]
        pending: list[tuple[int | None, int | None]] = [(None, middle), (middle + 1, None)]
        cut_ranges = 0
        answered_ranges: list[tuple[int | None, int | None, int, list[int]]] = []
        while pending:
            low, high = pending.pop()
            date_range = f"{'' if low is None else f'{low}0101'}-{'' if high is None else f'{high}1231'}"
            answered, found_years = await self._studies(date_range)
            answered_ranges.append((low, high, answered, found_years))
            if len(self.tally.studies) > before:
                self.capped = True
                self.cap = max(self.cap or 0, total)
                self.split = ["study-date"]
            if not self.capped:
                continue  # nothing hidden so far: no cap shown
            for low, high, answered, found_years in answered_ranges:
                if answered < total:
                    continue
                lo = low if low is not None else min(found_years, default=middle)
                hi = high if high is not None else max(found_years, default=middle)
                if lo < hi:
                    split = (lo + hi) // 2
                    pending += [(low, split), (split + 1, high)]
                else:
                    cut_ranges += 1
            answered_ranges.clear()
        if cut_ranges:
            raise _PageError(f"a single StudyDate year still answers {total} studies (the cap)")
        if self.capped and self.tally.undated:
            raise _PageError("undated studies past the cap cannot be reached by a StudyDate split")

    async def count_below_study(self) -> None:
        """Series and instances from `/series` (and `/instances`) when the studies lacked the keys."""
        if self.series_done:
            return
        seen_series: set[str] = set()
        instances_from_series = 0
        series_missing_count = 0

        def fold_series(dataset: dict[str, Any]) -> None:
            nonlocal instances_from_series, series_missing_count
            seen_series.add(_marker(dataset, SERIES_UID))
            count = count_value(dicom_json_keys(dataset, (INSTANCES_IN_SERIES,)).get(INSTANCES_IN_SERIES))
            if count is None:
                series_missing_count += 1
            instances_from_series += count or 0

        self.listed_below = True
        try:
            query = f"{self.root}/series?includefield={INSTANCES_IN_SERIES:08X}"
            await self._paged("series", query, fold_series, SERIES_UID)
        finally:
            self.series = len(seen_series)
            self.instances = instances_from_series
        self.series_done = True
        self.counted_from = "series-level"
        if self.capped:
            raise _PageError("series listed without a split on a server that caps its answers: lower bounds")
        if not series_missing_count:
            self.instances_done = True
            return
        seen_instances: set[str] = set()

        def fold_instance(dataset: dict[str, Any]) -> None:
            seen_instances.add(_marker(dataset, SOP_INSTANCE_UID))

        self.counted_from = "image-level"
        try:
            await self._paged(
                "instances",
                f"{self.root}/instances?includefield={SOP_INSTANCE_UID:08X}",
                fold_instance,
                SOP_INSTANCE_UID,
            )
        finally:
            self.instances = max(self.instances, len(seen_instances))
        self.instances_done = True

    async def run(self) -> str | None:
        """Count; return why the count is incomplete (``None``: complete). Transport errors end it too."""
        try:
            await self.count_studies()
            await self.count_below_study()
        except _PageError as exc:
            return str(exc)
        except BudgetSpent:
            return "request budget spent"
        except HttpFailure as exc:
            return f"QIDO-RS request failed: {exc.message}"
        return None

    def fill(self, block: HttpBlock, reason: str | None) -> None:
        """Put what was counted so far into `block` (lower bounds when `reason` says why it stopped)."""
        complete = reason is None and self.series_done and self.instances_done
        tally = self.tally
        from_keys = not self.listed_below
        block.counts = StudyCounts(
            patients=len(tally.patients) if tally.patients else (0 if not tally.studies else None),
            studies=len(tally.studies),
            series=tally.series if from_keys else self.series,
            instances=tally.instances if from_keys else self.instances,
            complete=complete,
            queries=self.queries,
            capped=self.capped,
            cap=self.cap,
            split=list(self.split),
            counted_from=self.counted_from,
            incomplete_reason=None if complete else (reason or "counting stopped early"),
        )
        block.counts_source = "qido-rs"
        block.modalities, block.study_dates, block.sensitive = tally_summary(tally)
        block.qido_page_limit = self.page_limit
