"""`pacsaudit diff` as pure functions: hand-built scans in, new / gone / changed and totals out."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import pacsaudit.reports as reports
from pacsaudit.model import EndpointResult, Status
from pacsaudit.reports import (
    ScanInfo,
    Scope,
    ScopeVerdict,
    diff_scans,
    render_json,
    render_markdown,
    render_table,
)
from pacsaudit.reports.diff import LIST_LIMIT

from .builders import not_dicom, system

CHECK_CONTRACT = Path("/work/shared/tools/check-contract.py")
LAB_SCOPE = Scope.of(["127.88.0.0/30"], [104, 4242])


def kinds(diff: reports.ScanDiff) -> list[str]:
    return [change.kind for system in diff.changed for change in system.changes]


# --- new, gone, still, not rescanned -----------------------------------------------------------


def test_new_gone_still_and_not_rescanned() -> None:
    # Given a scan of 127.88.0.0/30 plus a stray host, then a rescan of 127.88.0.0/30 on 104 and 4242
    earlier = [
        system("127.88.0.1"),  # still there
        system("127.88.0.2"),  # no record later, in scope: gone
        system("127.88.0.2", 4242),  # later not DICOM: gone
        system("127.88.0.2", 11112),  # port outside the later port list: not rescanned
        not_dicom("127.88.0.3"),  # later DICOM: new
        system("127.99.0.1"),  # address outside the later targets: not rescanned
    ]
    later = [
        system("127.88.0.1"),
        not_dicom("127.88.0.2", 4242, status=Status.IO_TIMEOUT),
        system("127.88.0.3"),
        system("127.88.0.3", 4242),  # no earlier record: new
    ]

    # When
    diff = diff_scans(iter(earlier), iter(later), later_scope=LAB_SCOPE)

    # Then
    assert [(e.ip, e.port, e.reason, e.counterpart_status) for e in diff.new] == [
        ("127.88.0.3", 104, "not-dicom", "not-dicom"),
        ("127.88.0.3", 4242, "no-record", None),
    ]
    assert [(e.ip, e.port, e.reason, e.counterpart_status) for e in diff.gone] == [
        ("127.88.0.2", 104, "no-record", None),
        ("127.88.0.2", 4242, "not-dicom", "io-timeout"),
    ]
    assert [(e.ip, e.port, e.reason) for e in diff.not_rescanned] == [
        ("127.88.0.2", 11112, "out-of-scope"),
        ("127.99.0.1", 104, "out-of-scope"),
    ]
    assert diff.changed == ()
    assert diff.unchanged == 1
    assert (diff.earlier_records, diff.later_records) == (6, 4)
    assert diff.scope_known


def test_without_a_scope_nothing_missing_is_called_gone() -> None:
    earlier = [system("127.88.0.1"), system("127.88.0.2", 4242)]
    later = [not_dicom("127.88.0.2", 4242)]

    diff = diff_scans(earlier, later, later_scope=None)

    assert [(e.ip, e.reason) for e in diff.not_rescanned] == [("127.88.0.1", "scope-unknown")]
    assert [(e.ip, e.reason) for e in diff.gone] == [("127.88.0.2", "not-dicom")]  # it was probed
    assert not diff.scope_known
    assert diff.scope_notes == ("the later scan's scope was not given",)


def test_an_unfinished_later_scan_calls_nothing_gone_for_lack_of_a_record() -> None:
    scope = Scope.of(["127.88.0.0/30"], [104], finished=False)

    diff = diff_scans([system("127.88.0.1")], [], later_scope=scope)

    assert diff.gone == ()
    assert [e.reason for e in diff.not_rescanned] == ["later-scan-unfinished"]


def test_everything_scope_for_scans_known_to_match() -> None:
    diff = diff_scans([system("127.88.0.1", 4242)], [], later_scope=Scope.everything())

    assert [(e.ip, e.reason) for e in diff.gone] == [("127.88.0.1", "no-record")]


def test_out_of_order_input_is_refused_not_silently_misjoined() -> None:
    with pytest.raises(ValueError, match="earlier scan is not in increasing"):
        diff_scans([system("127.88.0.2"), system("127.88.0.1")], [], later_scope=LAB_SCOPE)
    with pytest.raises(ValueError, match="later scan"):
        diff_scans([], [system("127.88.0.1"), system("127.88.0.1")], later_scope=LAB_SCOPE)


def test_order_is_the_stores_text_order_not_numeric_order() -> None:
    # "127.88.0.10" sorts before "127.88.0.2" as text, which is how ScanStore streams them.
    earlier = [system("127.88.0.10"), system("127.88.0.2")]
    later = [system("127.88.0.10"), system("127.88.0.2")]

    assert diff_scans(earlier, later, later_scope=None).unchanged == 2


# --- scope -------------------------------------------------------------------------------------


def test_scope_of_specs_ports_host_port_specs_and_exclusions() -> None:
    scope = Scope.of(["127.88.0.0/30,127.77.0.5:4242", "127.66.0.1-3"], [104], exclude=["127.88.0.2"])

    assert scope.verdict("127.88.0.1", 104) is ScopeVerdict.IN
    assert scope.verdict("127.88.0.3", 104) is ScopeVerdict.IN
    assert scope.verdict("127.88.0.4", 104) is ScopeVerdict.OUT  # a /30 ends at .3
    assert scope.verdict("127.88.0.1", 4242) is ScopeVerdict.OUT
    assert scope.verdict("127.88.0.2", 104) is ScopeVerdict.OUT  # excluded
    assert scope.verdict("127.77.0.5", 4242) is ScopeVerdict.IN  # its own port replaces the list
    assert scope.verdict("127.77.0.5", 104) is ScopeVerdict.OUT
    assert scope.verdict("127.66.0.3", 104) is ScopeVerdict.IN
    assert scope.verdict("::ffff:127.88.0.1", 104) is ScopeVerdict.IN  # IPv4-mapped
    assert scope.known


def test_scope_of_hostname_targets_matches_the_records_hostname() -> None:
    scope = Scope.of(["pacs.lab.test"], [104])

    assert scope.verdict("127.88.0.9", 104, "PACS.lab.test.") is ScopeVerdict.IN
    assert scope.verdict("127.88.0.9", 104) is ScopeVerdict.OUT
    assert scope.verdict("pacs.lab.test", 104) is ScopeVerdict.IN  # unresolved: keyed by name


def test_scope_from_stored_arguments() -> None:
    arguments = {"targets": ["127.88.0.0/30"], "ports": [104, 4242], "files": [], "exclude": ["127.88.0.3"]}

    scope = Scope.from_arguments(arguments)

    assert scope.verdict("127.88.0.1", 4242) is ScopeVerdict.IN
    assert scope.verdict("127.88.0.3", 104) is ScopeVerdict.OUT
    assert scope.known and scope.notes == ()


@pytest.mark.parametrize(
    ("arguments", "note"),
    [
        ({"imported_from": "results.jsonl"}, "the scan's targets are not recorded"),
        ({"targets": ["127.88.0.0/30"]}, "the scan's port list is not recorded"),
        (
            {"targets": ["127.88.0.0/30"], "ports": [104], "exclude": 7},
            "the scan's exclusions cannot be read",
        ),
        (
            {"targets": ["127.88.0.0/30"], "ports": [104], "exclude_files": ["/nonexistent/x"]},
            "exclusion file '/nonexistent/x' is gone",
        ),
    ],
)
def test_missing_arguments_make_the_scope_unknown_not_empty(arguments: dict[str, Any], note: str) -> None:
    scope = Scope.from_arguments(arguments)

    assert scope.verdict("127.88.0.1", 104) is ScopeVerdict.UNKNOWN
    assert note in scope.notes
    assert not scope.known


def test_ports_from_settings_or_typed_as_text() -> None:
    settings = Scope.from_arguments({"targets": ["127.88.0.1"], "settings": {"ports": [11112]}})
    text = Scope.from_arguments({"targets": ["127.88.0.1"], "ports": "104,4240-4242"})

    assert settings.verdict("127.88.0.1", 11112) is ScopeVerdict.IN
    assert text.verdict("127.88.0.1", 4241) is ScopeVerdict.IN
    assert text.verdict("127.88.0.1", 11112) is ScopeVerdict.OUT


def test_target_and_exclusion_files_are_read_back_only_if_unchanged(tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("# lab\n127.88.0.0/30\n127.77.0.5:4242\n", encoding="utf-8")
    excluded = tmp_path / "exclude.txt"
    excluded.write_text("127.88.0.2\n", encoding="utf-8")
    arguments = {"targets": [], "ports": [104], "files": [str(targets)], "exclude_files": [str(excluded)]}
    after_writing = datetime.now(UTC) + timedelta(seconds=5)
    before_writing = datetime.now(UTC) - timedelta(hours=1)

    unchanged = Scope.from_arguments(arguments, recorded_at=after_writing)
    changed = Scope.from_arguments(arguments, recorded_at=before_writing)

    assert unchanged.verdict("127.88.0.1", 104) is ScopeVerdict.IN
    assert unchanged.verdict("127.77.0.5", 4242) is ScopeVerdict.IN
    assert unchanged.verdict("127.88.0.2", 104) is ScopeVerdict.OUT
    assert unchanged.verdict("127.99.0.1", 104) is ScopeVerdict.OUT
    assert unchanged.known
    # Files edited after the scan started no longer say what it read: nothing can be "in" or "out".
    assert changed.verdict("127.88.0.1", 104) is ScopeVerdict.UNKNOWN
    assert changed.verdict("127.99.0.1", 104) is ScopeVerdict.UNKNOWN
    assert any("changed after the scan started" in note for note in changed.notes)


def test_standard_input_as_a_target_file_leaves_the_scope_open() -> None:
    scope = Scope.from_arguments({"targets": ["127.88.0.1"], "ports": [104], "files": ["-"]})

    assert scope.verdict("127.88.0.1", 104) is ScopeVerdict.IN
    assert scope.verdict("127.99.0.1", 104) is ScopeVerdict.UNKNOWN


# --- what changed on a system that is still there ------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "kind", "field"),
    [
        ({"open_to_any_ae": False}, {"open_to_any_ae": True}, "opened-to-any-ae", "open_to_any_ae"),
        ({"open_to_any_ae": True}, {"open_to_any_ae": False}, "closed-to-strangers", "open_to_any_ae"),
        ({"open_to_any_ae": True}, {"open_to_any_ae": None}, "open-to-any-ae-undetermined", "open_to_any_ae"),
        ({"open_to_any_ae": None}, {"open_to_any_ae": False}, "open-to-any-ae-determined", "open_to_any_ae"),
        ({"called_ae_check": False}, {"called_ae_check": True}, "called-ae-check-added", "called_ae_check"),
        ({"called_ae_check": True}, {"called_ae_check": False}, "called-ae-check-removed", "called_ae_check"),
        (
            {"calling_ae_check": None},
            {"calling_ae_check": True},
            "calling-ae-check-added",
            "calling_ae_check",
        ),
        (
            {"calling_ae_check": True},
            {"calling_ae_check": False},
            "calling-ae-check-removed",
            "calling_ae_check",
        ),
        ({"find": False}, {"find": True}, "service-granted", "services.find"),
        ({"move": True}, {"move": False}, "service-withdrawn", "services.move"),
        ({"get": False}, {"get": True}, "service-granted", "services.get"),
        ({"store": True}, {"store": None}, "service-undetermined", "services.store"),
        ({"product": "Orthanc"}, {"product": "dcm4chee-arc"}, "product-changed", "product"),
        ({"version": "1.11.0"}, {"version": "1.12.1"}, "version-changed", "version"),
        ({"studies": 100}, {"studies": 140}, "studies-grew", "counts.studies"),
        ({"studies": 100}, {"studies": 90}, "studies-shrank", "counts.studies"),
        ({"instances": 1000}, {"instances": 1600}, "instances-grew", "counts.instances"),
        ({"patients": 50}, {"patients": 40}, "patients-shrank", "counts.patients"),
        ({"series": 5}, {"series": 6}, "series-grew", "counts.series"),
        ({"status": Status.SUCCESS}, {"status": Status.IO_TIMEOUT}, "status-changed", "status"),
        ({"association": "accepted"}, {"association": "rejected"}, "association-changed", "association"),
    ],
)
def test_every_kind_of_change(before: dict[str, Any], after: dict[str, Any], kind: str, field: str) -> None:
    diff = diff_scans(
        [system("127.88.0.1", **before)], [system("127.88.0.1", **after)], later_scope=LAB_SCOPE
    )

    [changed] = diff.changed
    [change] = changed.changes
    assert (change.kind, change.field) == (kind, field)
    assert diff.unchanged == 0


def test_count_changes_carry_deltas_and_lower_bounds() -> None:
    diff = diff_scans(
        [system("127.88.0.1", studies=200, complete=True)],
        [system("127.88.0.1", studies=250, complete=False)],
        later_scope=LAB_SCOPE,
    )

    [change] = diff.changed[0].changes
    assert (change.before, change.after, change.delta, change.delta_pct) == (200, 250, 50, 25.0)
    assert (change.before_complete, change.after_complete) == (True, False)


def test_counts_missing_on_one_side_are_not_a_change() -> None:
    # The earlier scan ran without --census: no counts to compare, nothing "grew".
    diff = diff_scans([system("127.88.0.1")], [system("127.88.0.1", studies=10)], later_scope=LAB_SCOPE)

    assert diff.unchanged == 1


def test_several_changes_on_one_system_are_listed_together() -> None:
    diff = diff_scans(
        [system("127.88.0.1", open_to_any_ae=False, find=False, version="1.11.0")],
        [system("127.88.0.1", open_to_any_ae=True, find=True, version="1.12.1")],
        later_scope=LAB_SCOPE,
    )

    assert kinds(diff) == ["opened-to-any-ae", "service-granted", "version-changed"]


# --- totals ------------------------------------------------------------------------------------


def test_totals_absolute_and_percent() -> None:
    earlier = [
        system("127.88.0.1", studies=100, instances=1000, patients=40),
        system("127.88.0.2", studies=100, instances=1000, patients=10),
    ]
    later = [
        system("127.88.0.1", studies=120, instances=1800, patients=45),
        system("127.88.0.2", studies=160, instances=1400, patients=5),
        system("127.88.0.3", studies=0, instances=0, patients=0),
    ]

    totals = diff_scans(earlier, later, later_scope=LAB_SCOPE).totals()

    assert (totals["systems"].earlier, totals["systems"].later, totals["systems"].delta) == (2, 3, 1)
    assert totals["systems"].delta_pct == 50.0
    assert (totals["studies"].earlier, totals["studies"].later, totals["studies"].delta_pct) == (
        200,
        280,
        40.0,
    )
    assert (totals["instances"].delta, totals["instances"].delta_pct) == (1200, 60.0)
    assert (totals["patients"].delta, totals["patients"].delta_pct) == (0, 0.0)
    assert all(row.earlier_complete and row.later_complete for row in totals.values())


def test_totals_percent_from_zero_and_from_nothing() -> None:
    # From 0 systems to 1: the change is +1, its percentage undefined (None), not a crash.
    from_zero = diff_scans([], [system("127.88.0.1", studies=5)], later_scope=LAB_SCOPE).totals()
    zero_to_zero = diff_scans(
        [system("127.88.0.1", studies=0)], [system("127.88.0.1", studies=0)], later_scope=LAB_SCOPE
    ).totals()
    no_census = diff_scans([system("127.88.0.1")], [system("127.88.0.1")], later_scope=LAB_SCOPE).totals()

    assert (from_zero["systems"].delta, from_zero["systems"].delta_pct) == (1, None)
    assert (from_zero["studies"].earlier, from_zero["studies"].delta, from_zero["studies"].delta_pct) == (
        None,
        None,
        None,
    )
    assert zero_to_zero["studies"].delta_pct == 0.0
    assert (no_census["studies"].earlier, no_census["studies"].later) == (None, None)


def test_an_archive_on_several_ports_counts_once_per_host() -> None:
    # One Orthanc answering on 104 and 4242 is one archive; a second host is another.
    later = [
        system("127.88.0.1", 104, studies=100, instances=900, patients=30),
        system("127.88.0.1", 4242, studies=100, instances=1000, patients=30),
        system("127.88.0.1", 11112, studies=60, instances=500, patients=20),
        system("127.88.0.2", 104, studies=7, instances=70, patients=3),
    ]

    totals = diff_scans([], later, later_scope=LAB_SCOPE).later_totals

    assert (totals.systems, totals.hosts) == (4, 2)
    assert (totals.studies, totals.instances, totals.patients) == (107, 1070, 33)


def test_lower_bounds_are_flagged_in_the_totals() -> None:
    later = [
        system("127.88.0.1", studies=100, instances=900, complete=False),  # lower bounds
        system("127.88.0.2", 104, studies=50, instances=500, patients=5, complete=True),
        system("127.88.0.2", 4242, studies=50, instances=400, patients=5, complete=False),
    ]

    totals = diff_scans([], later, later_scope=LAB_SCOPE).later_totals

    assert (totals.studies, totals.studies_complete) == (150, False)
    assert (totals.instances, totals.instances_complete) == (1400, False)
    # 127.88.0.1's census never reached patients: the total of 5 is a lower bound too.
    assert (totals.patients, totals.patients_complete) == (5, False)


def test_a_complete_census_on_one_port_makes_the_host_exact() -> None:
    later = [
        system("127.88.0.1", 104, studies=80, complete=False),
        system("127.88.0.1", 4242, studies=100, complete=True),
    ]

    totals = diff_scans([], later, later_scope=LAB_SCOPE).later_totals

    assert (totals.studies, totals.studies_complete) == (100, True)


def test_systems_without_a_census_do_not_make_totals_lower_bounds() -> None:
    later = [system("127.88.0.1", studies=10), system("127.88.0.2", open_to_any_ae=False)]

    totals = diff_scans([], later, later_scope=LAB_SCOPE).later_totals

    assert (totals.studies, totals.studies_complete, totals.systems) == (10, True, 2)


def test_group_key_splits_the_totals_once_attribution_exists() -> None:
    def parity(result: EndpointResult) -> str | None:
        last = int(result.ip.rsplit(".", 1)[1])
        return None if last == 3 else ("odd" if last % 2 else "even")

    later = [
        system("127.88.0.1", 104, studies=10),
        system("127.88.0.1", 4242, studies=10),
        system("127.88.0.2", studies=5),
        system("127.88.0.3", studies=1),
    ]

    diff = diff_scans([system("127.88.0.1", studies=8)], later, later_scope=LAB_SCOPE, group_key=parity)

    assert diff.by_group is not None
    assert sorted(diff.by_group) == ["(unattributed)", "even", "odd"]
    earlier_odd, later_odd = diff.by_group["odd"]
    assert (earlier_odd.studies, later_odd.studies, later_odd.systems, later_odd.hosts) == (8, 10, 2, 1)
    assert diff.by_group["even"][0].systems == 0
    assert diff_scans([], later, later_scope=LAB_SCOPE).by_group is None


# --- streaming ---------------------------------------------------------------------------------

OCTETS = sorted(str(n) for n in range(256))
"""Octets in text order: '.' sorts before every digit, so nested loops give the store's order."""


