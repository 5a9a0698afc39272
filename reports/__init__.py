"""Reports for mTLS matrix runs: an HTML page, a CI step summary, and run-to-run diffs.

    results = reports.load_results("build/results.json")   # ReportError on bad input
    reports.build(results, "build/report")                 # matrix.html + summary.md
    page = reports.render_html(results)
    summary = reports.render_markdown(results)
    changes = reports.diff(reports.load_results(old), results)
    changes.regressed                                      # a passing case now fails
    runs = reports.load_targets([a, b, c])                 # one results file per target
    reports.build_compat(runs, "build/compat")             # compat.html + compat.md

Command line: ``python -m reports build RESULTS.json --out DIR`` and
``python -m reports diff OLD.json NEW.json`` and
``python -m reports compat RESULTS.json... --out DIR`` (see reports.cli for exit statuses).
"""

from __future__ import annotations

from .build import build
from .compare import Change, Diff, diff, format_diff
from .compat import build_compat, load_targets, render_compat_markdown
from .compat_model import Comparison, Finding, TargetRun, compare
from .compat_page import render_compat_html
from .html_page import render_html
from .load import load_results, parse_results
from .markdown import render_markdown
from .model import SCHEMA_VERSION, Case, ReportError, Results, RunInfo

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
    "format_diff",
    "load_results",
    "load_targets",
    "parse_results",
    "render_compat_html",
    "render_compat_markdown",
    "render_html",
    "render_markdown",
]
