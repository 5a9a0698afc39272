"""Several targets' runs side by side: each target's findings, then a table of all of them.

    runs = reports.load_targets(["build/compat/reference.json", "build/compat/gunicorn.json"])
    reports.build_compat(runs, "build/compat")       # compat.html + compat.md
    for target in reports.compare(runs).targets:
        print(target.run.name, [f.line for f in target.findings])

Each file is read by the same loader as ``build`` (so bad input is the same one-line
ReportError) and is named by its ``run.target``. Divergences are findings, not errors: only
unreadable input or an unwritable output stops the command. Findings are the same model as the
single-run page's (reports.findings); the table's rows are (section, policy, subject) where the
subject is the client credential, or the bad server certificate in the server-certificate
section, and a cell sums one target's cases over every other dimension.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from matrix.problems import REFUSAL_FORM, SEVERITIES

from .findings import Finding, find, problem_word
from .grid import primary_server_cert
from .load import load_results
from .model import STATES, Case, ReportError, Results
from .order import case_sort_key, ordered, value_key

CLIENT_SECTION, SERVER_SECTION = "client", "server-cert"
SECTION_TITLES = {
    CLIENT_SECTION: "Client certificate checks",
    SERVER_SECTION: "Server certificate checks (the client must refuse a bad server certificate)",
}
SUBJECT_DIM = {CLIENT_SECTION: "client", SERVER_SECTION: "server_cert"}


@dataclass(frozen=True)
class TargetRun:
    """One target's results file, under the name its column and findings use."""

    name: str
    results: Results

    @property
    def cases(self) -> tuple[Case, ...]:
        return self.results.cases

    @property
    def adapters(self) -> list[str]:
        """The TLS stacks this target ran cases on (an adapter it cannot express is not one)."""
        used = [c.adapter for c in self.cases if c.status != "skip"]
        return ordered("adapter", used or (c.adapter for c in self.cases))

    @property
    def server_versions(self) -> list[tuple[str, str]]:
        """Versions of the software under test: the runner records them as ``target:NAME``."""
        items = self.results.run.versions.items()
        return [(k.removeprefix("target:"), v) for k, v in items if k.startswith("target:")]

    @property
    def other_versions(self) -> list[tuple[str, str]]:
        items = self.results.run.versions.items()
        return [(k, v) for k, v in items if not k.startswith("target:")]


@dataclass(frozen=True)
class TargetFindings:
    run: TargetRun
    findings: tuple[Finding, ...]

    @property
    def failures(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity)

    @property
    def refusal_forms(self) -> dict[str, int]:
        """How the target refused, from the observed ``form`` and ``alert`` fields:
        ``alert certificate_required``, ``close``, ``reset`` with their counts."""
        tally = Counter(
            form_text(c.observation)
            for c in self.run.cases
            if c.observed not in (None, "ok", "skipped") and c.observation.get("form")
        )
        return dict(sorted(tally.items()))

    @property
    def refusal_form_problems(self) -> int:
        return sum(1 for c in self.run.cases for p in c.problems if p.kind == REFUSAL_FORM)


def form_text(fields: object) -> str:
    """``alert unknown_ca``, ``close`` or ``reset`` from a dict with ``form``/``alert``."""
    if not isinstance(fields, dict):
        return str(fields)
    form, alert = fields.get("form"), fields.get("alert")
    return f"{form} {alert}" if form == "alert" and alert else str(form)


@dataclass(frozen=True)
class Row:
    section: str
    policy: str
    subject: str
    expected: tuple[str, ...]
    first_of_group: bool

    @property
    def key(self) -> str:
        return f"{self.section}/{self.policy}/{self.subject}"


