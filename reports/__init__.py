"""Reports for mTLS matrix runs: an HTML page, a CI step summary, and run-to-run diffs.

    results = reports.load_results("build/results.json")   # ReportError on bad input
    reports.build(results, "build/report")                 # matrix.html + summary.md
    for finding in reports.find(results):                  # failures grouped by cause
        print(finding.line)                                # "visibility · environ ... · 48 cases"
    changes = reports.diff(reports.load_results(old), results)
    changes.regressed                                      # a passing case now fails
    runs = reports.load_targets([a, b, c])                 # one results file per target
    reports.build_compat(runs, "build/compat")             # compat.html + compat.md

Command line: ``python -m reports build RESULTS.json --out DIR`` and
``python -m reports diff OLD.json NEW.json`` and
``python -m reports compat RESULTS.json... --out DIR`` (see reports.cli for exit statuses).
Input is results.json schema 2 (docs/reports.md).
"""

from __future__ import annotations

from .build import build, build_compat
from .compare import Change, Diff, diff, format_diff
from .compat import Comparison, TargetRun, compare, load_targets
from .findings import Finding, find
from .load import load_results, parse_results
from .markdown import render_compat_markdown, render_markdown
from .model import SCHEMA_VERSION, Case, ReportError, Results, RunInfo
from .render import render_compat_html, render_html

__all__ = [
    "SCHEMA_VERSION",
    "Case",
    "Change",
    "Comparison",
    "Diff",
    "Finding",
    "ReportError",
    "Results",
    "RunInfo",
    "TargetRun",
    "build",
    "build_compat",
    "compare",
    "diff",
    "find",
    "format_diff",
    "load_results",
    "load_targets",
    "parse_results",
    "render_compat_html",
    "render_compat_markdown",
    "render_html",
    "render_markdown",
]
