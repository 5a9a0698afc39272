"""``python -m reports compat``: several targets' results side by side, as HTML and Markdown.

    runs = reports.load_targets(["build/compat/reference.json", "build/compat/gunicorn.json"])
    reports.build_compat(runs, "build/compat")       # compat.html + compat.md
    for tf in reports.compare(runs).findings:
        print([f.line for f in tf.divergences])      # "gunicorn: accepts expired client ..."

Each file is read by the same loader as ``build`` (so bad input is the same one-line
ReportError) and is named by its ``run.target``. Divergences are findings, not errors: only
unreadable input or an unwritable output stops the command. compat.md follows summary.md's
rule of staying under GitHub's 1 MiB step-summary limit whatever the input.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from . import fmt
from .build import write_pages
from .compat_model import (
    IDLE_TITLE,
    SECTION_TITLES,
    STATE_WORD,
    STATES,
    SYMBOL,
    Comparison,
    IdleClient,
    Table,
    TargetFindings,
    TargetRun,
    compare,
    ms_text,
)
from .compat_page import render_compat_html
from .load import load_results
from .markdown import BUDGET_BYTES, LIMIT_BYTES, META_CHARS, WORD_CHARS, md
from .model import ReportError
from .order import DASH

HTML_NAME = "compat.html"
MARKDOWN_NAME = "compat.md"
FINDING_CHARS = 400


def load_targets(paths: Iterable[str | os.PathLike[str]]) -> list[TargetRun]:
    """Load one results file per target; ReportError if a target name comes twice.

    A file without ``run.target`` is named after the file (``gunicorn.json`` -> gunicorn), so
    hand-made or older results still get a column.
    """
    runs: list[TargetRun] = []
    seen: dict[str, str] = {}
    for path in paths:
        name = os.fspath(path)
        results = load_results(name)
        target = results.run.target or Path(name).stem
        if target in seen:
            raise ReportError(
                f"{name}: target {target!r} again (already read from {seen[target]}); "
                "give one results file per target"
            )
        seen[target] = name
        runs.append(TargetRun(target, results))
    if not runs:
        raise ReportError("no results files given")
    return runs


def build_compat(runs: Sequence[TargetRun], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write compat.html and compat.md into ``out_dir`` (created if needed); return the paths."""
    comparison = compare(runs)
    return write_pages(
        out_dir,
        {
            HTML_NAME: render_compat_html(comparison),
            MARKDOWN_NAME: render_compat_markdown(comparison),
        },
    )


