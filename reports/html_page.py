"""matrix.html: one self-contained page for a person to read a run.

Everything a user should notice comes first (totals, then anomalies), the grids after. Every
piece of text from the results goes through ``html.escape``; the page's own CSS and scripts are
inline and a Content-Security-Policy forbids loading anything else, so the file works the same
from file://, a CI artifact or an air-gapped laptop.
"""

from __future__ import annotations

import html
from urllib.parse import quote

from . import fmt
from .grid import Grid, build_grids
from .model import Case, Results
from .order import DASH, DIMENSIONS, STATUS_SYMBOL, STATUSES, attr_name, ordered
from .page_assets import CSS, ERROR_TRAP_JS, PAGE_JS

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)
TITLE_DETAIL_LIMIT = 600


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


def render_html(results: Results) -> str:
    """The whole page as a string; build() writes it to matrix.html."""
    counts = results.counts
    page_title = fmt.title(results.run) + (
        f": {counts['fail']} failed" if counts["fail"] else ": all as expected"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">',
        f"<title>{e(page_title)}</title>",
        f"<script>{ERROR_TRAP_JS}</script>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        _header(results),
        "<main>",
        _anomalies(results),
        _grids(results),
        "</main>",
        _details_panel(),
        f"<footer>Generated from {e(results.source)} by <code>python -m reports</code>.</footer>",
        f"<script>{PAGE_JS}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _header(results: Results) -> str:
    run = results.run
    counts = results.counts
    target = e(run.target or "unknown target")
    profile = f' <span class="profile">profile {e(run.profile)}</span>' if run.profile else ""
    badges = " ".join(
        f'<span class="badge {s if counts[s] else "none"}" id="count-{s}">'
        f"{STATUS_SYMBOL[s]} {counts[s]} {s}</span>"
        for s in STATUSES
    )
    meta: list[tuple[str, str]] = [
        ("started", run.started or "unknown"),
        ("duration", fmt.duration(run.duration_s)),
    ]
    if run.versions:
        meta.append(("versions", " · ".join(f"{k} {v}" for k, v in run.versions.items())))
    if run.platform:
        meta.append(("platform", run.platform))
    meta.extend((f"resolver: {k}", fmt.value(v)) for k, v in run.resolver.items())
    meta.extend((k, fmt.value(v)) for k, v in run.extra.items())
    rows = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in meta)
    certs = ""
    if run.certificates:
        cert_rows = "".join(
            f'<dt>{e(k)}</dt><dd class="mono">{e(v)}</dd>' for k, v in run.certificates.items()
        )
        certs = (
            '<details class="more"><summary>certificate fingerprints</summary>'
            f'<dl class="meta">{cert_rows}</dl></details>'
        )
    return (
        "<header>"
        f"<h1>mTLS matrix: {target}{profile}</h1>"
        f'<p class="totals" id="totals">{badges} '
        f'<span class="badge none">{len(results.cases)} cases</span></p>'
        f'<dl class="meta" id="run">{rows}</dl>{certs}'
        "</header>"
    )


