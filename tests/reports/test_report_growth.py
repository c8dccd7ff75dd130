"""The growth section (`pacsaudit report --diff`): differences marked by how far they can be trusted,
countries one scan did not see, and endpoints the later scan did not rescan left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsaudit.model import Attribution, EndpointResult
from pacsaudit.reports.census import build_census, census_from_store
from pacsaudit.reports.census_model import Growth
from pacsaudit.reports.diff import Scope, diff_scans
from pacsaudit.reports.growth import delta_kind, growth_between, growth_row
from pacsaudit.reports.html import render_html
from pacsaudit.reports.markdown import render_markdown
from pacsaudit.reports.text import growth_delta, growth_percent
from pacsaudit.storage import ScanStore

from .builders import system

DE = Attribution(scope="public", country="DE")
NL = Attribution(scope="public", country="NL")
US = Attribution(scope="public", country="US")


def _at(result: EndpointResult, attribution: Attribution) -> EndpointResult:
    return result.model_copy(update={"attribution": attribution})


def _growth(earlier: list[EndpointResult], later: list[EndpointResult]) -> Growth:
    diff = diff_scans(earlier, later, later_scope=Scope.everything())
    return growth_between(build_census(earlier), build_census(later), diff)


@pytest.mark.parametrize(
    ("earlier_complete", "later_complete", "kind", "delta", "percent"),
    [
        (True, True, "exact", "+50", "+50.0 %"),
        (True, False, "at-least", "≥ +50", "≥ +50.0 %"),
        (False, True, "at-most", "≤ +50", "≤ +50.0 %"),
        (False, False, "approximate", "≈ +50", "n/a"),
    ],
)
def test_a_difference_is_only_as_exact_as_its_sides(
    earlier_complete: bool, later_complete: bool, kind: str, delta: str, percent: str
) -> None:
    row = growth_row("studies", 100, 150, earlier_complete, later_complete)
    assert delta_kind(earlier_complete, later_complete) == row.delta_kind == kind
    assert row.delta == 50
    assert (row.delta_pct is None) is (kind == "approximate"), "no percentage of two lower bounds"
    assert (growth_delta(row), growth_percent(row)) == (delta, percent)


def test_unknown_sides_stay_unknown() -> None:
    row = growth_row("studies", None, 150, True, False)
    assert (row.delta, row.delta_pct, growth_delta(row), growth_percent(row)) == (None, None, "—", "—")


def test_growth_with_lower_bounds_is_marked_in_every_renderer() -> None:
    # Given an exact earlier census and a later one cut short by its budget
    earlier = [_at(system("192.0.2.1", studies=100, patients=40, instances=900), DE)]
    later = [_at(system("192.0.2.1", studies=150, patients=50, instances=None, complete=False), DE)]
    # When
    growth = _growth(earlier, later)
    # Then the totals and the country row say "at least", never an exact +50
    studies = next(row for row in growth.totals if row.metric == "studies")
    assert (studies.delta, studies.delta_kind) == (50, "at-least")
    assert growth.by_country[0].studies.delta_kind == "at-least"
    census = build_census(later).model_copy(update={"growth": growth})
    markdown = render_markdown(census)
    assert "| ≥ +50 | ≥ +50.0 % |" in markdown and "| +50 |" not in markdown
    html = render_html(census)
    assert "≥ +50" in html and '<td class="n">+50</td>' not in html


def test_a_country_new_in_the_later_scan_had_no_studies_before_not_unknown() -> None:
    # Given an earlier census of DE only, and a later one that also finds NL
    earlier = [_at(system("192.0.2.1", studies=100, patients=40), DE)]
    later = [*earlier, _at(system("193.0.0.1", studies=30, patients=10), NL)]
    # When
    growth = _growth(earlier, later)
    # Then NL had 0 systems and 0 studies: it grew by 30, exactly
    nl = next(c for c in growth.by_country if c.key == "NL")
    assert (nl.systems.earlier, nl.systems.later, nl.systems.delta) == (0, 1, 1)
    assert (nl.studies.earlier, nl.studies.later, nl.studies.delta) == (0, 30, 30)
    assert nl.studies.delta_kind == "exact"
    # And a country the later scan no longer sees had 0 after
    gone = _growth(later, earlier)
    nl_gone = next(c for c in gone.by_country if c.key == "NL")
    assert (nl_gone.studies.earlier, nl_gone.studies.later, nl_gone.studies.delta) == (30, 0, -30)


def test_a_new_country_after_a_scan_without_census_stays_unknown() -> None:
    earlier = [_at(system("192.0.2.1", census=False), DE)]
    later = [*earlier, _at(system("193.0.0.1", studies=30, patients=10), NL)]
    nl = next(c for c in _growth(earlier, later).by_country if c.key == "NL")
    assert (nl.studies.earlier, nl.studies.later, nl.studies.delta) == (None, 30, None)


def _store(path: Path, scans: list[tuple[list[str], list[EndpointResult], str]]) -> ScanStore:
    store = ScanStore.open(f"sqlite:///{path}")
    for targets, results, state in scans:
        scan_id = store.create_scan(
            {"targets": targets, "ports": [104]}, targets_estimated=1, tool_version="t"
        )
        ordered = sorted(results, key=lambda r: (r.ip.encode(), r.port))
        store.write_batch(
            scan_id, list(enumerate(ordered)), low_water_mark=len(ordered), endpoints_done=len(ordered)
        )
        store.finish_scan(scan_id, state)
    return store


def test_endpoints_outside_the_later_scope_are_not_a_decline(tmp_path: Path) -> None:
    # Given an earlier scan of two ranges and a later scan of one of them
    de = _at(system("192.0.2.1", studies=100, patients=40, instances=1000), DE)
    de_gone = _at(system("192.0.2.2", studies=10, patients=4, instances=100), DE)
    us = _at(system("198.51.100.1", studies=500, patients=200, instances=5000), US)
    scans = [
        (["192.0.2.0/24", "198.51.100.0/24"], [de, de_gone, us], "finished"),
        (["192.0.2.0/24"], [de], "finished"),
    ]
    # When
    with _store(tmp_path / "history.db", scans) as store:
        growth = census_from_store(store, 2, diff_against=1).growth
    # Then the US archive, never rescanned, is out of the earlier numbers; the DE one that went is in
    assert growth is not None
    rows = {row.metric: row for row in growth.totals}
    assert (rows["studies"].earlier, rows["studies"].later, rows["studies"].delta) == (110, 100, -10)
    assert (rows["systems"].earlier, rows["systems"].later) == (2, 1)
    assert [c.key for c in growth.by_country] == ["DE"], "no US decline"
    assert (growth.gone, growth.not_rescanned, growth.earlier_left_out) == (1, 1, 1)
    assert any("leave out 1 endpoint" in note for note in growth.scope_notes)


def test_an_unfinished_later_scan_leaves_out_what_it_did_not_reach(tmp_path: Path) -> None:
    de = _at(system("192.0.2.1", studies=100, patients=40, instances=1000), DE)
    unreached = _at(system("192.0.2.2", studies=10, patients=4, instances=100), DE)
    scans = [(["192.0.2.0/24"], [de, unreached], "finished"), (["192.0.2.0/24"], [de], "interrupted")]
    with _store(tmp_path / "history.db", scans) as store:
        growth = census_from_store(store, 2, diff_against=1).growth
    assert growth is not None
    studies = next(row for row in growth.totals if row.metric == "studies")
    assert (studies.earlier, studies.later, growth.gone, growth.earlier_left_out) == (100, 100, 0, 1)


def test_exported_members() -> None:
    import pacsaudit.reports.census_model as census_model
    import pacsaudit.reports.growth as growth

    for module in (census_model, growth):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)