def render_compat_markdown(comparison: Comparison) -> str:
    """Runs, findings, idle clients, then the side-by-side tables; always under LIMIT_BYTES."""
    head = _head(comparison)
    idle = _idle_clients(comparison)
    tables = _tables(comparison.table, BUDGET_BYTES // 2)
    findings = _findings(comparison, BUDGET_BYTES - _size(head) - _size(idle) - _size(tables))
    text = head + findings + idle + tables
    if _size(text) >= LIMIT_BYTES:  # only reachable with absurd run metadata
        text = text.encode()[:BUDGET_BYTES].decode(errors="ignore").rsplit("\n", 1)[0]
        text += "\n\n... truncated to fit 1 MiB; see compat.html\n"
    return text


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _head(comparison: Comparison) -> str:
    runs = comparison.runs
    diverging = comparison.diverging
    lines = [f"## mTLS compatibility: {len(runs)} targets", ""]
    if diverging:
        names = ", ".join(md(n, WORD_CHARS) for n in diverging)
        lines.append(f"**{len(diverging)} of {len(runs)} targets diverge from the spec: {names}**")
    else:
        lines.append(f"**All {len(runs)} targets behave as the spec says in every case run.**")
    if comparison.stalled:
        names = ", ".join(md(n, WORD_CHARS) for n in comparison.stalled)
        lines += ["", f"**Idle clients stall {names}.**"]
    heads = " | ".join(f"{SYMBOL[s]} {STATE_WORD[s]}" for s in STATES)
    lines += [
        "",
        f"| target | adapters | {heads} | duration | versions |",
        "| --- | --- | " + "---: | " * len(STATES) + "--- | --- |",
    ]
    for run in runs:
        counts = run.counts
        shown = run.server_versions or run.other_versions
        versions = " · ".join(f"{k} {v}" for k, v in shown)
        cells = [
            f"**{md(run.name, WORD_CHARS)}**",
            md(", ".join(run.adapters), WORD_CHARS),
            *(str(counts[s]) for s in STATES),
            md(fmt.duration(run.results.run.duration_s)),
            md(versions, META_CHARS) or " ",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n"


def _findings(comparison: Comparison, budget: int) -> str:
    lines = ["### Findings", ""]
    blocks = [_target_block(tf) for tf in comparison.findings]
    used = sum(_size(line) + 1 for line in lines) + 200
    for index, block in enumerate(blocks):
        cost = sum(_size(line) + 1 for line in block)
        if used + cost > budget:
            rest = len(blocks) - index
            lines.append(
                f"- ... {rest} more targets left out to stay under 1 MiB (see compat.html)"
            )
            break
        lines.extend(block)
        used += cost
    return "\n".join(lines) + "\n\n"


def _target_block(tf: TargetFindings) -> list[str]:
    counts = tf.run.counts
    ran = counts["pass"] + counts["fail"]
    name = f"**{md(tf.run.name, WORD_CHARS)}**"
    if tf.divergences:
        head = f"- {name}: {SYMBOL['fail']} {counts['fail']} of {ran} cases run diverge"
    elif not ran:
        head = f"- {name}: {SYMBOL['skip']} no case ran, so nothing to compare"
    else:
        head = f"- {name}: {SYMBOL['pass']} no divergence from the spec in {ran} cases run"
    items = [f"  - {f.symbol} {md(f.sentence, FINDING_CHARS)}" for f in tf.divergences]
    items += [f"  - {f.symbol} {md(f.sentence, FINDING_CHARS)}" for f in tf.stalls]
    items += [f"  - {f.symbol} {md(f.sentence, FINDING_CHARS)}" for f in tf.unsupported]
    return [head, *items]


def _idle_clients(comparison: Comparison) -> str:
    """A row per target: alone, with N idle clients, after, verdict ("" if none measured)."""
    if not comparison.idle_measured:
        return ""
    runs = comparison.runs
    counts: dict[str, None] = {}
    for run in runs:
        for count, _ in run.idle_client.with_idle_ms if run.idle_client else ():
            counts.setdefault(count)
    columns = sorted(counts, key=lambda c: (int(c), c) if c.isdigit() else (1 << 30, c))
    heads = "".join(f" with {md(c, WORD_CHARS)} idle |" for c in columns)
    lines = [
        f"### {IDLE_TITLE}",
        "",
        "A good client requests alone, then while idle TCP clients (sending nothing) are "
        "connected (medians); the verdict counts the smallest difference between a request "
        "with idle clients and one alone just before it. \u2265 marks a request that hit the "
        "client's timeout.",
        "",
        f"| target | adapter, policy | alone |{heads} after | verdict |",
        "| --- | --- | ---: |" + " ---: |" * len(columns) + " ---: | --- |",
    ]
    for run in runs:
        idle = run.idle_client or IdleClient(problem="no run.resilience in this results file")
        figures = "".join(f" {md(idle.figure(c)) or DASH} |" for c in columns)
        base = ms_text(idle.baseline_ms) if idle.baseline_ms is not None else DASH
        after = ms_text(idle.after_ms) if idle.after_ms is not None else DASH
        verdict = idle.text
        if idle.problem:
            verdict += f" ({idle.problem})"
        lines.append(
            f"| **{md(run.name, WORD_CHARS)}** | {md(idle.configuration, WORD_CHARS) or DASH} | "
            f"{base} |{figures} {after} | {md(verdict, FINDING_CHARS)} |"
        )
    return "\n".join(lines) + "\n\n"


def _tables(table: Table, budget: int) -> str:
    out = ["### Side by side", ""]
    legend = " · ".join(f"{SYMBOL[s]} {STATE_WORD[s]}" for s in STATES)
    out.append(
        f"Cells sum each target's cases over adapters, binds and connects ({legend}); "
        "a failing cell shows failed/ran and what went wrong."
    )
    out.append("")
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
            cells = [md(table.cell(ri, ti).text, WORD_CHARS) or " " for ti in range(len(names))]
            labels = [policy, md(row.subject, WORD_CHARS), md(" / ".join(row.expected))]
            rows.append("| " + " | ".join(labels + cells) + " |")
        out.extend(_fit(header, rows, per_section))
        out.append("")
    return "\n".join(out) + "\n"


def _fit(header: list[str], rows: list[str], budget: int) -> list[str]:
    """Header plus as many rows as fit in ``budget`` bytes, then how many did not."""
    used = sum(_size(line) + 1 for line in header) + 120
    out = list(header)
    for index, row in enumerate(rows):
        used += _size(row) + 1
        if used > budget:
            out += ["", f"... and {len(rows) - index} more rows (see compat.html)"]
            break
        out.append(row)
    return out