def _anomalies(results: Results) -> str:
    failures = results.failures
    if not failures:
        body = (
            '<p class="no-anomalies" id="no-anomalies">✓ No anomalies: every case that ran '
            "matched its expected outcome.</p>"
        )
        return f'<section id="anomalies"><h2>Anomalies</h2>{body}</section>'
    rows = []
    for case in failures:
        alive_class = "alive dead" if case.server_alive is False else "alive"
        rows.append(
            f'<tr data-anomaly-id="{e(case.id)}">'
            f'<td class="id"><a href="#case={e(quote(case.id, safe=""))}" '
            f'data-goto="{e(case.id)}">{e(case.id)}</a></td>'
            f'<td class="expected">{e(case.expected)}</td>'
            f'<td class="reason">{e(case.reason or DASH)}</td>'
            f'<td class="observed">{STATUS_SYMBOL["fail"]} {e(case.outcome)}</td>'
            f'<td class="{alive_class}">{e(fmt.alive(case.server_alive))}</td>'
            f'<td class="detail"><pre>{e(case.detail or DASH)}</pre></td>'
            "</tr>"
        )
    return (
        '<section id="anomalies">'
        f"<h2>Anomalies ({len(failures)})</h2>"
        '<table class="anomalies"><thead><tr><th>case</th><th>expected</th><th>reason</th>'
        "<th>observed</th><th>server alive</th><th>detail</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _filters(results: Results) -> str:
    controls = []
    dims = [(attr_name(d), d, [c.dim(d) for c in results.cases]) for d in DIMENSIONS]
    dims.append(("status", "status", [c.status for c in results.cases]))
    dims.append(("observed", "outcome", [c.outcome for c in results.cases]))
    for attr, order_dim, values in dims:
        options = "".join(
            f'<option value="{e(v)}">{e(v)}</option>' for v in ordered(order_dim, values)
        )
        label = attr.replace("-", " ")
        controls.append(
            f'<label>{e(label)} <select id="f-{attr}" data-dim="{attr}">'
            f'<option value="">all</option>{options}</select></label>'
        )
    return (
        '<div id="filters" class="noprint" role="search">'
        + "".join(controls)
        + '<button type="button" id="reset">show all</button>'
        + '<span id="filter-note" role="status"></span>'
        + f'<output id="shown">{len(results.cases)} of {len(results.cases)} cases shown</output>'
        + "</div>"
    )


def _legend() -> str:
    return (
        '<div class="legend" id="legend">'
        f'<span><span class="key pass">{STATUS_SYMBOL["pass"]}</span>pass: observed as expected'
        "</span>"
        f'<span><span class="key fail">{STATUS_SYMBOL["fail"]}</span>fail: observed differs '
        "(expected shown below it)</span>"
        f'<span><span class="key skip">{STATUS_SYMBOL["skip"]}</span>skip: cannot run here</span>'
        '<span class="words">Words are the observed outcome: ok = HTTP 200; rejected = the '
        "server refused the client; server-cert-rejected = the client refused the server; "
        "error = anything else. Click a cell for details.</span>"
        "</div>"
    )


def _grids(results: Results) -> str:
    blocks = [_grid(g) for g in build_grids(results)]
    return (
        '<section id="matrix"><h2>Matrix</h2>'
        + _legend()
        + _filters(results)
        + "".join(blocks)
        + "</section>"
    )


def _grid(grid: Grid) -> str:
    adapters = grid.adapters
    head1 = [f'<th rowspan="2" class="rowhead" scope="col">{e(h)}</th>' for h in grid.row_headers]
    for gi, adapter in enumerate(adapters):
        span = sum(1 for c in grid.columns if c.adapter == adapter)
        head1.append(
            f'<th colspan="{span}" class="group group-edge" scope="colgroup" data-group="{gi}" '
            f'data-adapter="{e(adapter)}">{e(adapter)}</th>'
        )
    head2 = []
    edges = _group_edges(grid)
    for ci, col in enumerate(grid.columns):
        edge = " group-edge" if ci in edges else ""
        head2.append(
            f'<th class="policy{edge}" scope="col" data-col="{ci}" '
            f'data-group="{adapters.index(col.adapter)}" data-adapter="{e(col.adapter)}" '
            f'data-policy="{e(col.policy)}">{e(col.policy)}</th>'
        )
    body = []
    for ri, row in enumerate(grid.rows):
        tr_class = ' class="group-start"' if row.first_of_group and ri else ""
        labels = []
        for li, label in enumerate(row.labels):
            cls = "lead" if li == 0 else ""
            if li == 0 and not row.first_of_group:
                cls = "lead repeat"
            labels.append(f'<th scope="row" class="{cls}">{e(label)}</th>')
        cells = []
        for ci in range(len(grid.columns)):
            case = grid.cell(ri, ci)
            edge = " group-edge" if ci in edges else ""
            if case is None:
                cells.append(
                    f'<td class="nocase{edge}" data-col="{ci}" title="no such case in this run">'
                    "</td>"
                )
            else:
                cells.append(_cell(case, ci, edge))
        body.append(f"<tr{tr_class}>{''.join(labels)}{''.join(cells)}</tr>")
    return (
        f'<div class="grid-block" id="block-{e(grid.key)}">'
        f"<h3>{e(grid.title)}</h3>"
        '<p class="nothing">No case of this grid matches the filters.</p>'
        f'<div class="scroll"><table class="grid" id="grid-{e(grid.key)}">'
        f"<thead><tr>{''.join(head1)}</tr><tr>{''.join(head2)}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div></div>"
    )


def _group_edges(grid: Grid) -> set[int]:
    """Column indexes that start an adapter group, for the thick separating border."""
    edges = set()
    previous = None
    for ci, col in enumerate(grid.columns):
        if col.adapter != previous:
            edges.add(ci)
        previous = col.adapter
    return edges


def _cell(case: Case, column: int, edge: str) -> str:
    dims = " ".join(f'data-{attr_name(d)}="{e(case.dim(d))}"' for d in DIMENSIONS)
    duration = "" if case.duration_ms is None else f"{case.duration_ms:.1f} ms"
    tooltip = "\n".join(
        [
            case.id,
            f"{case.status}: observed {case.outcome}, expected {case.expected}",
            f"reason: {case.reason or DASH}",
            f"server alive: {fmt.alive(case.server_alive)}",
            f"detail: {fmt.truncate(case.detail, TITLE_DETAIL_LIMIT) if case.detail else DASH}",
        ]
    )
    symbol = STATUS_SYMBOL.get(case.status, "?")
    word = "skip" if case.status == "skip" else case.outcome
    expected = (
        f' <span class="exp">expected {e(case.expected)}</span>' if case.status == "fail" else ""
    )
    return (
        f'<td class="case {e(case.status)}{edge}" tabindex="0" data-col="{column}" '
        f'data-case-id="{e(case.id)}" data-status="{e(case.status)}" {dims} '
        f'data-observed="{e(case.outcome)}" data-expected="{e(case.expected)}" '
        f'data-reason="{e(case.reason)}" data-detail="{e(case.detail)}" '
        f'data-alive="{e(fmt.alive(case.server_alive))}" data-duration="{e(duration)}" '
        f'title="{e(tooltip)}">'
        f'<span class="sym" aria-hidden="true">{symbol}</span> <span class="word">{e(word)}</span>'
        f"{expected}</td>"
    )


def _details_panel() -> str:
    fields = [
        ("status", "status"),
        ("expected", "expected"),
        ("reason", "reason"),
        ("observed", "observed"),
        ("server alive", "alive"),
        ("duration", "duration"),
        *((d.replace("_", " "), attr_name(d)) for d in DIMENSIONS),
    ]
    rows = "".join(f'<dt>{e(label)}</dt><dd data-field="{f}"></dd>' for label, f in fields)
    return (
        '<aside id="details" hidden aria-live="polite">'
        '<button type="button" id="details-close" aria-label="close details">&times;</button>'
        '<h2 data-field="case-id"></h2>'
        f"<dl>{rows}</dl>"
        '<pre data-field="detail"></pre>'
        "</aside>"
    )
