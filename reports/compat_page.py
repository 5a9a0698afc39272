"""compat.html: several targets side by side, on one self-contained page.

A compact header names each run (adapters, counts, duration, versions); the findings follow,
because "which server diverges from the spec, where and how" is the question the page answers;
then, when any run carries one, the idle-client measurement (a good request alone and with
idle TCP clients connected, per target); the table after them lets a reader check any claim
cell by cell.
Like matrix.html it reuses the same stylesheet base, error trap, details panel and
Content-Security-Policy, escapes every text from the results, and its script only sets
``textContent``, attributes and clones of nodes rendered here, never ``innerHTML``.

Steering by URL fragment, for links and for headless browsers:

    compat.html#failing                      only rows where some target fails
    compat.html#cell=<URI-encoded cell key>  opens that cell's details, e.g.
                                             cell=gunicorn%40client%2Foptional%2Fexpired
"""

from __future__ import annotations

import datetime as dt

from . import fmt
from .compat_model import (
    DIED,
    ENVIRON,
    IDLE_TITLE,
    SECTION_TITLES,
    START,
    STATE_WORD,
    STATES,
    SYMBOL,
    Cell,
    Comparison,
    Finding,
    Row,
    StallFinding,
    TargetFindings,
    TargetRun,
    ms_text,
    problem_kind,
    problem_word,
    state,
    unsupported_reason,
)
from .html_page import CSP, e
from .model import Case
from .order import DASH
from .page_assets import CSS, ERROR_TRAP_JS, cell_keys_js

DETAIL_CHARS = 400
TOOLTIP_CASES = 8


def cell_key(run: TargetRun, row: Row) -> str:
    """A cell's stable name (``target@section/policy/subject``) for links and tests."""
    return f"{run.name}@{row.key}"


def render_compat_html(comparison: Comparison) -> str:
    """The whole page as a string; build_compat() writes it to compat.html."""
    runs = comparison.runs
    diverging = comparison.diverging
    title = f"mTLS compatibility: {len(runs)} targets" + (
        f", {len(diverging)} diverging" if diverging else ", all as specified"
    )
    sources = [r.results.source for r in runs]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">',
        f"<title>{e(title)}</title>",
        f"<script>{ERROR_TRAP_JS}</script>",
        f"<style>{CSS}{COMPAT_CSS}</style>",
        "</head>",
        "<body>",
        _header(comparison, title),
        "<main>",
        _findings(comparison),
        _idle_clients(comparison),
        _table(comparison),
        "</main>",
        _cell_details(comparison),
        _panel(),
        f"<footer>Generated from {e(', '.join(sources))} by "
        "<code>python -m reports compat</code>.</footer>",
        f"<script>{COMPAT_JS}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _header(comparison: Comparison, title: str) -> str:
    rows = []
    for run in comparison.runs:
        info = run.results.run
        counts = run.counts
        tallies = "".join(
            f'<td class="num {s if counts[s] else "zero"}" data-count="{s}">'
            f"{SYMBOL[s]} {counts[s]}</td>"
            for s in STATES
        )
        own = " · ".join(f"<b>{e(k)}</b> {e(v)}" for k, v in run.server_versions)
        rest = [f"{e(k)} {e(v)}" for k, v in run.other_versions]
        if info.platform:
            rest.append(f"platform {e(info.platform)}")
        versions = own
        if rest:
            versions += (
                f'<details class="more"><summary>{len(rest)} more</summary>'
                f'<span class="muted">{" · ".join(rest)}</span></details>'
            )
        profile = f'<div class="muted">{e(info.profile)}</div>' if info.profile else ""
        rows.append(
            f'<tr data-target="{e(run.name)}"><th scope="row">{e(run.name)}{profile}</th>'
            f'<td class="nowrap">{e(", ".join(run.adapters))}</td>{tallies}'
            f'<td class="num">{len(run.cases)}</td>'
            f"<td>{e(fmt.duration(info.duration_s))}</td>"
            f'<td class="nowrap">{e(_when(info.started))}</td>'
            f'<td class="versions">{versions or DASH}</td></tr>'
        )
    heads = "".join(f'<th scope="col" class="num">{SYMBOL[s]} {STATE_WORD[s]}</th>' for s in STATES)
    diverging = comparison.diverging
    lede = (
        f"{len(diverging)} of {len(comparison.runs)} targets diverge from the spec: "
        f"{', '.join(diverging)}."
        if diverging
        else f"All {len(comparison.runs)} targets behave as the spec says in every case they ran."
    )
    if comparison.stalled:
        lede += f" Idle clients stall {', '.join(comparison.stalled)}."
    return (
        "<header>"
        f"<h1>{e(title)}</h1>"
        f'<p class="lede" id="lede">{e(lede)}</p>'
        '<div class="scroll"><table class="runs" id="runs"><thead><tr>'
        f'<th scope="col">target</th><th scope="col">adapters</th>{heads}'
        '<th scope="col" class="num">cases</th><th scope="col">duration</th>'
        '<th scope="col">started</th><th scope="col">versions</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        "</header>"
    )