@dataclass(frozen=True)
class Cell:
    """The cases of one target in one row (every adapter, bind and connect)."""

    cases: tuple[Case, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        tally = Counter(c.state for c in self.cases)
        return {s: tally.get(s, 0) for s in STATES}

    @property
    def state(self) -> str:
        """The most telling state present: fail, pass, unsupported, skip; ``none`` if empty."""
        counts = self.counts
        return next((s for s in ("fail", "pass", "unsupported", "skip") if counts[s]), "none")

    @property
    def failures(self) -> list[Case]:
        return sorted((c for c in self.cases if c.status == "fail"), key=_case_order)

    @property
    def words(self) -> str:
        """What went wrong in the failures, most severe first: ``saw ok, environ``."""
        problems = sorted(
            (p for c in self.failures for p in c.problems),
            key=lambda p: SEVERITIES.index(p.severity),
        )
        return ", ".join(dict.fromkeys(problem_word(p) for p in problems))

    @property
    def main_text(self) -> str:
        counts = self.counts
        if counts["fail"]:
            return f"{counts['fail']}/{counts['pass'] + counts['fail']}"
        if counts["pass"]:
            return str(counts["pass"])
        return {"unsupported": "unsupported", "skip": "skipped"}.get(self.state, "")


@dataclass(frozen=True)
class Table:
    """Rows are (section, policy, subject); columns are targets, in the order given."""

    runs: tuple[TargetRun, ...]
    rows: tuple[Row, ...]
    cells: dict[tuple[int, int], Cell]

    def cell(self, row: int, target: int) -> Cell:
        return self.cells.get((row, target), Cell())

    def sections(self) -> list[tuple[str, list[int]]]:
        out: dict[str, list[int]] = {}
        for ri, row in enumerate(self.rows):
            out.setdefault(row.section, []).append(ri)
        return list(out.items())


@dataclass(frozen=True)
class Comparison:
    runs: tuple[TargetRun, ...]
    targets: tuple[TargetFindings, ...]
    table: Table

    @property
    def diverging(self) -> list[str]:
        return [t.run.name for t in self.targets if t.failures]

    @property
    def refusals_observed(self) -> bool:
        """Whether any run recorded refusal forms (else the reports leave the table out)."""
        return any(t.refusal_forms or t.refusal_form_problems for t in self.targets)


def compare(runs: Sequence[TargetRun]) -> Comparison:
    """Findings and table for ``runs``; names must be distinct (load_targets checks that)."""
    runs = tuple(runs)
    targets = tuple(TargetFindings(r, find(r.results)) for r in runs)
    return Comparison(runs, targets, _table(runs))


def _case_order(case: Case) -> tuple[object, ...]:
    return (value_key("policy", case.policy), *case_sort_key(case))


def _table(runs: tuple[TargetRun, ...]) -> Table:
    primary = primary_server_cert(c for r in runs for c in r.cases)
    grouped: dict[tuple[str, str, str], dict[int, list[Case]]] = {}
    for ti, run in enumerate(runs):
        for case in run.cases:
            if case.server_cert == primary:
                key = (CLIENT_SECTION, case.policy, case.client)
            else:
                key = (SERVER_SECTION, case.policy, case.server_cert)
            grouped.setdefault(key, {}).setdefault(ti, []).append(case)

    def row_order(key: tuple[str, str, str]) -> tuple[object, ...]:
        section, policy, subject = key
        return (
            (CLIENT_SECTION, SERVER_SECTION).index(section),
            value_key("policy", policy),
            value_key(SUBJECT_DIM[section], subject),
        )

    rows: list[Row] = []
    cells: dict[tuple[int, int], Cell] = {}
    previous: tuple[str, str] | None = None
    for ri, key in enumerate(sorted(grouped, key=row_order)):
        section, policy, subject = key
        every = [c for cases in grouped[key].values() for c in cases]
        expected = ordered("outcome", (c.expected for c in every if c.expected != "skipped"))
        first = (section, policy) != previous
        rows.append(Row(section, policy, subject, tuple(expected or ["skipped"]), first))
        previous = (section, policy)
        for ti, cases in grouped[key].items():
            cells[(ri, ti)] = Cell(tuple(sorted(cases, key=_case_order)))
    return Table(runs, tuple(rows), cells)


def load_targets(paths: Iterable[str | os.PathLike[str]]) -> list[TargetRun]:
    """Load one results file per target; ReportError if a target name comes twice.

    A file is named by its ``run.column`` (the compat run's version axis: ``gunicorn@23.0.0``,
    ``reference-py3.10``), else its ``run.target``, else the file (``gunicorn.json`` ->
    gunicorn).
    """
    runs: list[TargetRun] = []
    seen: dict[str, str] = {}
    for path in paths:
        name = os.fspath(path)
        results = load_results(name)
        column = results.run.extra.get("column")
        target = (column if isinstance(column, str) and column else None) or (
            results.run.target or Path(name).stem
        )
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