def synthetic_scan(count: int, *, later: bool) -> Iterator[EndpointResult]:
    """`count` systems on 127.x.y.z, generated one at a time; in the later scan every 1000th grew."""
    template = system("127.0.0.1", studies=10, instances=100, patients=2)
    grown = system("127.0.0.1", studies=11, instances=110, patients=2)
    made = 0
    for b in OCTETS:
        for c in OCTETS:
            for d in OCTETS:
                if made == count:
                    return
                model = grown if later and made % 1000 == 0 else template
                yield model.model_copy(update={"ip": f"127.{b}.{c}.{d}"})
                made += 1


def test_100k_endpoints_each_side_are_streamed_fast() -> None:
    started = time.perf_counter()
    diff = diff_scans(
        synthetic_scan(100_000, later=False),
        synthetic_scan(100_000, later=True),
        later_scope=Scope.of(["127.0.0.0/8"], [104]),
    )
    elapsed = time.perf_counter() - started

    assert len(diff.changed) == 100 and diff.unchanged == 99_900
    assert diff.later_totals.studies == 1_000_100
    assert elapsed < 5.0, f"diff of 2 x 100k endpoints took {elapsed:.1f} s"


def test_100k_endpoints_each_side_in_constant_memory() -> None:
    tracemalloc.start()
    try:
        diff = diff_scans(
            synthetic_scan(100_000, later=False),
            synthetic_scan(100_000, later=False),
            later_scope=Scope.of(["127.0.0.0/8"], [104]),
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert diff.unchanged == 100_000
    # Holding one scan would take ~100 MB of models; a stream holds a handful at a time.
    assert peak < 1_000_000, f"peak {peak:,} bytes"


# --- output ------------------------------------------------------------------------------------


def lab_diff() -> reports.ScanDiff:
    """Scan 12 (January) and scan 17 (March) of 127.88.0.0/30 on 104 and 4242, plus a stray host."""
    earlier = [
        system("127.88.0.1", studies=100, instances=2000, patients=40),
        system("127.88.0.2", product="DCMTK", version="3.6.7", open_to_any_ae=False, called_ae_check=True),
        system("127.99.0.1", studies=5, instances=50, patients=2),
    ]
    later = [
        system(
            "127.88.0.1",
            studies=130,
            instances=2600,
            patients=41,
            complete=False,
            called_ae_check=True,
            version="1.12.4",
        ),
        not_dicom("127.88.0.2", status=Status.CONNECTION_REFUSED),
        system("127.88.0.3", 4242, studies=10, instances=200, patients=4),
    ]
    return diff_scans(
        earlier,
        later,
        later_scope=LAB_SCOPE,
        earlier_info=ScanInfo(12, datetime(2026, 1, 5, 9, 0, tzinfo=UTC), None, "finished", "0.1.0"),
        later_info=ScanInfo(17, datetime(2026, 3, 6, 9, 30, tzinfo=UTC), None, "finished", "0.1.0"),
    )


def test_json_passes_the_public_contract(tmp_path: Path) -> None:
    path = tmp_path / "diff.json"
    path.write_text(render_json(lab_diff()), encoding="utf-8")

    checked = subprocess.run(
        [sys.executable, str(CHECK_CONTRACT), "diff", str(path)], capture_output=True, text=True, check=False
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "contract holds" in checked.stdout


def test_json_shape() -> None:
    doc = json.loads(render_json(lab_diff()))

    assert list(doc) == [
        "earlier",
        "later",
        "totals",
        "by_group",
        "new",
        "gone",
        "not_rescanned",
        "changed",
        "unchanged",
    ]
    assert doc["earlier"]["id"] == 12 and doc["earlier"]["started_at"] == "2026-01-05T09:00:00+00:00"
    assert doc["later"]["totals"]["studies_complete"] is False
    assert doc["later"]["scope"] == {"known": True, "notes": []}
    assert doc["totals"]["studies"] == {
        "earlier": 105,
        "later": 140,
        "delta": 35,
        "delta_pct": 33.3,
        "earlier_complete": True,
        "later_complete": False,
    }
    assert [(s["ip"], s["port"], s["studies"], s["earlier_status"]) for s in doc["new"]] == [
        ("127.88.0.3", 4242, 10, None)
    ]
    assert [(s["ip"], s["reason"], s["later_status"]) for s in doc["gone"]] == [
        ("127.88.0.2", "not-dicom", "connection-refused")
    ]
    assert [(s["ip"], s["reason"]) for s in doc["not_rescanned"]] == [("127.99.0.1", "out-of-scope")]
    [changed] = doc["changed"]
    assert changed["ip"] == "127.88.0.1" and changed["port"] == 104
    assert changed["changes"][0] == {
        "kind": "called-ae-check-added",
        "field": "called_ae_check",
        "before": False,
        "after": True,
        "delta": None,
        "delta_pct": None,
        "before_complete": None,
        "after_complete": None,
    }
    assert doc["unchanged"] == 0


GOLDEN_MARKDOWN = """\
# pacsaudit diff: scan 12 → scan 17

Scan 12 started 2026-01-05 09:00 UTC (finished); scan 17 started 2026-03-06 09:30 UTC (finished).

| | scan 12 | scan 17 | Δ | Δ % |
|---|---:|---:|---:|---:|
| Systems | 3 | 2 | -1 | -33.3 % |
| Hosts | 3 | 2 | -1 | -33.3 % |
| Studies | 105 | ≥ 140 | +35 | +33.3 % |
| Instances | 2,050 | ≥ 2,800 | +750 | +36.6 % |
| Patients | 42 | ≥ 45 | +3 | +7.1 % |

Census totals count each host once, with the largest counts among its ports; ≥ marks a lower bound \
(a census cut short by its budget or time).

**1 new, 1 gone, 1 changed, 0 unchanged; 1 not rescanned.**

## New (1)

| Endpoint | Product | Version | Open to any AE | Studies | Instances | Patients | Before |
|---|---|---|---|---:|---:|---:|---|
| `127.88.0.3:4242` | Orthanc | 1.12.1 | yes | 10 | 200 | 4 | no record |

## Gone (1)

| Endpoint | Product | Version | Open to any AE | Studies | Instances | Patients | Now |
|---|---|---|---|---:|---:|---:|---|
| `127.88.0.2:104` | DCMTK | 3.6.7 | no | — | — | — | connection-refused |

## Changed (1)

- `127.88.0.1:104` (Orthanc 1.12.4): called AE check added; version: 1.12.1 → 1.12.4; \
studies 100 → ≥ 130 (+30, +30.0 %); instances 2,000 → ≥ 2,600 (+600, +30.0 %); patients 40 → ≥ 41 (+1, +2.5 %)

## Not rescanned (1)

Systems of scan 12 that scan 17 did not cover (1: outside the later scan's scope) are neither gone \
nor compared; they still count in the totals of scan 12: `127.99.0.1:104`.
"""


def test_markdown_golden() -> None:
    assert render_markdown(lab_diff()) == GOLDEN_MARKDOWN


def test_markdown_caps_long_lists() -> None:
    earlier = [system(f"127.88.{n // 256}.{n % 256}") for n in range(LIST_LIMIT + 7)]
    earlier.sort(key=lambda r: r.ip)

    text = render_markdown(diff_scans(earlier, [], later_scope=Scope.of(["127.88.0.0/16"], [104])))

    assert f"## Gone ({LIST_LIMIT + 7})" in text
    assert "… and 7 more." in text
    assert text.count("| `127.88.") == LIST_LIMIT


def test_server_text_cannot_break_markdown_or_the_terminal() -> None:
    hostile = "Orthanc | x\n# `pwn` [link](http://x) <b>\x1b[31m"
    diff = diff_scans(
        [], [system("127.88.0.1", product=hostile, version="[red]1[/red]")], later_scope=LAB_SCOPE
    )

    text = render_markdown(diff)
    row = next(line for line in text.splitlines() if line.startswith("| `127.88.0.1"))
    assert row.count(" | ") == 7  # no extra cell
    assert "\x1b" not in text and "\n# " not in text.split("## New")[1]
    assert r"Orthanc \| x" in row and r"\`pwn\`" in row and r"\[link\]" in row and r"\<b\>" in row

    console = Console(width=200, record=True, color_system=None)
    console.print(render_table(diff))
    shown = console.export_text()
    assert "[red]1[/red]" in shown  # printed as text, not taken as rich markup
    assert "\x1b" not in shown


def test_table_shows_totals_and_sections() -> None:
    console = Console(width=160, record=True, color_system=None)
    console.print(render_table(lab_diff()))
    shown = console.export_text()

    for expected in (
        "scan 12",
        "≥ 140",
        "+33.3 %",
        "New (1)",
        "Gone (1)",
        "Changed (1)",
        "127.88.0.3:4242",
        "called AE check added",
        "not rescanned",
    ):
        assert expected in shown


def test_unknown_scope_is_said_in_every_format() -> None:
    diff = diff_scans([system("127.88.0.1")], [], later_scope=Scope.from_arguments({"imported_from": "x"}))

    assert "Scope: the scan's targets are not recorded" in render_markdown(diff)
    assert json.loads(render_json(diff))["later"]["scope"]["known"] is False


def test_public_api() -> None:
    assert sorted(reports.__all__) == [
        "CensusTotals",
        "Change",
        "ChangedSystem",
        "GroupKey",
        "ScanDiff",
        "ScanInfo",
        "Scope",
        "ScopeVerdict",
        "SystemEntry",
        "TotalChange",
        "diff_from_store",
        "diff_scans",
        "render_json",
        "render_markdown",
        "render_table",
    ]
    for name in reports.__all__:
        assert getattr(reports, name) is not None


# --- from the store ----------------------------------------------------------------------------


def test_diff_from_a_sqlite_store(tmp_path: Path) -> None:
    storage = pytest.importorskip("pacsaudit.storage")
    targets: dict[str, list[Any]] = {
        "targets": ["127.88.0.0/30"],
        "ports": [104, 4242],
        "files": [],
        "exclude": [],
    }
    with storage.ScanStore.open(f"sqlite:///{tmp_path / 'scans.db'}") as store:
        # Given two scans of the lab whose membership changed between them
        first = store.create_scan(
            {**targets, "targets": [*targets["targets"], "127.99.0.1"]},
            targets_estimated=10,
            tool_version="test",
        )
        store.write_batch(
            first,
            list(
                enumerate(
                    [
                        system("127.88.0.1", studies=10),
                        system("127.88.0.2", 4242),
                        system("127.99.0.1"),
                    ]
                )
            ),
            low_water_mark=10,
            endpoints_done=10,
        )
        store.finish_scan(first, "finished")
        second = store.create_scan(targets, targets_estimated=8, tool_version="test")
        store.write_batch(
            second,
            list(enumerate([system("127.88.0.3"), system("127.88.0.1", studies=12)])),  # any order
            low_water_mark=8,
            endpoints_done=8,
        )
        store.finish_scan(second, "finished")

        # When
        diff = reports.diff_from_store(store, first, second)

        # Then
        assert [(e.ip, e.port) for e in diff.new] == [("127.88.0.3", 104)]
        assert [(e.ip, e.port, e.reason) for e in diff.gone] == [("127.88.0.2", 4242, "no-record")]
        assert [(e.ip, e.reason) for e in diff.not_rescanned] == [("127.99.0.1", "out-of-scope")]
        assert kinds(diff) == ["studies-grew"]
        assert (diff.earlier.id, diff.later.id, diff.later.state) == (first, second, "finished")
        assert diff.scope_known

        with pytest.raises(storage.StorageError, match="no scan 99"):
            reports.diff_from_store(store, first, 99)


def test_diff_from_a_store_with_an_unfinished_later_scan(tmp_path: Path) -> None:
    storage = pytest.importorskip("pacsaudit.storage")
    arguments = {"targets": ["127.88.0.0/30"], "ports": [104]}
    with storage.ScanStore.open(f"sqlite:///{tmp_path / 'scans.db'}") as store:
        first = store.create_scan(arguments, targets_estimated=4, tool_version="test")
        store.write_batch(first, [(1, system("127.88.0.1"))], low_water_mark=4, endpoints_done=4)
        store.finish_scan(first, "finished")
        second = store.create_scan(arguments, targets_estimated=4, tool_version="test")
        store.finish_scan(second, "interrupted")

        diff = reports.diff_from_store(store, first, second)

    assert diff.gone == ()
    assert [e.reason for e in diff.not_rescanned] == ["later-scan-unfinished"]
    assert "the later scan is interrupted, not finished" in diff.scope_notes