def _when(started: str | None) -> str:
    """A start time to the minute: the runner writes microseconds nobody compares by eye."""
    if not started:
        return "unknown"
    try:
        when = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return started
    if when.utcoffset() is not None:
        when = when.astimezone(dt.timezone.utc)
        return when.strftime("%Y-%m-%d %H:%M UTC")
    return when.strftime("%Y-%m-%d %H:%M")


def _findings(comparison: Comparison) -> str:
    items = [_target_findings(tf) for tf in comparison.findings]
    return (
        '<section id="findings"><h2>Findings</h2>'
        '<p class="muted">Each line groups one target\'s failing cases by what went wrong '
        "(server died, wrong outcome, wrong environ), with the policies and credentials "
        "involved and how many of the cases that ran there failed. "
        f"{SYMBOL['unsupported']} lines are configurations a target cannot express: "
        "shown, not counted as failures.</p>"
        f'<ul class="findings">{"".join(items)}</ul></section>'
    )


def _target_findings(tf: TargetFindings) -> str:
    run = tf.run
    counts = run.counts
    ran = counts["pass"] + counts["fail"]
    if tf.divergences:
        summary = f"{SYMBOL['fail']} {counts['fail']} of {ran} cases run diverge from the spec"
        css = "fail"
    elif not ran:
        summary = f"{SYMBOL['skip']} no case ran, so nothing to compare"
        css = "skip"
    else:
        summary = f"{SYMBOL['pass']} no divergence from the spec in {ran} cases run"
        css = "pass"
    lines = [_finding(f) for f in tf.divergences]
    lines += [_stall_finding(f) for f in tf.stalls]
    lines += [_finding(f) for f in tf.unsupported]
    nested = f"<ul>{''.join(lines)}</ul>" if lines else ""
    return (
        f'<li class="target-findings {css}" data-target="{e(run.name)}">'
        f'<span class="target">{e(run.name)}</span> '
        f'<span class="summary">{e(summary)}</span>{nested}</li>'
    )


def _finding(finding: Finding) -> str:
    reasons = "".join(f"<li>{e(r)}</li>" for r in finding.reasons[:3])
    spec = f'<div class="spec">spec says: <ul>{reasons}</ul></div>' if reasons else ""
    cases = "".join(_case_item(c, detail_chars=200) for c in finding.cases)
    css = "unsupported" if finding.kind == "unsupported" else "fail"
    return (
        f'<li class="finding {css}" data-kind="{e(finding.kind)}" '
        f'data-target="{e(finding.target)}" data-cases="{len(finding.cases)}">'
        f'<span class="sym" aria-hidden="true">{finding.symbol}</span> '
        f'<span class="text">{e(finding.text)}</span> '
        f'<span class="scope">{e(finding.scope)}</span> '
        f'<span class="count">({e(finding.count_text)})</span>'
        f'<details class="cases"><summary>case ids and reasons</summary>{spec}'
        f'<ul class="case-list">{cases}</ul></details></li>'
    )


