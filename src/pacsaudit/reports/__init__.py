"""Reports made from stored scans: `diff` (new, gone and changed systems, growth totals)."""

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
