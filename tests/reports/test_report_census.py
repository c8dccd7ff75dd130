"""The census as a pure function: hand-built results in, the seed's numbers out."""

from __future__ import annotations

import io
import re
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

import pacsaudit.reports.census as census_module
from assessment.mmdb import write_asn_mmdb
from pacsaudit.assessment import DEFAULT_COST_MODEL, Attributor, cost_model
from pacsaudit.model import (
    Attribution,
    EndpointResult,
    HttpBlock,
    ServiceEvidence,
    Status,
    StudyCounts,
    StudyYears,
)
from pacsaudit.reports.census import build_census, census_from_store, group_label
from pacsaudit.reports.census_model import WORST_LIMIT
from pacsaudit.reports.csv_report import CsvTable, write_census_csv, write_systems_csv
from pacsaudit.reports.markdown import render_markdown
from pacsaudit.reports.text import cost_sentence
from pacsaudit.reports.writer import ReportFormat, format_for, output_file, write_report
from pacsaudit.storage import StorageError
from storage.synthetic import synthetic_result

from .builders import not_dicom, system
from .report_data import DE, make_store

NL = Attribution(scope="public", country="NL")


def _with(result: EndpointResult, **update: object) -> EndpointResult:
    return result.model_copy(update=update)


def _web(ip: str, port: int, studies: int, *, complete: bool = True, listable: bool = True) -> EndpointResult:
    return EndpointResult(
        ip=ip,
        port=port,
        status=Status.NOT_DICOM,
        elapsed_ms=1.0,
        timestamp="2026-01-01T00:00:00Z",
        http=HttpBlock(
            detected=True,
            studies_listable=listable,
            counts=StudyCounts(
                studies=studies, patients=studies // 2, instances=studies * 10, complete=complete
            ),
        ),
    )


def test_a_host_counts_once_with_its_largest_numbers_dicom_or_web() -> None:
    # Given one archive on 104 and 4242 (DICOM) and on 8042 (its REST API, the largest count)
    results = [
        _with(system("192.0.2.1", 104, studies=100, patients=40, instances=1000), attribution=DE),
        _with(system("192.0.2.1", 4242, studies=90, patients=45, instances=900), attribution=DE),
        _with(_web("192.0.2.1", 8042, 120), attribution=DE),
        _with(system("192.0.2.2", 104, studies=10, patients=5, instances=50), attribution=NL),
    ]
    # When
    census = build_census(results)
    # Then each host counts once, metric by metric the largest
    assert (census.totals.hosts_found, census.totals.systems) == (2, 2)
    assert census.totals.studies == 120 + 10
    assert census.totals.patients == 60 + 5
    assert census.totals.instances == 1200 + 50
    assert census.totals.studies_complete and census.totals.patients_complete
    assert census.scan.results == 4 and census.scan.endpoints == 4
    assert [(row.key, row.systems, row.studies) for row in census.by_country] == [
        ("DE", 1, 120),
        ("NL", 1, 10),
    ]
    assert census.by_country[0].name == "Germany"
    assert census.worst_archives[0].ports == [104, 4242, 8042]


def test_a_census_cut_short_makes_every_total_it_feeds_a_lower_bound() -> None:
    results = [
        system("192.0.2.1", studies=100, patients=40, instances=1000),
        system("192.0.2.2", studies=50, patients=None, instances=None, complete=False),
    ]
    totals = build_census(results, attributor=Attributor()).totals
    assert (totals.studies, totals.studies_complete) == (150, False)
    assert (totals.patients, totals.patients_complete) == (40, False), "a census that never reached patients"
    assert (totals.instances, totals.instances_complete) == (1000, False)


def test_without_any_census_the_numbers_are_unknown_not_zero() -> None:
    census = build_census([system("192.0.2.1", census=False), system("192.0.2.2", census=False)])
    assert census.totals.systems == 2
    assert (census.totals.studies, census.totals.patients, census.totals.instances) == (None, None, None)
    assert any("unknown, not zero" in note for note in census.notes)
    assert (census.cost.patients, census.cost.amount, census.cost.rounded) == (
        None,
        None,
        "unknown (no census)",
    )
    sentence = cost_sentence(census.cost)
    assert "unknown (no census)" in sentence and "USD 0" not in sentence and "~" not in sentence
    assert "unknown (no census)" in render_markdown(census) and "USD 0" not in render_markdown(census)


