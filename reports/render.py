"""matrix.html and compat.html: Jinja2 templates (reports/templates) filled from the model.

Python builds the model (reports.findings, reports.compat, reports.grid); the templates only
lay it out. Autoescaping is on for every template, so no text from a results file becomes
markup; the pages' CSS and scripts are inlined from the same templates directory and a
Content-Security-Policy forbids loading anything else, so a page works the same from
file://, a CI artifact or an air-gapped laptop. The scripts only set ``textContent``,
attributes and clones of rendered nodes, never ``innerHTML``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import jinja2

from . import fmt, resilience
from .compat import SECTION_TITLES, Comparison
from .findings import find, heading_count, problem_line, problem_word
from .grid import build_grids
from .model import STATES, Case, Results
from .order import DASH, DIMENSIONS, STATE_WORD, STATUS_SYMBOL, STATUSES, SYMBOL, attr_name, ordered

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)
CASE_LIMIT = 200  # case ids listed under one finding; the grid filter shows them all
TOOLTIP_CASES = 8

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("reports", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["urlquote"] = lambda text: quote(str(text), safe="")
ENV.globals.update(
    CSP=CSP, SYMBOL=SYMBOL, STATUSES=STATUSES, STATES=STATES, fmt=fmt, case_limit=CASE_LIMIT
)


def render_html(results: Results) -> str:
    """The single-run page as a string; build() writes it to matrix.html."""
    run = results.run
    counts = results.counts
    findings = find(results)
    of_case: dict[str, list[str]] = {}
    for f in findings:
        for c in f.cases:
            of_case.setdefault(c.id, []).append(f.key)
    dims = [*DIMENSIONS, *results.extra_dims]

    def cell(case: Case) -> dict[str, Any]:
        problems = "\n".join(problem_line(p) for p in case.problems)
        attrs = [
            ("case-id", case.id),
            ("status", case.status),
            *((attr_name(d), case.dim(d)) for d in dims),
            ("observed", case.outcome),
            ("expected", case.expected),
            ("reason", case.reason),
            ("alive", fmt.alive(case.server_alive)),
            ("duration", "" if case.duration_ms is None else f"{case.duration_ms:.1f} ms"),
            ("finding", " ".join(of_case.get(case.id, ()))),
            ("problems", problems),
            ("observation", _fields(case.observation)),
            ("expectation", _fields(case.expectation, skip=("outcome", "reason"))),
        ]
        title = [
            case.id,
            f"{case.status}: observed {case.outcome}, expected {case.expected}",
            f"reason: {case.reason or DASH}",
            f"server alive: {fmt.alive(case.server_alive)}",
        ]
        if case.unsupported:
            title.append(f"unsupported: {case.unsupported}")
        if problems:
            title.append(problems)
        word = "skip" if case.status == "skip" else case.outcome
        note = ""
        if case.status == "fail":  # what is wrong: the outcome, else the problems' words
            words = dict.fromkeys(problem_word(p) for p in case.problems)
            same = case.observed == case.expected
            note = ", ".join(words) if same else f"expected {case.expected}"
        return {
            "attrs": attrs,
            "title": "\n".join(title),
            "symbol": STATUS_SYMBOL.get(case.status, "?"),
            "word": word,
            "note": note,
        }

    filters = [
        (attr_name(d), d.replace("_", " "), _options(d, (c.dim(d) for c in results.cases)))
        for d in dims
    ]
    filters.append(("status", "status", _options("status", (c.status for c in results.cases))))
    filters.append(
        ("observed", "observed", _options("outcome", (c.outcome for c in results.cases)))
    )
    failing = [f for f in findings if f.severity]
    if findings:
        labels = [(f.key, fmt.truncate(f"{f.key}: {f.line}", 70)) for f in findings]
        filters.append(("finding", "finding", labels))
    facts = [("started", fmt.when(run.started)), ("duration", fmt.duration(run.duration_s))]
    if run.platform:
        facts.append(("platform", run.platform))
    facts.extend((f"resolver: {k}", fmt.value(v)) for k, v in run.resolver.items())
    facts.extend((k, fmt.value(v)) for k, v in run.extra.items())
    title = fmt.title(run) + (
        f": {counts['fail']} failed" if counts["fail"] else ": all as expected"
    )
    panel = [
        ("status", "status"),
        ("expected", "expected"),
        ("reason", "reason"),
        ("observed", "observed"),
        ("server alive", "alive"),
        ("duration", "duration"),
        ("findings", "finding"),
        ("observed fields", "observation"),
        ("expected fields", "expectation"),
        *((d.replace("_", " "), attr_name(d)) for d in dims),
    ]
    return ENV.get_template("matrix.html.j2").render(
        title=title,
        results=results,
        run=run,
        counts=counts,
        facts=facts,
        findings=findings,
        failures=failing,
        findings_count=heading_count(findings),
        grids=build_grids(results),
        filters=filters,
        cell=cell,
        panel_fields=panel,
        resilience=resilience.read(run.resilience),
        cell_selector="td[data-case-id]",
    )


def _fields(fields: Any, skip: tuple[str, ...] = ("outcome",)) -> str:
    """Every other field of an expectation or observation that has a value (a field
    another module adds shows up here without a change): ``tls_version TLSv1.3 · ...``."""
    shown = (f"{k} {fmt.value(v)}" for k, v in fields.items() if k not in skip and v is not None)
    return " · ".join(shown)


def _options(dim: str, values: Any) -> list[tuple[str, str]]:
    return [(v, v) for v in ordered(dim, values)]


LEGEND = (
    ("pass", "every case that ran behaved as the spec says (count of cases)"),
    ("fail", "failed/ran, with what went wrong: saw <outcome>, environ, server died"),
    ("unsupported", "the target cannot express this configuration (not a failure)"),
    ("skip", "could not run on this host (e.g. unreachable bind/connect pair)"),
)


def render_compat_html(comparison: Comparison) -> str:
    """The comparison page as a string; build_compat() writes it to compat.html."""
    runs = comparison.runs
    diverging = comparison.diverging
    title = f"mTLS compatibility: {len(runs)} targets" + (
        f", {len(diverging)} diverging" if diverging else ", all as specified"
    )
    lede = (
        f"{len(diverging)} of {len(runs)} targets diverge from the spec: {', '.join(diverging)}."
        if diverging
        else f"All {len(runs)} targets behave as the spec says in every case they ran."
    )
    table = comparison.table
    measured = [(r.name, resilience.read(r.results.run.resilience)) for r in runs]
    return ENV.get_template("compat.html.j2").render(
        title=title,
        lede=lede,
        comparison=comparison,
        table=table,
        row_cells=lambda ri: [table.cell(ri, ti) for ti in range(len(runs))],
        tooltip=_tooltip,
        tally=_tally,
        notable=lambda cell: sorted(
            (c for c in cell.cases if c.status != "pass"),
            key=lambda c: ("fail", "unsupported", "skip").index(c.state),
        ),
        case_text=_case_text,
        problem_line=problem_line,
        when=fmt.when,
        resilience=[(name, res) for name, res in measured if res is not None],
        legend=LEGEND,
        STATE_WORD=STATE_WORD,
        SECTION_TITLES=SECTION_TITLES,
        DASH=DASH,
        sources=", ".join(r.results.source for r in runs),
        cell_selector="td[data-cell]",
    )


def _tally(cases: Any) -> str:
    counts = {s: sum(1 for c in cases if c.state == s) for s in STATES}
    return " · ".join(f"{SYMBOL[s]} {n} {STATE_WORD[s]}" for s, n in counts.items() if n)


def _tooltip(cell: Any, label: str, row: Any) -> str:
    lines = [label, f"expected {' / '.join(row.expected)}", _tally(cell.cases)]
    adapters: dict[str, list[Case]] = {}
    for case in cell.cases:
        adapters.setdefault(case.adapter, []).append(case)
    if len(adapters) > 1:
        lines.extend(f"  {a}: {_tally(cs)}" for a, cs in adapters.items())
    failures = cell.failures
    for case in failures[:TOOLTIP_CASES]:
        words = ", ".join(dict.fromkeys(problem_word(p) for p in case.problems))
        lines.append(f"{SYMBOL['fail']} {case.id}: {words}")
    if len(failures) > TOOLTIP_CASES:
        lines.append(f"... and {len(failures) - TOOLTIP_CASES} more failing (click for all)")
    lines.extend(dict.fromkeys(_case_text(c) for c in cell.cases if c.status == "skip"))
    return "\n".join(lines)


def _case_text(case: Case) -> str:
    if case.state == "unsupported":
        return f"{SYMBOL['unsupported']} unsupported: {case.unsupported}"
    if case.state == "skip":
        return f"{SYMBOL['skip']} skipped: {fmt.truncate(case.reason, 160)}"
    if case.state == "pass":
        return f"{case.outcome}, as expected"
    return f"expected {case.expected}, observed {case.outcome}"
