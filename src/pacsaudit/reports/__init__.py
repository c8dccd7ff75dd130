"""Reports made from stored scans: `diff` (new, gone and changed systems, growth totals), and
the census report (`census`, rendered by `html`, `markdown`, `csv_report`, `json_report`; run by
`writer.write_report`), the DefectDojo export and owner notices. Only `diff` is imported here:
the others load ECharts, Jinja2 and the assessment rules, which `pacsaudit diff` does not need."""

from pacsaudit.reports.diff import (
    CensusTotals,
    Change,
    ChangedSystem,
    GroupKey,
    ScanDiff,
    ScanInfo,
    Scope,
    ScopeVerdict,
    SystemEntry,
    TotalChange,
    diff_from_store,
    diff_scans,
    render_json,
    render_markdown,
    render_table,
)

__all__ = [
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