def test_open_systems_nobody_counted_make_the_totals_lower_bounds() -> None:
    # Given one counted open archive, one open archive without a census and one that refused strangers
    counted = system("192.0.2.1", studies=100, patients=40, instances=1000)
    uncounted = system("192.0.2.2", census=False)
    refused = system("192.0.2.3", association="rejected", open_to_any_ae=False, find=None, census=False)
    # When
    exact = build_census([counted, refused]).totals
    bound = build_census([counted, uncounted, refused])
    # Then the refusing archive adds nothing to know; the open uncounted one an unknown number
    assert (exact.studies, exact.studies_complete, exact.patients_complete) == (100, True, True)
    totals = bound.totals
    assert (totals.studies, totals.studies_complete) == (100, False)
    assert (totals.patients, totals.patients_complete, totals.instances_complete) == (40, False, False)
    assert bound.cost.lower_bound and bound.cost.amount == 40 * DEFAULT_COST_MODEL.per_record
    assert "at least" in cost_sentence(bound.cost)
    assert "| 1 | 100 |" not in render_markdown(bound) and "≥ 100" in render_markdown(bound)


def test_only_what_a_stranger_can_use_is_unprotected() -> None:
    results = [
        system("192.0.2.1"),  # accepted a stranger
        system("192.0.2.2", association="rejected", open_to_any_ae=False, find=None, census=False),
        _web("192.0.2.3", 443, 5, listable=False),  # a web front end that asks for a login
        _web("192.0.2.4", 8042, 7),  # studies listable
        not_dicom("192.0.2.5"),
        not_dicom("192.0.2.6", status=Status.CONNECTION_REFUSED),
    ]
    totals = build_census(results).totals
    assert totals.hosts_found == 4, "only endpoints where DICOM or a PACS web service answered"
    assert totals.systems == 2


def test_stored_attribution_wins_and_older_results_are_attributed_at_report_time() -> None:
    # 193.0.0.1 is registered to NL; a stored attribution (say, from an ASN database) says DE
    stored = _with(system("193.0.0.1", studies=1), attribution=DE)
    older = system("193.0.0.2", studies=2)
    private = system("10.0.0.1", studies=3)
    with Attributor() as attributor:
        census = build_census([private, stored, older], attributor=attributor)
    assert {row.key: row.studies for row in census.by_country} == {"DE": 1, "NL": 2, "(private)": 3}
    owners = {row.key for row in census.by_owner}
    assert owners == {"AS64500 Example Clinic Network", "country NL", "private"}
    assert build_census([older]).by_country[0].key == "(unknown)", "no attributor, no stored block"


def test_group_labels() -> None:
    assert group_label(None) == "(unknown)"
    assert group_label(Attribution(scope="public", country="de")) == "DE"
    assert group_label(Attribution(scope="loopback")) == "(loopback)"
    assert group_label(Attribution(scope="public")) == "(unknown)"


def test_worst_archives_are_the_largest_by_studies_ties_in_scan_order() -> None:
    results = [system(f"192.0.2.{i}", studies=10 * (i % 7), patients=1) for i in range(1, 30)]
    worst = build_census(results).worst_archives
    assert len(worst) == WORST_LIMIT
    assert [w.studies for w in worst] == [60, 60, 60, 60, 50, 50, 50, 50, 40, 40]
    assert [w.ip for w in worst[:4]] == ["192.0.2.6", "192.0.2.13", "192.0.2.20", "192.0.2.27"]
    assert all(w.risk == "high" and "PACS-DICOM-OPEN-AE" in w.findings for w in worst), "the worst finding's"


def test_modalities_years_findings_and_risk_levels_add_up() -> None:
    results = [synthetic_result(i) for i in range(16)]
    census = build_census(results)
    archives = [r for r in results if r.dicom is not None and r.dicom.counts is not None]
    assert census.modalities["CT"] == sum(
        r.dicom.modalities["CT"] for r in archives if r.dicom and r.dicom.modalities
    )
    assert census.study_years.per_year["2010"] == 10 * len(archives)
    assert sum(census.risk_levels.values()) == census.scan.endpoints == 8
    assert sum(census.findings_by_severity.values()) == sum(f.systems for f in census.findings)
    assert list(census.findings_by_severity) == ["critical", "high", "medium", "low", "info"]


