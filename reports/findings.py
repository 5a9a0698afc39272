"""Failures grouped by cause: the one model behind matrix.html, compat.html and the Markdown.

A finding is every problem of one kind, severity and subject (``what``: the variable for
environ problems, ``expected->observed`` for outcomes), across the cases it occurs in, with
the dimension values those cases span. Problems that occur in exactly the same cases are one
finding naming several subjects, so a server that hides the client certificate from the
application shows one environ finding, not one per variable. Everything is read from the
problems' fields (matrix.problems.Problem), never from the runner's ``detail`` text.

Cases a target cannot express (``unsupported``) are findings of their own kind, without a
severity: shown, never counted as failures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from matrix.problems import ENVIRON, KINDS, OUTCOME, SEVERITIES, START, SURVIVAL, Problem

from .model import Case, Results
from .order import DIMENSIONS, case_sort_key, ordered

UNSUPPORTED = "unsupported"
WORDS = {START: "no start", SURVIVAL: "server died", ENVIRON: "environ"}


@dataclass(frozen=True)
class Finding:
    """One cause: ``kind``/``severity``/``whats`` and the cases it spans.

    ``shape`` refines the cause from field values (environ: ``missing``, ``present but
    should not be`` or ``differs``; survival and start: what was observed). ``pairs`` are
    the distinct (expected, observed) values, as short text, at most three.
    """

    key: str
    kind: str
    severity: str | None
    whats: tuple[str, ...]
    shape: str
    pairs: tuple[tuple[str, str], ...]
    cases: tuple[Case, ...]
    spans: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def text(self) -> str:
        names = ", ".join(self.whats)
        pair = "; ".join(f"expected {e}, observed {o}" for e, o in self.pairs)
        if self.kind == UNSUPPORTED:
            return names
        if self.kind == OUTCOME:
            return pair
        if self.kind == ENVIRON:
            more = f" ({pair})" if self.shape == "differs" and len(self.pairs) == 1 else ""
            return f"environ {names}: {self.shape}{more}"
        if self.kind == SURVIVAL:
            return f"server not serving afterwards: a good client got {self.shape}"
        if self.kind == START:
            return f"server could not start: {self.shape}"
        return f"{self.kind} {names}: {pair}"

    @property
    def scope(self) -> str:
        """Where it applies: each dimension narrower than what ran, ``client: a, b``."""
        return "; ".join(f"{d.replace('_', ' ')}: {', '.join(v)}" for d, v in self.spans)

    @property
    def count_text(self) -> str:
        n = len(self.cases)
        return f"{n} case" if n == 1 else f"{n} cases"

    @property
    def line(self) -> str:
        label = self.severity or UNSUPPORTED
        return " · ".join(p for p in (label, self.text, self.scope) if p) + f" ({self.count_text})"


def heading_count(findings: Sequence[Finding]) -> str:
    """What a "Findings (...)" heading counts: every entry listed under it. Failing causes
    alone when there is nothing else (``4``); otherwise both kinds, so that a heading never
    counts fewer entries than it lists (``3 failing, 1 unsupported``)."""
    failing = sum(1 for f in findings if f.severity)
    unsupported = len(findings) - failing
    return f"{failing} failing, {unsupported} unsupported" if unsupported else str(failing)


def problem_word(problem: Problem) -> str:
    """A grid cell's few words about one problem: ``saw ok``, ``environ``, ``server died``."""
    if problem.kind == OUTCOME:
        return f"saw {short(problem.observed)}"
    return WORDS.get(problem.kind, problem.kind)


def problem_line(p: Problem) -> str:
    """``security · outcome rejected->ok: expected rejected, observed ok``."""
    values = f"expected {short(p.expected)}, observed {short(p.observed)}"
    return f"{p.severity} · {p.kind} {p.what}: {values}"


def short(value: Any, limit: int = 60) -> str:
    """A field value as display text: strings bare, None as ``absent``, lists joined."""
    if value is None:
        text = "absent"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, list | tuple):
        text = " or ".join(short(v, limit) for v in value)
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shape(problem: Problem) -> str:
    if problem.kind == ENVIRON:
        if problem.observed is None:
            return "missing"
        return "present but should not be" if problem.expected is None else "differs"
    return short(problem.observed) if problem.kind in (SURVIVAL, START) else ""


def find(results: Results) -> tuple[Finding, ...]:
    """Failures by cause, most severe first, then unsupported configurations by reason."""
    cases = sorted(results.cases, key=case_sort_key)
    dims = [*DIMENSIONS, *results.extra_dims]
    ran = [c for c in cases if c.state in ("pass", "fail")]
    groups: dict[tuple[str, str, str, str], dict[str, tuple[Case, list[Problem]]]] = {}
    for case in cases:
        for p in case.problems if case.status == "fail" else ():
            group = groups.setdefault((p.kind, p.severity, p.what, _shape(p)), {})
            group.setdefault(case.id, (case, []))[1].append(p)
    merged: dict[tuple[object, ...], list[tuple[str, dict[str, tuple[Case, list[Problem]]]]]] = {}
    for (kind, severity, what, shape), group in groups.items():
        merged.setdefault((kind, severity, shape, frozenset(group)), []).append((what, group))
    out = []
    for (kind, severity, shape, _), parts in merged.items():
        whats = tuple(sorted(w for w, _ in parts))
        group = parts[0][1]
        problems = [p for _, g in parts for _, ps in g.values() for p in ps]
        pairs = tuple(dict.fromkeys((short(p.expected), short(p.observed)) for p in problems))
        found = tuple(c for c, _ in group.values())
        out.append(
            Finding("", kind, severity, whats, shape, pairs[:3], found, _spans(found, ran, dims))
        )
    out.sort(
        key=lambda f: (
            SEVERITIES.index(f.severity or SEVERITIES[-1]),
            KINDS.index(f.kind),
            -len(f.cases),
            f.whats,
            f.shape,
        )
    )
    by_reason: dict[str, list[Case]] = {}
    for case in cases:
        if case.state == UNSUPPORTED:
            by_reason.setdefault(case.unsupported, []).append(case)
    for reason, group_cases in by_reason.items():
        spans = _spans(group_cases, [c for c in cases if c.state != "skip"], dims)
        out.append(Finding("", UNSUPPORTED, None, (reason,), "", (), tuple(group_cases), spans))
    return tuple(replace(f, key=f"f{i}") for i, f in enumerate(out, 1))


def _spans(
    cases: Sequence[Case], population: Iterable[Case], dims: Sequence[str]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Per dimension, the values ``cases`` span when narrower than the population's."""
    everywhere = {d: {v for c in population if (v := c.dim(d))} for d in dims}
    spans = ((d, ordered(d, (v for c in cases if (v := c.dim(d))))) for d in dims)
    # A dimension these cases do not carry at all (another grid's) is no narrowing.
    return tuple((d, tuple(v)) for d, v in spans if v and set(v) != everywhere[d])
