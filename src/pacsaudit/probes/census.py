"""The exposure census: what a stranger can enumerate through C-FIND, counted, never kept.

Plan, cheapest first, every query inside one budget (`max_queries`, `census_time`,
`max_answers`), with a pause between queries:

1. One STUDY-level query with every key left universal. Most archives answer it whole:
   one query, exact counts.
2. If the answer was cut short (a result cap: status "cancel" we did not ask for, or a
   suspiciously round number of answers), split it by StudyDate range, bisecting only the
   ranges that still hit the cap. A single day that still hits the cap is split by PatientID
   prefix. Studies without a StudyDate never match a range, so they are enumerated by
   PatientID prefix with the date left universal (their count is what is taken from there).
3. If the answers lack NumberOfStudyRelatedSeries/Instances (DCMTK's dcmqrscp), descend:
   one SERIES-level query per study, one IMAGE-level query per series, while budget lasts.

Privacy by construction: answers are decoded only for the keys asked, reduced at once to
counters, years, shapes and keyed hashes (HMAC-SHA256 with a per-run secret, in memory), and
dropped. No name, ID, birth date or full date reaches the result, a log or an error text.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import date, timedelta

from pacsaudit.config import ScanSettings
from pacsaudit.dicom import (
    Association,
    AssociationAbortedError,
    DicomProtocolError,
    NotDicomError,
    PeerClosedError,
)
from pacsaudit.dicom.constants import STUDY_ROOT_FIND
from pacsaudit.dicom.dimse import is_pending, status_category, status_words
from pacsaudit.dicom.identifier import decode_identifier, encode_identifier
from pacsaudit.model import DicomBlock, Evidence, FindRefusal, SensitiveShapes, StudyCounts, StudyYears
from pacsaudit.probes.shapes import is_military_id_shaped, is_ssn_shaped, split_multi_value

__all__ = ["CensusProbe", "StudyTally", "count_value", "tally_summary"]

# (group, element) tags of the keys the census asks for.
QUERY_LEVEL = 0x00080052
STUDY_DATE = 0x00080020
INSTITUTION = 0x00080080
MODALITIES_IN_STUDY = 0x00080061
MODALITY = 0x00080060
SOP_INSTANCE_UID = 0x00080018
PATIENT_ID = 0x00100020
PATIENT_BIRTH_DATE = 0x00100030
OTHER_PATIENT_IDS = 0x00101000
STUDY_UID = 0x0020000D
SERIES_UID = 0x0020000E
SERIES_IN_STUDY = 0x00201206
INSTANCES_IN_STUDY = 0x00201208
INSTANCES_IN_SERIES = 0x00201209

STUDY_KEYS = frozenset(
    {STUDY_UID, STUDY_DATE, MODALITIES_IN_STUDY, SERIES_IN_STUDY, INSTANCES_IN_STUDY, PATIENT_ID,
     OTHER_PATIENT_IDS, INSTITUTION, PATIENT_BIRTH_DATE}
)  # fmt: skip
SERIES_KEYS = frozenset({SERIES_UID, MODALITY, INSTANCES_IN_SERIES})
IMAGE_KEYS = frozenset({SOP_INSTANCE_UID})

SUCCESS = 0x0000
CANCEL = 0xFE00
# Answer counts that look like a server's cap rather than an archive's size: split to be sure.
_ROUND = frozenset({50, 100, 200, 250, 500, 1000, 1024, 2000, 2048, 2500, 4096, 5000, 10000, 20000, 50000})
_WILDCARDS = frozenset("*?\\")
# A modality is a Code String (PS3.5 6.2): anything else a server puts there is not reported,
# so a peer cannot smuggle text (a name, say) into the result's keys; at most 64 of them.
_MODALITY = re.compile(r"[A-Z0-9_ ]{1,16}")
_DIGITS = "0123456789"
_CAPITALS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_EARLIEST = date(1800, 1, 1)
_LATEST = date(9999, 12, 31)
_PREFIX_DEPTH = 24


class _BudgetSpent(Exception):
    """The query, answer or time budget ran out: what was counted so far is a lower bound."""


class _FindRefused(Exception):
    def __init__(self, refusal: FindRefusal) -> None:
        super().__init__(refusal.kind)
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class _Answer:
    count: int
    capped: bool
    new: int
    """Studies this answer added to the tally."""
    sample: list[str]
    """Dates (YYYYMMDD) of the key being split, seen in a capped answer: where to split it next."""
    without_birth_date: int
    """Answers whose patient had no birth date."""


@dataclass
class _Tally:
    """Everything the census keeps: counters and keyed hashes, never a value."""

    key: bytes
    studies: set[int] = field(default_factory=set)
    patients: set[bytes] = field(default_factory=set)
    ssn: set[bytes] = field(default_factory=set)
    military: set[bytes] = field(default_factory=set)
    series: int = 0
    instances: int = 0
    modalities: Counter[str] = field(default_factory=Counter)
    years: Counter[int] = field(default_factory=Counter)
    months: Counter[tuple[int, int]] = field(default_factory=Counter)
    """Studies per (year, month), in memory only: plans the StudyDate pass."""
    undated: int = 0
    without_birth_date: int = 0
    """Studies of patients without a birth date: a birth-date split cannot reach those."""
    undated_without_birth_date: int = 0
    """...and without a StudyDate either: only a PatientID split reaches those."""
    institution: int = 0
    modalities_from_studies: bool = False
    id_chars: list[set[str]] = field(default_factory=list)
    """Characters seen at each position of PatientIDs (not the IDs): the alphabet for prefix splits."""
    to_descend: list[str] = field(default_factory=list)
    """StudyInstanceUIDs whose series/instances must be counted below STUDY level (in memory only)."""

    def patient_key(self, patient_id: str) -> bytes:
        return hmac.new(self.key, patient_id.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()[:16]

    def add_study(self, keys: dict[int, str]) -> bool:
        """Fold one STUDY-level answer in; False if that study was counted already."""
        uid = keys.get(STUDY_UID, "")
        marker = hash(uid) if uid else hash(tuple(sorted(keys.items())))
        if marker in self.studies:
            return False
        self.studies.add(marker)
        patient_id = keys.get(PATIENT_ID, "")
        if patient_id:
            for position, char in enumerate(patient_id[:_PREFIX_DEPTH]):
                if position == len(self.id_chars):
                    self.id_chars.append(set())
                self.id_chars[position].add(char)
            patient = self.patient_key(patient_id)
            self.patients.add(patient)
            identifiers = [patient_id, *split_multi_value(keys.get(OTHER_PATIENT_IDS, ""))]
            if any(is_ssn_shaped(v) for v in identifiers):
                self.ssn.add(patient)
            if any(is_military_id_shaped(v) for v in identifiers):
                self.military.add(patient)
        study_date = keys.get(STUDY_DATE, "")
        year = _year(study_date)
        if year is None:
            self.undated += 1
        else:
            self.years[year] += 1
            month = study_date.strip()[4:6]
            if _digits(month) and 1 <= int(month) <= 12:
                self.months[(year, int(month))] += 1
        if not keys.get(PATIENT_BIRTH_DATE, "").strip():
            self.without_birth_date += 1
            self.undated_without_birth_date += year is None
        for modality in set(split_multi_value(keys.get(MODALITIES_IN_STUDY, ""))):
            if _MODALITY.fullmatch(modality) and (modality in self.modalities or len(self.modalities) < 64):
                self.modalities[modality.upper()] += 1
                self.modalities_from_studies = True
        if keys.get(INSTITUTION, "").strip():
            self.institution += 1
        series, instances = _int(keys.get(SERIES_IN_STUDY)), _int(keys.get(INSTANCES_IN_STUDY))
        self.series += series or 0
        self.instances += instances or 0
        if (series is None or instances is None) and uid:
            self.to_descend.append(uid)
        return True


def _digits(value: str) -> bool:
    """ASCII digits only: `str.isdigit` also accepts '²' and other characters `int` refuses."""
    return value.isascii() and value.isdigit()


def _year(value: str) -> int | None:
    value = value.strip()
    if len(value) >= 4 and _digits(value[:4]):
        year = int(value[:4])
        return year if 1800 <= year <= 2200 else None
    return None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    return int(value) if _digits(value) and len(value) <= 12 else None


StudyTally = _Tally
"""The census's tally, shared with the HTTP census: it folds STUDY-level answers given as
``{tag: string}`` (multiple values joined by backslashes, as C-FIND decodes them)."""


def count_value(value: str | None) -> int | None:
    """A count (IS) as the census reads it: ASCII digits only, at most 12 of them, so that a
    hostile peer cannot inflate a total with an absurd number."""
    return _int(value)


def tally_summary(tally: _Tally) -> tuple[dict[str, int], StudyYears, SensitiveShapes]:
    """What a tally reports besides the counts: studies per modality, per year, identifier shapes."""
    years = sorted(tally.years)
    study_dates = StudyYears(
        min=years[0] if years else None,
        max=years[-1] if years else None,
        per_year={str(y): tally.years[y] for y in years},
        undated=tally.undated,
    )
    sensitive = SensitiveShapes(
        ssn_shaped=len(tally.ssn),
        military_id_shaped=len(tally.military),
        studies_with_institution=tally.institution,
    )
    return dict(sorted(tally.modalities.items())), study_dates, sensitive


def _da(day: date) -> str:
    return day.strftime("%Y%m%d")


def _median_day(dates: list[str], lo: date, hi: date) -> date:
    """Where to split [lo, hi]: the median of the dates a capped answer showed inside it, so
    both halves hold about as much; the middle of the range when the answer said nothing."""
    inside = sorted(d for d in dates if _da(lo) <= d <= _da(hi))
    middle = lo + (hi - lo) // 2
    if len(inside) >= 2:
        try:
            median = date(int(inside[len(inside) // 2][:4]), int(inside[len(inside) // 2][4:6]),
                          int(inside[len(inside) // 2][6:8]))  # fmt: skip
        except ValueError:
            return middle
        return min(max(median, lo), hi - timedelta(days=1))
    return middle


def _range_of(value: str) -> tuple[str, str] | None:
    """The bounds of a DA range or single date as asked (`a-b`, `a`); None when universal."""
    if not value:
        return None
    lo, _, hi = value.partition("-") if "-" in value else (value, "", value)
    return lo, hi


def _within(value: str, bounds: tuple[str, str]) -> bool:
    """Whether a returned date lies in the range asked. An empty one does not: no date matches
    a range (PS3.4 C.2.2.2.5), so a server that returns one ignored the key."""
    value = value.strip()
    if not value:
        return False
    lo, hi = bounds
    return (not lo or value[:8] >= lo) and (not hi or value[:8] <= hi)


class _Census:
    def __init__(self, association: Association, settings: ScanSettings, key: bytes) -> None:
        self.association = association
        self.settings = settings
        self.transfer_syntax = association.transfer_syntax_for(STUDY_ROOT_FIND) or "1.2.840.10008.1.2"
        self.tally = _Tally(key)
        self.queries = 0
        self.answers = 0
        self.cap: int | None = None
        self.capped = False
        self.signals_cap = False
        """The server has marked a cut-short answer itself (status cancel we did not ask for)."""
        self.split: list[str] = []
        self.started = time.monotonic()
        self.birth_date_ignored = False
        """An answer's PatientBirthDate fell outside the range asked: that key cannot split here."""
        self.repeating = False
        """A capped answer repeated the same studies: splitting it further would only repeat them."""

    async def find(
        self,
        elements: Sequence[tuple[int, str, str]],
        wanted: frozenset[int],
        level: str,
        on_answer: Callable[[dict[int, str]], object] | None = None,
    ) -> tuple[int, bool, list[dict[int, str]]]:
        """One C-FIND: (answers, cut short?, decoded answers); refusals and budgets raise.

        With `on_answer`, each answer is folded in as it arrives and none is kept (STUDY level:
        they carry PatientIDs); without, the decoded answers are returned (SERIES level: UIDs).
        """
        s = self.settings
        if self.queries >= s.max_queries:
            raise _BudgetSpent(f"query budget of {s.max_queries} spent")
        if time.monotonic() - self.started > s.census_time:
            raise _BudgetSpent(f"census time of {s.census_time:g} s spent")
        if self.queries:
            await asyncio.sleep(s.query_pause)
        self.queries += 1
        identifier = encode_identifier([(QUERY_LEVEL, "CS", level), *elements], self.transfer_syntax)
        limit = min(s.max_answers_per_query, max(s.max_answers - self.answers, 1))
        decoded: list[dict[int, str]] = []
        count = 0
        final = SUCCESS
        discarded = 0
        responses = self.association.find(STUDY_ROOT_FIND, identifier, max_responses=limit)
        async with aclosing(responses):
            async for response in responses:
                if response.identifier is not None and is_pending(response.status):
                    count += 1
                    self.answers += 1
                    answer = decode_identifier(response.identifier, self.transfer_syntax, wanted)
                    if on_answer is None:
                        decoded.append(answer)
                    else:
                        on_answer(answer)
                elif response.identifier is None:
                    final, discarded = response.status, response.discarded
        if status_category(final) == "failure":
            raise _FindRefused(FindRefusal(kind="status", status=final, status_text=status_words(final)))
        if final == CANCEL and not discarded:
            self.signals_cap = True
            self.cap = max(self.cap or 0, count)
        if discarded and self.answers >= s.max_answers:
            raise _BudgetSpent(f"answer budget of {s.max_answers} spent")
        return count, final == CANCEL or discarded > 0, decoded

    async def study_query(
        self, constraints: Sequence[tuple[int, str, str]] = (), *, sample: int | None = None
    ) -> _Answer:
        """A STUDY-level query with the census keys; `constraints` narrow StudyDate, PatientID, birth date."""
        keys = {STUDY_DATE: "", PATIENT_ID: "", PATIENT_BIRTH_DATE: ""}
        keys.update({tag: value for tag, _, value in constraints})
        elements = [
            (STUDY_UID, "UI", ""),
            (STUDY_DATE, "DA", keys[STUDY_DATE]),
            (MODALITIES_IN_STUDY, "CS", ""),
            (SERIES_IN_STUDY, "IS", ""),
            (INSTANCES_IN_STUDY, "IS", ""),
            (PATIENT_ID, "LO", keys[PATIENT_ID]),
            (OTHER_PATIENT_IDS, "LO", ""),
            (INSTITUTION, "LO", ""),
            (PATIENT_BIRTH_DATE, "DA", keys[PATIENT_BIRTH_DATE]),
        ]
        birth_range = _range_of(keys[PATIENT_BIRTH_DATE])
        before = len(self.tally.studies)
        distinct: set[int] = set()
        dates: list[str] = []
        no_birth = 0

        def fold(answer: dict[int, str]) -> None:
            nonlocal no_birth
            distinct.add(hash(answer.get(STUDY_UID, "")))
            no_birth += not answer.get(PATIENT_BIRTH_DATE, "").strip()
            if sample is not None and len(value := answer.get(sample, "").strip()) >= 8:
                dates.append(value[:8])  # for a split point only; gone when this query ends
            if birth_range is not None and not _within(answer.get(PATIENT_BIRTH_DATE, ""), birth_range):
                self.birth_date_ignored = True  # the server does not match on PatientBirthDate
            self.tally.add_study(answer)

        count, cut, _ = await self.find(elements, STUDY_KEYS, "STUDY", on_answer=fold)
        new = len(self.tally.studies) - before
        # A server that marks its cap is believed; one that never has may stop silently at a round number.
        silent = not (cut or self.signals_cap) and (
            count in _ROUND or (self.cap is not None and count >= self.cap)
        )
        if silent:
            self.cap = max(self.cap or 0, count)
        capped = cut or silent
        self.capped |= capped
        if capped and len(distinct) * 2 <= count:
            # The same studies over and over: splitting would only repeat them. Stop here.
            self.repeating = True
            capped = False
        return _Answer(count, capped, new, dates if capped else [], no_birth)

    async def count_studies(self) -> None:
        """Exact study counts past a result cap, with as few queries as the archive allows.

        The first split is the patient's birth date: a date (so it bisects evenly), held by
        nearly every patient record even where the study itself has no date, so one pass
        reaches dated and undated studies alike. Studies of patients without a birth date
        (or every study, on a server that cannot match on it) are reached by StudyDate, in
        ranges planned from the months already seen, and the undated among those by PatientID
        prefix once one has shown itself.
        """
        whole = await self.study_query()
        if not whole.capped:
            return
        self._note("patient-birth-date")
        await self._split_dates(PATIENT_BIRTH_DATE, _EARLIEST, date.today(), [])
        # Patients without a birth date match no birth-date range, and the first answer only
        # samples them: look by StudyDate always, in ranges packed by what is known per month.
        self._note("study-date")
        for first, last in self._study_date_plan():
            await self._split_dates(STUDY_DATE, first, last, [])
        # Undated studies of patients without a birth date: only a PatientID split reaches them,
        # at the price of listing the archive again, so only once one has shown itself.
        if self.tally.undated_without_birth_date or (self.birth_date_ignored and self.tally.undated):
            await self._by_patient_prefix([])

    def _study_date_plan(self) -> list[tuple[date, date]]:
        """StudyDate ranges that should each answer whole: months packed to about 80 % of the cap
        by the studies already counted; the open ends before and after are one range each."""
        months = self.tally.months
        if not months:
            return [(_EARLIEST, _LATEST)]
        target = max(1, int((self.cap or 100) * 0.8))
        first, last = min(months), max(months)
        plan: list[tuple[date, date]] = [(_EARLIEST, date(*first, 1) - timedelta(days=1))]
        start, load = first, 0
        year, month = first
        while (year, month) <= last:
            if load and load + months[(year, month)] > target:
                plan.append((date(*start, 1), date(year, month, 1) - timedelta(days=1)))
                start, load = (year, month), 0
            load += months[(year, month)]
            year, month = year + month // 12, month % 12 + 1
        plan.append((date(*start, 1), date(year, month, 1) - timedelta(days=1)))
        plan.append((date(year, month, 1), _LATEST))
        return [(lo, hi) for lo, hi in plan if lo <= hi]

    async def _split_dates(
        self, tag: int, first: date, last: date, base: Sequence[tuple[int, str, str]]
    ) -> None:
        """Split a capped date range (on `tag`) at the median date its answers showed, until each
        part answers whole; a capped single day is split by PatientID prefix."""
        stack = [(first, last)] if first <= last else []
        while stack:
            if tag == PATIENT_BIRTH_DATE and self.birth_date_ignored:
                return
            lo, hi = stack.pop()
            constraint = (tag, "DA", f"{_da(lo)}-{_da(hi)}" if lo != hi else _da(lo))
            answer = await self.study_query([*base, constraint], sample=tag)
            if not answer.capped:
                continue
            if lo == hi:
                # In the StudyDate pass, only birth-date-less patients are still unknown: split a
                # full day by PatientID only where its answer showed one.
                sweep = tag == STUDY_DATE and not base and not self.birth_date_ignored
                if not sweep or answer.without_birth_date:
                    await self._by_patient_prefix([*base, constraint])
                continue
            middle = _median_day(answer.sample, lo, hi)
            stack.append((middle + timedelta(days=1), hi))
            stack.append((lo, middle))

    def _alphabet(self, position: int) -> list[str]:
        """Characters to try at `position` of a PatientID prefix.

        Digits always; every character seen there so far; all capitals where a letter was
        seen there. An ID with a character outside that at its position is missed: a
        documented limit (DICOM wildcards have no character classes to do better).
        """
        seen = self.tally.id_chars[position] if position < len(self.tally.id_chars) else set()
        seen = {c for c in seen if c.isascii() and c.isprintable()}  # queries are ASCII
        chars = set(_DIGITS) | seen
        if any(c.isalpha() and c.isupper() for c in seen):
            chars |= set(_CAPITALS)
        if any(c.isalpha() and c.islower() for c in seen):
            chars |= set(_CAPITALS.lower())
        return sorted(chars - _WILDCARDS)

    async def _by_patient_prefix(self, constraints: Sequence[tuple[int, str, str]]) -> None:
        """Split on PatientID prefixes, one character deeper where an answer is still capped."""
        self._note("patient-id")
        stack = [""]
        while stack:
            prefix = stack.pop()
            if len(prefix) >= _PREFIX_DEPTH:
                continue
            for char in reversed(self._alphabet(len(prefix))):
                child = prefix + char
                narrowed = [*constraints, (PATIENT_ID, "LO", child + "*")]
                answer = await self.study_query(narrowed)
                if answer.capped and len(child) >= _PREFIX_DEPTH:
                    # One long ID (a patient with more studies than the cap): split by StudyDate.
                    await self._split_dates(STUDY_DATE, _EARLIEST, _LATEST, narrowed)
                elif answer.capped:
                    stack.append(child)

    async def count_below_study(self) -> None:
        """Series and instances where the STUDY-level keys did not say (hierarchical servers).

        First one SERIES-level and one IMAGE-level query with the study left universal (dcmqrscp
        answers those whole); if a server wants the hierarchy, one query per study and series.
        """
        tally = self.tally
        if not tally.to_descend:
            return
        series_keys = [(STUDY_UID, "UI", ""), (SERIES_UID, "UI", ""), (MODALITY, "CS", ""),
                       (INSTANCES_IN_SERIES, "IS", "")]  # fmt: skip
        count, cut, series = await self.find(series_keys, SERIES_KEYS | {STUDY_UID}, "SERIES")
        if count and not cut:
            self._fold_series(series)
            count, cut, _ = await self.find(
                [(STUDY_UID, "UI", ""), (SERIES_UID, "UI", ""), (SOP_INSTANCE_UID, "UI", "")],
                IMAGE_KEYS, "IMAGE",
            )  # fmt: skip
            if count and not cut:
                if not any(_int(one.get(INSTANCES_IN_SERIES)) is not None for one in series):
                    tally.instances = count
                tally.to_descend.clear()
                return
        tally.series = tally.instances = 0
        if not tally.modalities_from_studies:
            tally.modalities.clear()
        for study_uid in tally.to_descend:
            _, cut, series = await self.find(
                [(STUDY_UID, "UI", study_uid), *series_keys[1:]], SERIES_KEYS | {STUDY_UID}, "SERIES"
            )
            if cut:
                raise _BudgetSpent("a SERIES-level answer was cut short")
            self._fold_series(series, study_uid)
            for one in series:
                if _int(one.get(INSTANCES_IN_SERIES)) is not None:
                    continue
                count, cut, _ = await self.find(
                    [(STUDY_UID, "UI", study_uid), (SERIES_UID, "UI", one.get(SERIES_UID, "")),
                     (SOP_INSTANCE_UID, "UI", "")],
                    IMAGE_KEYS, "IMAGE",
                )  # fmt: skip
                if cut:
                    raise _BudgetSpent("an IMAGE-level answer was cut short")
                tally.instances += count
        tally.to_descend.clear()

    def _fold_series(self, series: list[dict[int, str]], study_uid: str | None = None) -> None:
        """Count SERIES-level answers: series, instances where given, modalities per study if missing."""
        tally = self.tally
        tally.series += len({one.get(SERIES_UID) or id(one) for one in series})
        tally.instances += sum(_int(one.get(INSTANCES_IN_SERIES)) or 0 for one in series)
        if tally.modalities_from_studies:
            return
        per_study = {
            (study_uid or one.get(STUDY_UID, ""), one.get(MODALITY, "").strip().upper()) for one in series
        }
        tally.modalities.update(
            modality
            for _, modality in per_study
            if _MODALITY.fullmatch(modality) and (modality in tally.modalities or len(tally.modalities) < 64)
        )

    def _note(self, split: str) -> None:
        if split not in self.split:
            self.split.append(split)

    def fill(self, block: DicomBlock, complete: bool, reason: str | None, counted_from: str | None) -> None:
        t = self.tally
        block.counts = StudyCounts(
            patients=len(t.patients),
            studies=len(t.studies),
            series=t.series,
            instances=t.instances,
            complete=complete,
            queries=self.queries,
            capped=self.capped,
            cap=self.cap,
            split=self.split,
            counted_from=counted_from,
            incomplete_reason=reason,
        )
        block.modalities, block.study_dates, block.sensitive = tally_summary(t)