def test_the_cost_follows_the_model_and_shows_its_formula() -> None:
    results = [system("192.0.2.1", studies=10, patients=100, instances=10)]
    default = build_census(results).cost
    assert default.amount == 100 * DEFAULT_COST_MODEL.per_record
    assert "100 patients" in default.formula and default.source == DEFAULT_COST_MODEL.source
    custom = build_census(results, cost_model=cost_model(10.0, None)).cost
    assert custom.amount == 1000.0 and custom.per_ssn_record == DEFAULT_COST_MODEL.per_ssn_record
    assert custom.source.startswith("per_record = 10 (configured)")


def test_memory_stays_flat_whatever_the_scan_size() -> None:
    def scan(n: int) -> Iterator[EndpointResult]:
        return (synthetic_result(i) for i in range(n))

    peaks = []
    for size in (1_000, 6_000):
        tracemalloc.start()
        census = build_census(scan(size))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert census.scan.results == size
    assert peaks[1] < peaks[0] * 1.5 and peaks[1] < 2_000_000, peaks


def test_progress_is_reported() -> None:
    seen: list[int] = []
    build_census((synthetic_result(i) for i in range(1_200)), progress=seen.append)
    assert seen == [500, 1_000, 1_200]


def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True, width=100)
    piped = Console(file=io.StringIO(), force_terminal=False)
    with make_store(tmp_path / "history.db") as store:
        for console in (terminal, piped):
            write_report(store, 2, io.StringIO(), ReportFormat.md, progress_console=console)
    assert "report" in terminal.file.getvalue() and "11/11" in terminal.file.getvalue()
    assert piped.file.getvalue() == ""


def test_format_from_the_output_suffix() -> None:
    assert format_for("-", None) is ReportFormat.md
    assert format_for("x/census.HTML", None) is ReportFormat.html
    assert format_for("a.csv", None) is ReportFormat.csv
    assert format_for("a.json", ReportFormat.defectdojo) is ReportFormat.defectdojo
    with pytest.raises(ValueError, match="--format"):
        format_for("census.pdf", None)


def test_a_failed_build_leaves_no_half_report(tmp_path: Path) -> None:
    target = tmp_path / "census.md"
    with pytest.raises(RuntimeError), output_file(str(target)) as out:
        out.write("half")
        raise RuntimeError("the build failed")
    assert list(tmp_path.iterdir()) == []
    with output_file(str(target)) as out:
        out.write("whole")
    assert target.read_text() == "whole" and list(tmp_path.iterdir()) == [target]


def test_growth_against_the_earlier_scan(tmp_path: Path) -> None:
    with make_store(tmp_path / "history.db") as store, Attributor() as attributor:
        census = census_from_store(store, 2, diff_against=1, attributor=attributor)
        with pytest.raises(StorageError, match="no scan 9"):
            census_from_store(store, 9)
        with pytest.raises(StorageError, match="no scan 9"):
            write_report(store, 9, io.StringIO(), ReportFormat.md)
    growth = census.growth
    assert growth is not None and (growth.earlier_scan, growth.later_scan) == (1, 2)
    assert (growth.new, growth.gone, growth.changed) == (2, 1, 1)
    rows = {row.metric: row for row in growth.totals}
    assert (rows["systems"].earlier, rows["systems"].later) == (6, 7)
    assert (rows["studies"].earlier, rows["studies"].later, rows["studies"].later_complete) == (
        427,
        1455,
        False,
    )
    assert rows["studies"].delta == 1028
    france = next(c for c in growth.by_country if c.key == "FR")
    assert (france.studies.earlier, france.studies.later) == (90, 50), "203.0.113.9 is gone"
    assert growth.new_systems == ["192.0.2.20:11112", "[2001:db8::5]:4242"]


def test_exported_members() -> None:
    for name in census_module.__all__:
        assert hasattr(census_module, name), name


def test_a_finding_row_stands_for_every_version_it_was_seen_on() -> None:
    # Given the same known-vulnerable product on two versions
    results = [system("192.0.2.1", version="1.9.7"), system("192.0.2.2", version="1.12.1")]
    # When
    census = build_census(results)
    # Then one row per rule and severity, in words without either endpoint's version
    rows = [f for f in census.findings if f.id.startswith("PACS-VULN-ORTHANC-")]
    assert rows and all(f.systems == 2 for f in rows), rows
    assert len({f.id for f in census.findings}) == len(census.findings)
    assert not any(re.search(r"\b(1\.9\.7|1\.12\.1)(?![\d.])", f.title) for f in census.findings)
    findings_csv = io.StringIO()
    write_census_csv(census, findings_csv, CsvTable.findings)
    assert "1.9.7" not in findings_csv.getvalue() and "…" not in findings_csv.getvalue(), "titles are not cut"