def _stall_finding(finding: StallFinding) -> str:
    detail = fmt.truncate(finding.idle.detail, DETAIL_CHARS) if finding.idle.detail else ""
    more = (
        '<details class="cases"><summary>measurement</summary>'
        f'<div class="detail">{e(detail)}</div></details>'
        if detail
        else ""
    )
    return (
        f'<li class="finding fail" data-kind="{e(finding.kind)}" '
        f'data-target="{e(finding.target)}">'
        f'<span class="sym" aria-hidden="true">{finding.symbol}</span> '
        f'<span class="text">{e(finding.text)}</span> '
        f'<span class="scope">{e(finding.scope)}</span> '
        f'<span class="count">({e(finding.count_text)})</span>{more}</li>'
    )


def _idle_clients(comparison: Comparison) -> str:
    """One row per target: the good request alone, with N idle clients, after; the verdict.

    Left out entirely when no run carries the measurement (results from before it existed).
    """
    if not comparison.idle_measured:
        return ""
    counts: dict[str, None] = {}
    for run in comparison.runs:
        idle = run.idle_client
        for count, _ in idle.with_idle_ms if idle else ():
            counts.setdefault(count)
    columns = sorted(counts, key=lambda c: (int(c), c) if c.isdigit() else (1 << 30, c))
    heads = "".join(f'<th scope="col" class="num">with {e(c)} idle</th>' for c in columns)
    rows = []
    for run in comparison.runs:
        idle = run.idle_client
        state = idle.state if idle else "skip"
        verdict = idle.text if idle else f"{SYMBOL['skip']} not measured"
        title = (idle.detail or idle.problem) if idle else "no run.resilience in this results file"
        symbol, _, words = verdict.partition(" ")
        figures = "".join(
            f'<td class="num" data-count="{e(c)}">{e(idle.figure(c) if idle else "") or DASH}</td>'
            for c in columns
        )
        base = idle.baseline_ms if idle else None
        after = idle.after_ms if idle else None
        rows.append(
            f'<tr data-target="{e(run.name)}" data-state="{state}">'
            f'<th scope="row">{e(run.name)}</th>'
            f'<td class="nowrap">{e(idle.configuration if idle else "") or DASH}</td>'
            f'<td class="num">{e(_ms(base))}</td>{figures}'
            f'<td class="num">{e(_ms(after))}</td>'
            f'<td class="verdict {state}" title="{e(title)}">'
            f'<span class="sym" aria-hidden="true">{symbol}</span> {e(words)}</td></tr>'
        )
    bound = next((r.idle_client.threshold_ms for r in comparison.runs if r.idle_client), None)
    limit = f"{bound:.0f} ms" if bound is not None else "the bound"
    return (
        f'<section id="idle-clients"><h2>{e(IDLE_TITLE)}</h2>'
        '<p class="muted">A good client (certificate <code>localhost</code>) requests alone, '
        "then while idle clients hold TCP connections that send nothing (figures are medians). "
        f"A server stalls when they add more than {e(limit)}: each request with idle clients "
        "is paired with one alone just before it, and the smallest difference counts, so a "
        "machine that is slow for a moment is not taken for a stall. &#x2265; marks a request "
        "that hit the client's timeout. Measured on one server per target (its first adapter, "
        "policy required where it can) by <code>python -m matrix.stall</code>.</p>"
        '<div class="scroll"><table class="runs idle" id="idle-table"><thead><tr>'
        '<th scope="col">target</th><th scope="col">adapter, policy</th>'
        f'<th scope="col" class="num">alone</th>{heads}'
        '<th scope="col" class="num">after</th><th scope="col">verdict</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _ms(value: float | None) -> str:
    return DASH if value is None else ms_text(value)


def _case_item(case: Case, detail_chars: int = DETAIL_CHARS) -> str:
    st = state(case)
    if st == "fail":
        what = _failure_text(case)
    elif st == "unsupported":
        what = f"unsupported: {unsupported_reason(case)}"
    elif st == "skip":
        what = f"skipped: {case.detail or case.reason or DASH}"
    else:
        what = f"{case.outcome}, as expected"
    extra = ""
    if st == "fail":
        detail = fmt.truncate(case.detail, detail_chars) if case.detail else DASH
        extra = (
            f'<div class="why">spec: {e(case.reason or DASH)} · server alive: '
            f"{e(fmt.alive(case.server_alive))}</div>"
            f'<div class="detail">{e(detail)}</div>'
        )
    return (
        f'<li class="{st}" data-case-id="{e(case.id)}"><span class="sym" aria-hidden="true">'
        f"{SYMBOL[st]}</span> <code>{e(case.id)}</code> "
        f'<span class="what">{e(what)}</span>{extra}</li>'
    )


def _failure_text(case: Case) -> str:
    kind = problem_kind(case)
    if kind == START:
        return "the server could not start"
    if kind == ENVIRON:
        return "ok as expected, but the application's environ differs from the spec"
    seen = f"expected {case.expected}, observed {case.outcome}"
    return f"{seen}; the server died or stalled" if kind == DIED else seen


def _legend() -> str:
    keys = {
        "pass": "every case that ran behaved as the spec says (count of cases)",
        "fail": "failed/ran, with what went wrong: saw <outcome>, environ, server died",
        "unsupported": "the target cannot express this configuration (not a failure)",
        "skip": "could not run on this host (e.g. unreachable bind/connect pair)",
    }
    items = "".join(
        f'<span><span class="key {s}">{SYMBOL[s]}</span>{e(STATE_WORD[s])}: {e(text)}</span>'
        for s, text in keys.items()
    )
    return (
        f'<div class="legend" id="legend">{items}'
        '<span class="words">Each cell sums one target\'s cases over adapters, binds and '
        "connects. Hover a cell for its failing cases; click it for details.</span></div>"
    )


def _table(comparison: Comparison) -> str:
    table = comparison.table
    runs = table.runs
    heads = []
    for ti, run in enumerate(runs):
        counts = run.counts
        tally = " ".join(
            f"{SYMBOL[s]}\u00a0{counts[s]}" for s in STATES if counts[s] or s == "fail"
        )
        heads.append(
            f'<th scope="col" class="target" data-target="{e(run.name)}" data-col="{ti}">'
            f'<span class="name">{e(run.name)}</span>'
            f'<span class="tally">{e(tally)}</span>'
            f'<span class="adapters">{e(" · ".join(run.adapters))}</span></th>'
        )
    body = []
    width = 3 + len(runs)
    for section, indexes in table.sections():
        failing = any(
            table.cell(ri, ti).counts["fail"] for ri in indexes for ti in range(len(runs))
        )
        css = "section has-fail" if failing else "section"
        subject = "client credential" if section == "client" else "server certificate"
        body.append(
            f'<tr class="{css}" data-section="{e(section)}">'
            f'<th colspan="{width}" scope="colgroup">{e(SECTION_TITLES[section])}'
            f'<span class="muted"> · rows: policy by {e(subject)}</span></th></tr>'
        )
        body.extend(_row(table.rows[ri], ri, runs, comparison) for ri in indexes)
    return (
        '<section id="compat"><h2>Side by side</h2>'
        + _legend()
        + '<div class="toolbar noprint"><label><input type="checkbox" id="only-failing"> '
        "only rows where some target fails</label>"
        '<output id="rows-shown"></output></div>'
        '<div class="scroll"><table class="compat" id="compat-table"><thead><tr>'
        '<th scope="col" class="rowhead">policy</th>'
        '<th scope="col" class="rowhead">client / server cert</th>'
        '<th scope="col" class="rowhead">expected</th>'
        f"{''.join(heads)}</tr></thead><tbody>{''.join(body)}</tbody></table></div></section>"
    )


def _row(row: Row, ri: int, runs: tuple[TargetRun, ...], comparison: Comparison) -> str:
    table = comparison.table
    cells = [table.cell(ri, ti) for ti in range(len(runs))]
    states = {c.state for c in cells if c.state != "none"}
    classes = ["row"]
    if row.first_of_group:
        classes.append("group-start")
    if any(c.counts["fail"] for c in cells):
        classes.append("has-fail")
    if len(states) > 1:
        classes.append("differs")
    lead = "lead" if row.first_of_group else "lead repeat"
    tds = "".join(
        _cell(cell, row, ri, ti, run)
        for ti, (cell, run) in enumerate(zip(cells, runs, strict=True))
    )
    return (
        f'<tr class="{" ".join(classes)}" data-row="{e(row.key)}" '
        f'data-group="{e(row.section)}/{e(row.policy)}">'
        f'<th scope="row" class="{lead}">{e(row.policy)}</th>'
        f'<th scope="row">{e(row.subject)}</th>'
        f'<td class="expected">{e(" / ".join(row.expected))}</td>{tds}</tr>'
    )


def _cell(cell: Cell, row: Row, ri: int, ti: int, run: TargetRun) -> str:
    label = f"{run.name} · {row.policy} · {row.subject}"
    key = cell_key(run, row)
    common = (
        f'id="c-{ri}-{ti}" data-cell="{e(key)}" data-target="{e(run.name)}" '
        f'data-row="{e(row.key)}" data-col="{ti}" data-label="{e(label)}"'
    )
    if cell.state == "none":
        return (
            f'<td class="cell none" {common} data-state="none" '
            f'title="{e(label)}: no such case in this run"></td>'
        )
    counts = " ".join(f'data-{s}="{n}"' for s, n in cell.counts.items())
    extra = f'<span class="extra">{e(cell.extra_text)}</span>' if cell.extra_text else ""
    symbol, _, main = cell.main_text.partition(" ")
    return (
        f'<td class="cell {cell.state}" tabindex="0" {common} data-state="{cell.state}" '
        f'{counts} title="{e(_tooltip(cell, label, row))}">'
        f'<span class="sym" aria-hidden="true">{symbol}</span> <span class="main">{e(main)}</span>'
        f"{extra}</td>"
    )


def _tooltip(cell: Cell, label: str, row: Row) -> str:
    lines = [label, f"expected {' / '.join(row.expected)}", _tally(cell.cases)]
    adapters: dict[str, list[Case]] = {}
    for case in cell.cases:
        adapters.setdefault(case.adapter, []).append(case)
    if len(adapters) > 1:
        lines.extend(f"  {a}: {_tally(cs)}" for a, cs in adapters.items())
    failures = cell.failures
    for case in failures[:TOOLTIP_CASES]:
        detail = f" ({fmt.truncate(case.detail, 120)})" if case.detail else ""
        lines.append(f"{SYMBOL['fail']} {case.id}: {problem_word(case)}{detail}")
    if len(failures) > TOOLTIP_CASES:
        lines.append(f"... and {len(failures) - TOOLTIP_CASES} more failing (click for all)")
    for why in dict.fromkeys(
        _skip_reason(c) for c in cell.cases if state(c) in ("unsupported", "skip")
    ):
        lines.append(why)
    return "\n".join(lines)


def _skip_reason(case: Case) -> str:
    if state(case) == "unsupported":
        return f"{SYMBOL['unsupported']} unsupported: {unsupported_reason(case)}"
    return f"{SYMBOL['skip']} skipped: {fmt.truncate(case.detail or case.reason, 160)}"


def _tally(cases: tuple[Case, ...] | list[Case]) -> str:
    counts = {s: sum(1 for c in cases if state(c) == s) for s in STATES}
    return " · ".join(f"{SYMBOL[s]} {n} {STATE_WORD[s]}" for s, n in counts.items() if n)


def _cell_details(comparison: Comparison) -> str:
    """Every non-empty cell's case list, hidden; the script clones one into the panel."""
    table = comparison.table
    blocks = []
    for ri in range(len(table.rows)):
        for ti in range(len(table.runs)):
            cell = table.cell(ri, ti)
            if cell.state == "none":
                continue
            notable = sorted(
                (c for c in cell.cases if c.status != "pass"),
                key=lambda c: ("fail", "unsupported", "skip").index(state(c)),
            )
            listing = "".join(_case_item(c) for c in notable)
            passed = cell.counts["pass"]
            note = (
                f'<p class="passed">{SYMBOL["pass"]} {passed} more passed as expected.</p>'
                if passed and notable
                else ""
            )
            if not notable:
                note = f'<p class="passed">{SYMBOL["pass"]} all {passed} cases passed.</p>'
            blocks.append(
                f'<div id="d-c-{ri}-{ti}" class="cell-detail">'
                f'<p class="tally">{e(_tally(cell.cases))}</p>'
                f'<ul class="case-list">{listing}</ul>{note}</div>'
            )
    return f'<div id="cell-details" hidden>{"".join(blocks)}</div>'


def _panel() -> str:
    return (
        '<aside id="details" hidden aria-live="polite">'
        '<button type="button" id="details-close" aria-label="close details">&times;</button>'
        '<h2 id="details-title"></h2><div id="details-body"></div></aside>'
    )


COMPAT_CSS = """
.muted { color: var(--muted); font-weight: normal; }
.lede { margin: 0 0 8px; font-size: 15px; }
table.runs { font-size: 13px; margin-bottom: 6px; }
table.runs th, table.runs td { padding: 3px 8px; vertical-align: top; text-align: left; }
table.runs thead th { background: var(--head); white-space: nowrap; }
table.runs tbody th { white-space: nowrap; }
table.runs td.num, table.runs th.num { text-align: right; white-space: nowrap; }
table.runs td.fail { color: var(--fail-fg); font-weight: 700; }
table.runs td.pass { color: var(--pass-fg); }
table.runs td.zero { color: var(--muted); }
table.runs td.versions { font-size: 12px; min-width: 22em; }
table.runs td.versions details.more { display: inline; margin: 0 0 0 4px; font-size: 11px; }
table.runs td.nowrap { white-space: nowrap; }
ul.findings { list-style: none; padding: 0; margin: 0; }
li.target-findings { margin: 0 0 10px; }
li.target-findings > .target { font-weight: 700; font-size: 15px; margin-right: 6px; }
li.target-findings.pass > .summary { color: var(--pass-fg); }
li.target-findings.fail > .summary { color: var(--fail-fg); }
li.target-findings.skip > .summary { color: var(--muted); }
li.target-findings > ul { list-style: none; margin: 3px 0 0; padding: 0 0 0 14px; }
li.finding { margin: 2px 0; }
li.finding > .sym { display: inline-block; width: 1.5em; text-align: center;
  border-radius: 3px; font-weight: 700; }
li.finding.fail > .sym { background: var(--fail-bg); color: var(--fail-fg);
  box-shadow: inset 0 0 0 1px var(--fail-edge); }
li.finding.unsupported > .sym { background: var(--uns-bg); color: var(--uns-fg); }
li.finding.fail > .text { font-weight: 600; }
li.finding.unsupported { color: var(--muted); }
li.finding > .count { color: var(--muted); white-space: nowrap; }
li.finding details { display: inline; margin-left: 6px; font-size: 12px; }
li.finding details summary { display: inline; cursor: pointer; color: var(--accent); }
li.finding details[open] { display: block; margin: 2px 0 6px 1.5em; }
li.finding .spec ul { margin: 0; padding-left: 18px; }
li.finding .detail { color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
table.idle td.verdict { white-space: nowrap; font-weight: 600; }
table.idle td.verdict.pass { background: var(--pass-bg); color: var(--pass-fg); }
table.idle td.verdict.fail { background: var(--fail-bg); color: var(--fail-fg);
  box-shadow: inset 0 0 0 2px var(--fail-edge); }
table.idle td.verdict.unsupported { background: var(--uns-bg); color: var(--uns-fg); }
table.idle td.verdict.skip { background: var(--skip-bg); color: var(--skip-fg);
  font-style: italic; font-weight: normal; }
ul.case-list { list-style: none; padding: 0; margin: 4px 0; font-size: 12px; }
ul.case-list > li { margin: 0 0 4px; }
ul.case-list code { overflow-wrap: anywhere; }
ul.case-list .why, ul.case-list .detail { color: var(--muted); margin-left: 1.6em;
  overflow-wrap: anywhere; }
ul.case-list .detail { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 11px; }
ul.case-list li.fail > .sym { color: var(--fail-fg); font-weight: 700; }
.toolbar { display: flex; gap: 12px; align-items: center; font-size: 13px; margin: 0 0 6px; }
.toolbar output { color: var(--muted); }
table.compat { font-size: 12px; }
table.compat th, table.compat td { padding: 3px 6px; }
table.compat thead th { background: var(--head); vertical-align: bottom; }
table.compat thead th.rowhead { text-align: left; }
table.compat thead th.target { min-width: 8.5em; text-align: center; }
table.compat thead th.target span { display: block; }
table.compat thead th.target .name { font-size: 13px; }
table.compat thead th.target .tally, table.compat thead th.target .adapters {
  font-weight: normal; color: var(--muted); font-size: 11px; white-space: nowrap; }
table.compat tr.section th { background: #e8ecf0; text-align: left; font-size: 13px;
  padding: 6px; border-top: 2px solid var(--fg); }
table.compat tbody th { text-align: left; font-weight: normal; white-space: nowrap;
  background: #fafbfc; }
table.compat tbody th.lead { font-weight: 600; }
table.compat tbody th.repeat { color: #9aa4ad; font-weight: normal; }
html.only-failing table.compat tbody tr.first-shown th.repeat { color: inherit;
  font-weight: 600; }
table.compat tbody tr.group-start > * { border-top: 2px solid #8c959f; }
table.compat td.expected { color: var(--muted); white-space: nowrap; }
td.cell { text-align: center; cursor: pointer; line-height: 1.25; white-space: nowrap; }
td.cell .sym { font-weight: 700; }
td.cell .extra { display: block; font-size: 10px; white-space: normal; }
td.cell.pass { background: var(--pass-bg); color: var(--pass-fg); }
td.cell.fail { background: var(--fail-bg); color: var(--fail-fg); font-weight: 600;
  box-shadow: inset 0 0 0 2px var(--fail-edge); }
td.cell.unsupported { color: var(--uns-fg); background: repeating-linear-gradient(135deg,
  var(--uns-bg), var(--uns-bg) 5px, #fff 5px, #fff 8px); }
td.cell.skip { background: var(--skip-bg); color: var(--skip-fg); font-style: italic; }
td.cell.none { cursor: default; background: repeating-linear-gradient(45deg, #fff, #fff 4px,
  #f3f3f3 4px, #f3f3f3 8px); }
td.cell:hover, td.cell:focus { outline: 2px solid var(--accent); outline-offset: -2px; }
td.cell.selected { outline: 3px solid var(--accent); outline-offset: -3px; }
.legend .key.unsupported { background: var(--uns-bg); color: var(--uns-fg); }
html.only-failing table.compat tbody tr:not(.has-fail) { display: none; }
#details-body .tally { margin: 0 0 4px; font-weight: 600; }
#details-body .passed { margin: 4px 0 0; color: var(--pass-fg); }
:root { --uns-bg: #dfe7f5; --uns-fg: #27457a; }
@media print {
  .toolbar, #cell-details, li.finding details { display: none !important; }
  html.only-failing table.compat tbody tr { display: table-row; }
  table.runs { font-size: 9px; }
  table.runs td.nowrap, table.runs tbody th, table.runs thead th { white-space: normal; }
  table.runs td.versions { min-width: 0; font-size: 8px; }
  table.runs td.versions details.more { display: block; margin: 0; font-size: 8px; }
  table.compat { font-size: 9px; }
  table.compat th, table.compat td { padding: 1px 3px; }
  table.compat thead th.target { min-width: 0; }
  table.compat thead th.target .name { font-size: 10px; }
  table.compat thead th.target .tally, table.compat thead th.target .adapters,
  td.cell, table.compat tbody th { white-space: normal; }
  .legend, li.target-findings > .target, table.compat tr.section th { font-size: 10px; }
  td.cell { cursor: default; }
}
"""

COMPAT_JS = """
(function () {
  "use strict";
  var root = document.documentElement;
  var panel = document.getElementById("details");
  var title = document.getElementById("details-title");
  var body = document.getElementById("details-body");
  var only = document.getElementById("only-failing");
  var shown = document.getElementById("rows-shown");
  var rows = document.querySelectorAll("#compat-table tbody tr.row");
  var cells = {};
  var selected = null;
  Array.prototype.forEach.call(document.querySelectorAll("td[data-cell]"), function (c) {
    cells[c.getAttribute("data-cell")] = c;
  });

  function decode(text) {
    try { return decodeURIComponent(text); } catch (e) { return text; }
  }

  function writeHash() {
    var parts = [];
    if (only.checked) { parts.push("failing"); }
    if (selected) {
      parts.push("cell=" + encodeURIComponent(selected.getAttribute("data-cell")));
    }
    var url = location.href.split("#")[0] + (parts.length ? "#" + parts.join("&") : "");
    try { history.replaceState(null, "", url); } catch (e) { /* file:// may refuse */ }
  }

  function filter(updateHash) {
    root.classList.toggle("only-failing", only.checked);
    root.setAttribute("data-only-failing", String(only.checked));
    var count = 0;
    var group = null;
    Array.prototype.forEach.call(rows, function (r) {
      var visible = !only.checked || r.classList.contains("has-fail");
      // the first row shown of a policy names it in full, even when its group's first is hidden
      r.classList.toggle("first-shown", visible && r.getAttribute("data-group") !== group);
      if (visible) { count += 1; group = r.getAttribute("data-group"); }
    });
    shown.textContent = count + " of " + rows.length + " rows shown";
    if (updateHash) { writeHash(); }
  }

  function show(cell, updateHash) {
    if (selected) { selected.classList.remove("selected"); }
    selected = cell && cell.getAttribute("data-state") !== "none" ? cell : null;
    while (body.firstChild) { body.removeChild(body.firstChild); }
    if (selected) {
      selected.classList.add("selected");
      title.textContent = selected.getAttribute("data-label");
      var source = document.getElementById("d-" + selected.id);
      if (source) {
        var copy = source.cloneNode(true);
        copy.removeAttribute("id");
        body.appendChild(copy);
      }
      panel.hidden = false;
      root.setAttribute("data-selected", selected.getAttribute("data-cell"));
    } else {
      panel.hidden = true;
      root.removeAttribute("data-selected");
    }
    if (updateHash) { writeHash(); }
  }

  function applyHash() {
    var wanted = null;
    var failing = false;
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      if (part === "failing") { failing = true; }
      if (part.indexOf("cell=") === 0) { wanted = decode(part.slice(5)); }
    });
    only.checked = failing;
    filter(false);
    show(wanted !== null ? cells[wanted] : null, false);
  }

  only.addEventListener("change", function () { filter(true); });
  document.getElementById("details-close").addEventListener("click", function () {
    show(null, true);
  });
  document.addEventListener("click", function (event) {
    var cell = event.target.closest("td[data-cell]");
    if (cell) { show(cell === selected ? null : cell, true); }
  });
"""
COMPAT_JS += cell_keys_js("td[data-cell]")
