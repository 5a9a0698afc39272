"""What a results file holds once it has been checked: plain frozen records.

Renderers and the diff work only on these, never on raw JSON, so that every shape problem is
reported once, at load time, as a one-line ``ReportError`` instead of as a traceback deep inside
a renderer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .order import DIMENSIONS, STATUSES, case_sort_key

SCHEMA_VERSION = 1


class ReportError(Exception):
    """Bad input or an unwritable output. The message is one line, meant for the user."""


@dataclass(frozen=True)
class Case:
    """One row of the matrix: the six dimensions, what was expected and what happened."""

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
    detail: str = ""
    duration_ms: float | None = None
    server_alive: bool | None = None

    def dim(self, name: str) -> str:
        """Look a dimension up by name, so grids and filters can be driven by DIMENSIONS."""
        if name not in DIMENSIONS:
            raise KeyError(name)
        return str(getattr(self, name))

    @property
    def outcome(self) -> str:
        """The observed outcome as a word; a skipped case may have recorded none."""
        return self.observed if self.observed is not None else "skipped"


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
    def failures(self) -> list[Case]:
        """Failed cases grouped by dimension rather than in file order, which xdist shuffles."""
        return sorted((c for c in self.cases if c.status == "fail"), key=case_sort_key)

    def by_id(self) -> dict[str, Case]:
        return {c.id: c for c in self.cases}