def test_report_asn_db_groups_stored_results_by_as(tmp_path: Path) -> None:
    # Given results stored with a country but no AS (a scan without --asn-db), one never attributed
    stored = _with(system("193.0.0.1", studies=5, patients=2), attribution=NL)
    older = system("193.0.0.2", studies=7, patients=3)
    mmdb = write_asn_mmdb(tmp_path / "asn.mmdb")
    # When the report is made with an ASN database, and without one
    with Attributor(mmdb) as with_asn:
        by_as = build_census([stored, older], attributor=with_asn)
        systems = io.StringIO()
        write_systems_csv([stored, older], systems, attributor=with_asn, privacy="p", cost="c")
    with Attributor() as without:
        by_country = build_census([stored, older], attributor=without)
    # Then the owners are the AS, as in `pacsaudit notify`; without it, the registry country
    assert [(row.key, row.hosts_found, row.studies) for row in by_as.by_owner] == [("AS3333 RIPE NCC", 2, 12)]
    assert {row.key for row in by_country.by_owner} == {"country NL"}
    assert systems.getvalue().count(",AS3333 RIPE NCC,") == 2
    assert build_census([stored]).by_owner[0].key == "country NL", "no attributor: the stored block"


def test_report_asn_db_reaches_defectdojo(tmp_path: Path) -> None:
    mmdb = write_asn_mmdb(tmp_path / "asn.mmdb")
    with make_store(tmp_path / "history.db") as store, Attributor(mmdb) as attributor:
        out = io.StringIO()
        write_report(store, 2, out, ReportFormat.defectdojo, attributor=attributor)
    # 193.0.0.1 was stored without attribution: only the ASN database can name its AS
    assert "AS3333" in out.getvalue()


def test_web_only_archives_add_their_modalities_and_years() -> None:
    # Given an archive seen over DICOMweb only, and one over DICOM whose web API counted more
    web = _web("192.0.2.1", 443, 40)
    assert web.http is not None
    years = StudyYears(min=2020, max=2021, per_year={"2020": 10, "2021": 30})
    web = _with(web, http=web.http.model_copy(update={"modalities": {"MG": 40}, "study_dates": years}))
    dicom = system("192.0.2.2", 104, studies=5, patients=2)
    assert dicom.dicom is not None
    dicom = _with(dicom, dicom=dicom.dicom.model_copy(update={"modalities": {"CT": 5}}))
    larger = _web("192.0.2.2", 8042, 50)
    assert larger.http is not None
    larger = _with(larger, http=larger.http.model_copy(update={"modalities": {"CT": 20, "MR": 30}}))
    # When
    census = build_census([web, dicom, larger])
    # Then each host's modalities come from its largest census, whichever protocol gave it
    assert census.modalities == {"MG": 40, "MR": 30, "CT": 20}
    assert census.study_years.per_year == {"2020": 10, "2021": 30}


def test_a_rule_whose_severity_depends_on_the_evidence_gets_a_row_per_severity() -> None:
    # Given C-FIND verified by a real query on one archive, only negotiated on another
    verified = system("192.0.2.1", studies=3, patients=1)
    assert verified.dicom is not None
    evidence = ServiceEvidence(find="verified", move="negotiated", get="not-accepted", store="negotiated")
    verified = _with(verified, dicom=verified.dicom.model_copy(update={"services_evidence": evidence}))
    negotiated = system("192.0.2.2", census=False)
    # When
    census = build_census([verified, negotiated])
    # Then each is counted under its own severity and title, and the severity totals agree
    rows = [(f.severity, f.systems) for f in census.findings if f.id == "PACS-DICOM-CFIND-OPEN"]
    assert len(rows) == 2 and sum(n for _, n in rows) == 2, rows
    assert len({f.title for f in census.findings if f.id == "PACS-DICOM-CFIND-OPEN"}) == 2
    assert sum(census.findings_by_severity.values()) == sum(f.systems for f in census.findings)
