"""summary.md: the run as GitHub-flavoured Markdown, sized for a CI step summary.

GitHub refuses step summaries over 1 MiB, and a badly broken run is exactly when the summary
matters, so the output has a byte budget: the header and the grids are small and bounded, and
the anomalies table gets what is left, ending in "... and N more" rather than overflowing.
"""

from __future__ import annotations

import html
import re

from . import fmt
from .grid import Grid, build_grids
from .model import Case, Results
from .order import DASH, STATUS_SYMBOL, STATUSES

LIMIT_BYTES = 1024 * 1024
BUDGET_BYTES = LIMIT_BYTES - 16 * 1024
DETAIL_CHARS = 160
REASON_CHARS = 200
ID_CHARS = 200
WORD_CHARS = 60
META_CHARS = 300
_PLAIN_ID = re.compile(r"[\w.:+\-@/=]+")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def render_markdown(results: Results) -> str:
    """The summary as one string, guaranteed under LIMIT_BYTES whatever the input."""
    head = _head(results)
    grids = _grids(results, BUDGET_BYTES // 3)
    anomalies = _anomalies(results, BUDGET_BYTES - _size(head) - _size(grids))
    text = head + anomalies + grids
    if _size(text) >= LIMIT_BYTES:  # only reachable with absurd run metadata
        text = text.encode()[:BUDGET_BYTES].decode(errors="ignore").rsplit("\n", 1)[0]
        text += "\n\n... summary truncated to fit 1 MiB; see matrix.html\n"
    return text


def md(text: str, limit: int | None = None) -> str:
    """Text safe inside a table cell: one line, no pipes or emphasis, no raw HTML."""
    text = fmt.truncate(text, limit) if limit else " ".join(text.split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def case_id(text: str) -> str:
    """Ids read best as code; anything odd falls back to escaped text."""
    text = fmt.truncate(text, ID_CHARS)
    return f"`{text}`" if _PLAIN_ID.fullmatch(text) else md(text)


def cell(case: Case | None) -> str:
    return md(fmt.cell_text(case), WORD_CHARS) if case is not None else " "


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _head(results: Results) -> str:
    run = results.run
    lines = [f"## {md(fmt.title(run), META_CHARS)}", "", f"**{md(fmt.totals(results))}**", ""]
    facts = [
        ("started", run.started or "unknown"),
        ("duration", fmt.duration(run.duration_s)),
    ]
    if run.versions:
        facts.append(("versions", " · ".join(f"{k} {v}" for k, v in run.versions.items())))
    if run.platform:
        facts.append(("platform", run.platform))
    facts.extend((f"resolver {k}", fmt.value(v)) for k, v in run.resolver.items())
    lines.extend(f"- {md(k)}: {md(v, META_CHARS)}" for k, v in facts)
    lines.append("")
    return "\n".join(lines) + "\n"


def _anomalies(results: Results, budget: int) -> str:
    failures = results.failures
    if not failures:
        return "### Anomalies\n\nNo anomalies: every case that ran matched its expectation.\n\n"
    header = [
        f"### Anomalies ({len(failures)})",
        "",
        "| case | expected | observed | reason | server alive | detail |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    rows = [
        "| "
        + " | ".join(
            [
                case_id(c.id),
                md(c.expected, WORD_CHARS),
                md(f"{STATUS_SYMBOL['fail']} {c.outcome}", WORD_CHARS),
                md(c.reason or DASH, REASON_CHARS),
                md(fmt.alive(c.server_alive)),
                md(c.detail or DASH, DETAIL_CHARS),
            ]
        )
        + " |"
        for c in failures
    ]
    return "\n".join(_fit(header, rows, budget, "anomalies")) + "\n\n"


def _grids(results: Results, budget: int) -> str:
    grids = build_grids(results)
    tables = sum(len(g.adapters) for g in grids)
    per_table = budget // max(tables, 1)
    adapters: list[str] = []
    for grid in grids:
        adapters.extend(a for a in grid.adapters if a not in adapters)
    out = []
    for adapter in adapters:
        cases = [c for c in results.cases if c.adapter == adapter]
        counts = {s: sum(1 for c in cases if c.status == s) for s in STATUSES}
        tally = " · ".join(f"{STATUS_SYMBOL[s]} {counts[s]} {s}" for s in STATUSES)
        opened = " open" if counts["fail"] else ""
        out.append(f"<details{opened}><summary><b>{md(adapter)}</b>: {tally}</summary>\n")
        for grid in grids:
            if adapter in grid.adapters:
                out.append("\n".join(_grid_table(grid, adapter, per_table)) + "\n")
        out.append("</details>\n")
    return "\n".join(out)


def _grid_table(grid: Grid, adapter: str, budget: int) -> list[str]:
    columns = [(ci, col) for ci, col in enumerate(grid.columns) if col.adapter == adapter]
    heads = [*grid.row_headers, *(col.policy for _, col in columns)]
    header = [
        f"**{md(grid.title)}**",
        "",
        "| " + " | ".join(md(h, WORD_CHARS) for h in heads) + " |",
        "| " + " | ".join(["---"] * len(grid.row_headers) + [":-:"] * len(columns)) + " |",
    ]
    rows = []
    for ri, row in enumerate(grid.rows):
        cells = [grid.cell(ri, ci) for ci, _ in columns]
        if all(c is None for c in cells):
            continue
        labels = [md(label, WORD_CHARS) for label in row.labels]
        rows.append("| " + " | ".join(labels + [cell(c) for c in cells]) + " |")
    return _fit(header, rows, budget, "rows")


def _fit(header: list[str], rows: list[str], budget: int, noun: str) -> list[str]:
    """Header plus as many rows as fit in ``budget`` bytes, then a line saying how many did not."""
    reserve = 120
    used = sum(_size(line) + 1 for line in header)
    if used + reserve > budget:
        return [header[0], "", f"... {len(rows)} {noun} left out to keep this summary under 1 MiB"]
    out = list(header)
    for index, row in enumerate(rows):
        cost = _size(row) + 1
        if used + cost + reserve > budget:
            out += ["", f"... and {len(rows) - index} more {noun} (see matrix.html)"]
            break
        out.append(row)
        used += cost
    return out
