"""What a results file holds once it has been checked: plain frozen records.

Renderers and the diff work only on these, never on raw JSON, so that every shape problem is
reported once, at load time, as a one-line ``ReportError`` instead of as a traceback deep inside
a renderer. Nothing here (or anywhere in reports/) reads the runner's ``detail`` text: verdicts
come from the fields of results.json schema 2 (docs/reports.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from matrix.problems import SEVERITIES, Problem

from .order import DIMENSIONS, STATUSES, case_sort_key

SCHEMA_VERSION = 2
STATES = ("pass", "fail", "unsupported", "skip")


class ReportError(Exception):
    """Bad input or an unwritable output. The message is one line, meant for the user."""


@dataclass(frozen=True)
class Case:
    """One case: its dimensions, what the oracle expected, what the client saw, the verdict.

    ``expected`` and ``observed`` are the outcomes as words; ``expectation`` and
    ``observation`` keep every field of the oracle's Expectation and the client's Attempt
    (reason, cause, TLS version, refusal stage, form and alert, as far as the runner wrote
    them). ``extra_dims`` holds dimensions beyond the standard six (e.g. ``tls``).
    """

    id: str
    adapter: str
    policy: str
    bind: str
    connect: str
    client: str
    server_cert: str
    expected: str
    observed: str | None
    status: str
    reason: str = ""
    problems: tuple[Problem, ...] = ()
    unsupported: str = ""
    server_alive: bool | None = None
    duration_ms: float | None = None
    expectation: Mapping[str, Any] = field(default_factory=dict)
    observation: Mapping[str, Any] = field(default_factory=dict)
    extra_dims: Mapping[str, str] = field(default_factory=dict)

    def dim(self, name: str) -> str:
        """Look a dimension up by name, so grids and filters can be driven by data; a
        dimension this case does not carry (another case's ``tls``) is ``""``."""
        if name in DIMENSIONS:
            return str(getattr(self, name))
        return self.extra_dims.get(name, "")

    @property
    def outcome(self) -> str:
        """The observed outcome as a word; ``skipped``, or ``not run`` for a failing case
        whose server never started (or whose attempt the harness lost), when none."""
        if self.observed is not None:
            return self.observed
        return "skipped" if self.status == "skip" else "not run"

    @property
    def state(self) -> str:
        """pass, fail, unsupported (the target cannot express this configuration) or skip."""
        return "unsupported" if self.status == "skip" and self.unsupported else self.status

    @property
    def severity(self) -> str | None:
        """The most severe of the case's problems (SPEC section 6), None without problems."""
        ranks = [SEVERITIES.index(p.severity) for p in self.problems]
        return SEVERITIES[min(ranks)] if ranks else None


@dataclass(frozen=True)
class RunInfo:
    """The ``run`` block. Every field is optional so that a partial run still renders."""

    started: str | None = None
    duration_s: float | None = None
    target: str | None = None
    profile: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    platform: str | None = None
    resolver: dict[str, Any] = field(default_factory=dict)
    certificates: dict[str, str] = field(default_factory=dict)
    provides: dict[str, Any] = field(default_factory=dict)
    resilience: Any = None
    # SPEC section 10: a run stopped early says so. ``complete`` is None in files written
    # before the field existed (taken as complete); ``cases_total`` is how many cases the
    # run had selected; ``interrupted_by`` the signal ("SIGINT", "SIGTERM") or "stopped".
    complete: bool | None = None
    interrupted_by: str | None = None
    cases_total: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Results:
    schema: int
    run: RunInfo
    cases: tuple[Case, ...]
    source: str = "<memory>"

    @property
    def counts(self) -> dict[str, int]:
        """pass/fail/skip totals, always with all three keys so headers never miss one."""
        tally = Counter(c.status for c in self.cases)
        return {s: tally.get(s, 0) for s in STATUSES}

    @property
    def states(self) -> dict[str, int]:
        """pass/fail/unsupported/skip totals, always with all four keys."""
        tally = Counter(c.state for c in self.cases)
        return {s: tally.get(s, 0) for s in STATES}

    @property
    def severities(self) -> dict[str, int]:
        """Failing cases by their most severe problem, most severe first."""
        tally = Counter(c.severity for c in self.cases if c.status == "fail")
        return {s: tally.get(s, 0) for s in SEVERITIES}

    @property
    def failures(self) -> list[Case]:
        """Failed cases grouped by dimension rather than in file order, which xdist shuffles."""
        return sorted((c for c in self.cases if c.status == "fail"), key=case_sort_key)

    @property
    def extra_dims(self) -> list[str]:
        """Dimensions beyond the standard six that some case carries, in first-seen order."""
        return list(dict.fromkeys(d for c in self.cases for d in c.extra_dims))

    @property
    def incomplete(self) -> str | None:
        """The banner every report shows for a run that did not finish, else None:
        ``incomplete run: 12 of 460 cases, interrupted by SIGINT``."""
        if self.run.complete is not False:
            return None
        total = self.run.cases_total if self.run.cases_total is not None else len(self.cases)
        why = f", interrupted by {self.run.interrupted_by}" if self.run.interrupted_by else ""
        return f"incomplete run: {len(self.cases)} of {total} cases{why}"

    def by_id(self) -> dict[str, Case]:
        return {c.id: c for c in self.cases}