class CensusProbe:
    """`--census`: count studies, series, instances and patients a stranger can enumerate."""

    name = "census"

    def __init__(self, key: bytes) -> None:
        self._key = key

    def abstract_syntaxes(self, settings: ScanSettings) -> Sequence[str]:
        return (STUDY_ROOT_FIND,)

    async def run(self, association: Association, block: DicomBlock, settings: ScanSettings) -> None:
        if association.accepted_context(STUDY_ROOT_FIND) is None:
            return
        census = _Census(association, settings, self._key)
        complete, reason = True, None
        try:
            await census.count_studies()
            descended = bool(census.tally.to_descend)
            counted_from = "study-keys"
            if descended:
                counted_from = "image-level"
                await census.count_below_study()
        except _FindRefused as refused:
            if census.queries <= 1:
                _refused(block, refused.refusal)
                return
            complete, reason = False, f"the server refused a later query: {refused.refusal.status_text}"
            counted_from = None
        except _BudgetSpent as spent:
            complete, reason = False, str(spent)
            counted_from = "image-level" if census.tally.to_descend else "study-keys"
        except DicomProtocolError as exc:  # the answers broke the protocol: an error, not a refusal
            complete, reason = False, f"malformed answer: {exc}"
            counted_from = None
        except (AssociationAbortedError, PeerClosedError, TimeoutError, NotDicomError, OSError) as exc:
            if census.queries <= 1 and census.answers == 0:
                _refused(block, _refusal_of(exc))
                return
            complete, reason = False, f"the server stopped answering: {type(exc).__name__}"
            counted_from = None
        if census.repeating and complete:
            complete, reason = (
                False,
                "the server repeats the same answers past its cap: counts are lower bounds",
            )
        _verified(block)
        census.fill(block, complete, reason, counted_from)


def _refusal_of(exc: BaseException) -> FindRefusal:
    if isinstance(exc, AssociationAbortedError):
        abort = exc.abort
        return FindRefusal(
            kind="abort",
            abort_source=abort.source if abort else None,
            abort_reason=abort.reason if abort else None,
        )
    if isinstance(exc, TimeoutError):
        return FindRefusal(kind="timeout")
    return FindRefusal(kind="closed")


def _verified(block: DicomBlock) -> None:
    _find_proven(block, True, "verified")


def _find_proven(block: DicomBlock, granted: bool, evidence: Evidence) -> None:
    """Replace the negotiated C-FIND entry of the services matrix with what a real C-FIND showed
    (the matrix blocks are immutable, and may be shared with other results)."""
    if block.services is not None and block.services_evidence is not None:
        block.services = block.services.model_copy(update={"find": granted})
        block.services_evidence = block.services_evidence.model_copy(update={"find": evidence})


def _refused(block: DicomBlock, refusal: FindRefusal) -> None:
    """The C-FIND context was accepted but the operation refused: the precise way, and the evidence."""
    block.find_refusal = refusal
    _find_proven(block, False, "refused")
