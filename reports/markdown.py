"""summary.md and compat.md: GitHub-flavoured Markdown, sized for a CI step summary.

GitHub refuses step summaries over 1 MiB, and a badly broken run is exactly when the summary
matters, so the output has a byte budget: the header and the grids are small and bounded, and
the findings get what is left, ending in "... N more" rather than overflowing. The content is
the same model as the HTML pages' (reports.findings, reports.compat).
"""

from __future__ import annotations

import html
import re

from . import fmt, resilience
from .compat import SECTION_TITLES, Cell, Comparison, Table, TargetFindings
from .findings import Finding, find, heading_count
from .grid import Grid, build_grids
from .model import STATES, Case, Results
from .order import DASH, STATE_WORD, STATUS_SYMBOL, STATUSES, SYMBOL
from .resilience import Resilience

LIMIT_BYTES = 1024 * 1024
BUDGET_BYTES = LIMIT_BYTES - 16 * 1024
FINDING_CHARS = 400
ID_CHARS = 200
WORD_CHARS = 60
META_CHARS = 300
_PLAIN_ID = re.compile(r"[\w.:+\-@/=]+")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def render_markdown(results: Results) -> str:
    """The summary as one string, guaranteed under LIMIT_BYTES whatever the input."""
    head = _head(results) + _resilience([("", resilience.read(results.run.resilience))])
    grids = _grids(results, BUDGET_BYTES // 3)
    findings = _findings(find(results), BUDGET_BYTES - _size(head) - _size(grids))
    return _cap(head + findings + grids, "matrix.html")


def _cap(text: str, page: str) -> str:
    if _size(text) >= LIMIT_BYTES:  # only reachable with absurd run metadata
        text = text.encode()[:BUDGET_BYTES].decode(errors="ignore").rsplit("\n", 1)[0]
        text += f"\n\n... truncated to fit 1 MiB; see {page}\n"
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


def severity_text(counts: dict[str, int]) -> str:
    return " · ".join(f"{n} {sev}" for sev, n in counts.items())


def _head(results: Results) -> str:
    run = results.run
    lines = [f"## {md(fmt.title(run), META_CHARS)}", ""]
    if results.incomplete:
        lines += [f"> **{md(results.incomplete)}**", ""]
    lines += [f"**{md(fmt.totals(results))}**", ""]
    if results.counts["fail"]:
        lines += [f"Failing cases by severity: {severity_text(results.severities)}", ""]
    facts = [("started", run.started or "unknown"), ("duration", fmt.duration(run.duration_s))]
    if run.versions:
        facts.append(("versions", " · ".join(f"{k} {v}" for k, v in run.versions.items())))
    if run.platform:
        facts.append(("platform", run.platform))
    facts.extend((f"resolver {k}", fmt.value(v)) for k, v in run.resolver.items())
    lines.extend(f"- {md(k)}: {md(v, META_CHARS)}" for k, v in facts)
    return "\n".join(lines) + "\n\n"


def _resilience(measured: list[tuple[str, Resilience | None]], named: bool = False) -> str:
    """The resilience rows (a target column when several targets are listed); "" if none."""
    measured = [(name, res) for name, res in measured if res is not None]
    if not measured:
        return ""
    lines = ["### Resilience", ""]
    heads = ["adapter", "attack", "good alone", "during (median / max)", "after", "added", "stall"]
    heads = (["target"] if named else []) + [*heads, "alive"]
    lines += ["| " + " | ".join(heads) + " |", "|" + " --- |" * len(heads)]
    for name, res in measured:
        if res.problem:
            lines.append(
                f"| {md(name or res.problem)} |" + (f" {md(res.problem)} |" if named else "")
            )
        for r in res.rows:
            cells = [r.adapter, r.kind, r.alone, r.during, r.after, r.added, r.stall, r.alive]
            mark = f"{STATUS_SYMBOL['fail']} " if r.verdict == "fail" else ""
            cells[6] = mark + cells[6]
            lines.append(
                "| "
                + " | ".join(md(c, WORD_CHARS) for c in ([name] if named else []) + cells)
                + " |"
            )
    return "\n".join(lines) + "\n\n"


def finding_lines(findings: tuple[Finding, ...], ids: int = 5) -> list[list[str]]:
    """Per finding: its line, then up to ``ids`` case ids as sub-items."""
    out = []
    for f in findings:
        symbol = STATUS_SYMBOL["fail"] if f.severity else "\u2298"
        head = f"- {symbol} **{md(f.severity or 'unsupported')}** {md(f.text, FINDING_CHARS)}"
        if f.scope:
            head += f" · {md(f.scope, FINDING_CHARS)}"
        block = [head + f" ({f.count_text})"]
        block += [f"  - {case_id(c.id)}" for c in f.cases[:ids]]
        if len(f.cases) > ids:
            block.append(f"  - ... and {len(f.cases) - ids} more")
        out.append(block)
    return out


def _findings(findings: tuple[Finding, ...], budget: int) -> str:
    if not findings:
        return "### Findings\n\nNo failures: every case that ran matched its expectation.\n\n"
    lines = [f"### Findings ({heading_count(findings)})", ""]
    blocks = finding_lines(findings)
    used = sum(_size(line) + 1 for line in lines) + 200
    for index, block in enumerate(blocks):
        cost = sum(_size(line) + 1 for line in block)
        if used + cost > budget:
            lines.append(f"- ... {len(blocks) - index} more findings left out (see the HTML page)")
            break
        lines.extend(block)
        used += cost
    return "\n".join(lines) + "\n\n"


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


def render_compat_markdown(comparison: Comparison) -> str:
    """Runs, findings, refusal forms, resilience, then the side-by-side tables; < 1 MiB."""
    runs = comparison.runs
    measured = [(r.name, resilience.read(r.results.run.resilience)) for r in runs]
    head = _compat_head(comparison) + _refusals(comparison) + _resilience(measured, True)
    tables = _tables(comparison.table, BUDGET_BYTES // 2)
    budget = BUDGET_BYTES - _size(head) - _size(tables)
    lines = ["### Findings", ""]
    used = 200
    for index, target in enumerate(comparison.targets):
        block = [_target_line(target)] + [
            "  " + line for f in finding_lines(target.findings, ids=0) for line in f
        ]
        cost = sum(_size(line) + 1 for line in block)
        if used + cost > budget:
            rest = len(runs) - index
            lines.append(
                f"- ... {rest} more targets left out to stay under 1 MiB (see compat.html)"
            )
            break
        lines.extend(block)
        used += cost
    return _cap(head + "\n".join(lines) + "\n\n" + tables, "compat.html")


def _compat_head(comparison: Comparison) -> str:
    runs = comparison.runs
    diverging = comparison.diverging
    lines = [f"## mTLS compatibility: {len(runs)} targets", ""]
    for run in runs:
        if run.results.incomplete:
            lines += [f"> **{md(run.name, WORD_CHARS)}: {md(run.results.incomplete)}**", ""]
    if diverging:
        names = ", ".join(md(n, WORD_CHARS) for n in diverging)
        lines.append(f"**{len(diverging)} of {len(runs)} targets diverge from the spec: {names}**")
    else:
        lines.append(f"**All {len(runs)} targets behave as the spec says in every case run.**")
    heads = " | ".join(f"{SYMBOL[s]} {STATE_WORD[s]}" for s in STATES)
    lines += [
        "",
        f"| target | adapters | {heads} | failing cases by severity | duration | versions |",
        "| --- | --- | " + "---: | " * len(STATES) + "--- | --- | --- |",
    ]
    for run in runs:
        counts = run.results.states
        shown = run.server_versions or run.other_versions
        cells = [
            f"**{md(run.name, WORD_CHARS)}**",
            md(", ".join(run.adapters), WORD_CHARS),
            *(str(counts[s]) for s in STATES),
            md(severity_text(run.results.severities)),
            md(fmt.duration(run.results.run.duration_s)),
            md(" · ".join(f"{k} {v}" for k, v in shown), META_CHARS) or " ",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n"


def _target_line(target: TargetFindings) -> str:
    counts = target.run.results.states
    ran = counts["pass"] + counts["fail"]
    name = f"**{md(target.run.name, WORD_CHARS)}**"
    if target.failures:
        return f"- {name}: {SYMBOL['fail']} {counts['fail']} of {ran} cases run diverge"
    if not ran:
        return f"- {name}: {SYMBOL['skip']} no case ran, so nothing to compare"
    return f"- {name}: {SYMBOL['pass']} no divergence from the spec in {ran} cases run"


def _refusals(comparison: Comparison) -> str:
    if not comparison.refusals_observed:
        return ""
    lines = [
        "### Refusal forms",
        "",
        "| target | observed refusals | refusal-form problems |",
        "| --- | --- | ---: |",
    ]
    for t in comparison.targets:
        forms = " · ".join(f"{form} \u00d7{n}" for form, n in t.refusal_forms.items())
        lines.append(
            f"| **{md(t.run.name, WORD_CHARS)}** | {md(forms, META_CHARS) or DASH} | "
            f"{t.refusal_form_problems} |"
        )
    return "\n".join(lines) + "\n\n"


def _tables(table: Table, budget: int) -> str:
    legend = " · ".join(f"{SYMBOL[s]} {STATE_WORD[s]}" for s in STATES)
    out = [
        "### Side by side",
        "",
        f"Cells sum each target's cases over adapters, binds and connects ({legend}); "
        "a failing cell shows failed/ran and what went wrong.",
        "",
    ]
    names = [md(r.name, WORD_CHARS) for r in table.runs]
    sections = table.sections()
    per_section = budget // max(len(sections), 1)
    for section, indexes in sections:
        subject = "client" if section == "client" else "server cert"
        header = [
            f"**{md(SECTION_TITLES[section])}**",
            "",
            f"| policy | {subject} | expected | " + " | ".join(names) + " |",
            "| --- | --- | --- | " + " | ".join([":-:"] * len(names)) + " |",
        ]
        rows = []
        for ri in indexes:
            row = table.rows[ri]
            policy = f"**{md(row.policy, WORD_CHARS)}**" if row.first_of_group else " "
            cells = [_cell_text(table.cell(ri, ti)) for ti in range(len(names))]
            labels = [policy, md(row.subject, WORD_CHARS), md(" / ".join(row.expected))]
            rows.append("| " + " | ".join(labels + cells) + " |")
        out.extend(_fit(header, rows, per_section, "rows"))
        out.append("")
    return "\n".join(out) + "\n"


def _cell_text(cell: Cell) -> str:
    if cell.state == "none":
        return " "
    text = f"{SYMBOL[cell.state]} {cell.main_text} {cell.words}".strip()
    return md(text, WORD_CHARS)
