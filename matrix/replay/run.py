"""Replay one corpus entry on one release, and judge what it showed against the entry.

The run itself is the compat run's (``harness.targets.compat.run_target`` and
``battery_step`` in a cached environment holding the release), so a replay exercises the
same code as any compat column; only the judgement is the corpus's.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.targets import compat
from harness.targets.columns import Column
from harness.targets.environments import EnvironmentError_, Pin, ensure

from .corpus import Entry

AFFECTED, FIXED = "affected", "fixed"


@dataclass(frozen=True)
class Verdict:
    """What one release showed: ``ok`` when it did what the entry says it must."""

    entry: str
    role: str  # affected | fixed
    release: str
    ok: bool
    observed: str  # one line: "fails as stated: ...", "passes", "could not run: ..."

    def to_json(self) -> dict[str, Any]:
        return {
            "entry": self.entry,
            "role": self.role,
            "release": self.release,
            "ok": self.ok,
            "observed": self.observed,
        }


def replay(entry: Entry, role: str, out: Path, cache: Path | None, timeout: float) -> Verdict:
    release = entry.affected if role == AFFECTED else entry.fixed
    column = Column(entry.target, None, (Pin(entry.package, release),))

    def verdict(ok: bool, observed: str) -> Verdict:
        return Verdict(entry.id, role, release, ok, observed)

    try:
        python = str(ensure(Path(sys.executable), list(column.pins), cache))
    except EnvironmentError_ as exc:
        return verdict(False, f"could not run: {exc}")
    out.mkdir(parents=True, exist_ok=True)
    results = (out / f"{column.label}.json").resolve()
    if entry.cases:
        pytest_args = [arg for case in entry.cases for arg in ("--case", case)]
        if entry.profile != "standard":
            pytest_args += ["--profile", entry.profile]
        outcome = compat.run_target(column, out, pytest_args, timeout, python)
        if outcome.results is None:
            return verdict(False, f"could not run: {outcome.reason}")
    else:
        results.unlink(missing_ok=True)
        outcome = compat.Outcome(column.label, compat.RAN, "", results, server=entry.target)
    if entry.battery:
        compat.battery_step(
            outcome,
            compat.certs_dir([]),
            compat.BATTERY_TIMEOUT,
            ",".join(entry.battery),
            python,
            compat.column_env(column),
        )
        if outcome.status != compat.RAN:
            return verdict(False, f"could not run: {outcome.reason}")
    try:
        data = json.loads(results.read_text())
    except (OSError, ValueError) as exc:
        return verdict(False, f"could not run: no results ({exc})")
    shown = showing(entry, data)
    if role == AFFECTED:
        return verdict(bool(shown), f"fails as stated: {shown}" if shown else clean(entry, data))
    return verdict(clean_ok(entry, data), clean(entry, data, shown))


STALL_RANK = {"none": 0, "bounded": 1, "unbounded": 2, "dead": 3}


def showing(entry: Entry, data: dict[str, Any]) -> str:
    """What in ``data`` shows the bug as the entry states it ("" when nothing does).

    A case shows it with a problem of the stated kind (severity and ``what`` too, when
    given), or by being unsupported for ``"kind": "unsupported"``; a battery kind shows
    it by a stall at least as bad as the stated one (``any``: any stall) or, for
    ``"tracebacks"``, by a traceback.
    """
    kind, severity, what = (entry.shows.get(k) for k in ("kind", "severity", "what"))
    for case in data.get("cases", []):
        if case.get("id") not in entry.cases:
            continue
        if kind == "unsupported" and case.get("unsupported"):
            return f"{case['id']}: unsupported ({case['unsupported']})"
        for problem in case.get("problems", []):
            if (
                problem.get("kind") == kind
                and severity in (None, problem.get("severity"))
                and what in (None, problem.get("what"))
            ):
                said = f"{problem.get('what')}: {problem.get('observed')}"
                return f"{case['id']}: {problem.get('severity')} {kind} ({said})"
    stated = entry.shows.get("stall")
    floor = 1 if stated == "any" else STALL_RANK.get(stated or "", 99)
    for name, block in _battery_entries(data):
        if block.get("kind") not in entry.battery:
            continue
        where = f"battery {block['kind']} x{block.get('attackers')} on {name}"
        if STALL_RANK.get(_stalled(block), 0) >= floor:
            return f"{where}: {_stalled(block)}"
        if entry.shows.get("tracebacks") and block.get("tracebacks"):
            return f"{where}: {block['tracebacks']} tracebacks"
    return ""


def clean_ok(entry: Entry, data: dict[str, Any]) -> bool:
    """Whether the release ran everything the entry lists (cases not skipped, battery kinds
    measured) without showing the bug; findings the entry is not about do not count."""
    cases = {c.get("id"): c for c in data.get("cases", [])}
    if any(cases.get(case, {}).get("status") not in ("pass", "fail") for case in entry.cases):
        return False
    listed = [b for _, b in _battery_entries(data) if b.get("kind") in entry.battery]
    if entry.battery and not listed:
        return False
    return not showing(entry, data)


def clean(entry: Entry, data: dict[str, Any], shown: str = "") -> str:
    """One line for a release that does not show the bug: passes, or why it cannot tell."""
    if shown:
        return f"still fails: {shown}"
    if clean_ok(entry, data):
        others = [c for c in data.get("cases", []) if c.get("id") in entry.cases]
        extra = sum(c.get("status") == "fail" for c in others)
        return "passes" + (f" (other findings in {extra} case(s))" if extra else "")
    cases = {c.get("id"): c for c in data.get("cases", [])}
    for case in entry.cases:
        found = cases.get(case)
        if found is None:
            return f"{case}: not run"
        if found.get("status") not in ("pass", "fail"):
            return f"{case}: {found.get('status')}: {found.get('detail')}"
    return "battery kinds not measured"


def _battery_entries(data: dict[str, Any]):
    adapters = ((data.get("run") or {}).get("resilience") or {}).get("adapters") or {}
    for name, block in adapters.items():
        for kind in block.get("kinds", []):
            yield name, kind


def _stalled(block: dict[str, Any]) -> str:
    return "dead" if block.get("alive") is False else str(block.get("stall"))
