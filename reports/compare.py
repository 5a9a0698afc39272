"""Comparing two runs by case id, for "did this change break anything?" in CI.

Verdicts are compared, never samples (SPEC section 10): a case is unchanged when its
status and its problems' kinds, severities and subjects are (``verdict``). What the
client saw on the way (the observation, a racing refusal's distribution over its
attempts, timings, log counts) may differ between two runs of an unchanged server and
is not compared.

Only a case that passed before and fails now is a regression (exit status 1). A case that
was skipped and now fails is listed with the new failures but does not fail the comparison:
it most likely means the case could not run on the old host, which is not something this
change broke.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Case, Results
from .order import STATUS_SYMBOL, case_sort_key


@dataclass(frozen=True)
class Change:
    id: str
    old: Case | None
    new: Case | None

    @property
    def regression(self) -> bool:
        return (
            self.old is not None
            and self.new is not None
            and self.old.status == "pass"
            and self.new.status == "fail"
        )


@dataclass(frozen=True)
class Diff:
    new_failures: tuple[Change, ...]
    fixes: tuple[Change, ...]
    other: tuple[Change, ...]
    added: tuple[Change, ...]
    removed: tuple[Change, ...]
    unchanged: int

    @property
    def regressed(self) -> bool:
        """True when some case passed in the old run and fails in the new one."""
        return any(c.regression for c in self.new_failures)

    @property
    def empty(self) -> bool:
        return not (self.new_failures or self.fixes or self.other or self.added or self.removed)


def diff(old: Results, new: Results) -> Diff:
    """Cases whose verdict changed, plus cases only one run has."""
    old_cases, new_cases = old.by_id(), new.by_id()
    new_failures: list[Change] = []
    fixes: list[Change] = []
    other: list[Change] = []
    removed: list[Change] = []
    unchanged = 0
    for case_id, before in old_cases.items():
        after = new_cases.get(case_id)
        if after is None:
            removed.append(Change(case_id, before, None))
        elif verdict(before) == verdict(after):
            unchanged += 1
        elif after.status == "fail" and before.status != "fail":
            new_failures.append(Change(case_id, before, after))
        elif before.status == "fail" and after.status != "fail":
            fixes.append(Change(case_id, before, after))
        else:
            other.append(Change(case_id, before, after))
    added = [Change(i, None, c) for i, c in new_cases.items() if i not in old_cases]

    def ordered(changes: list[Change]) -> tuple[Change, ...]:
        return tuple(sorted(changes, key=_order_key))

    return Diff(
        ordered(new_failures),
        ordered(fixes),
        ordered(other),
        ordered(added),
        ordered(removed),
        unchanged,
    )


def verdict(case: Case) -> tuple[str, tuple[tuple[str, str, str], ...]]:
    """What a comparison compares: the status and the problems' (kind, severity, what)."""
    return case.status, tuple(sorted({(p.kind, p.severity, p.what) for p in case.problems}))


def _order_key(change: Change) -> tuple[object, ...]:
    """Regressions before skip-to-fail, then grid reading order."""
    case = change.new if change.new is not None else change.old
    assert case is not None
    return (not change.regression, *case_sort_key(case))


def _state(case: Case | None) -> str:
    if case is None:
        return "absent"
    return f"{STATUS_SYMBOL.get(case.status, '?')} {case.status} ({case.outcome})"


def format_diff(result: Diff, old_name: str = "OLD", new_name: str = "NEW") -> str:
    """Plain text for a terminal or CI log, most important section first."""
    lines = [f"comparing {old_name} -> {new_name}"]
    sections = [
        ("new failures", result.new_failures),
        ("fixed", result.fixes),
        ("other changes", result.other),
        ("added", result.added),
        ("removed", result.removed),
    ]
    for title, changes in sections:
        if not changes:
            continue
        lines.append("")
        lines.append(f"{title} ({len(changes)}):")
        for change in changes:
            if change.old is None:
                line = f"  {change.id}: {_state(change.new)}"
            elif change.new is None:
                line = f"  {change.id}: was {_state(change.old)}"
            else:
                line = f"  {change.id}: {_state(change.old)} -> {_state(change.new)}"
            if change.regression:
                line += "  REGRESSION"
            if change.new is not None and change.new.status == "fail":
                line += f"\n      expected {change.new.expected}: {change.new.reason or '-'}"
            lines.append(line)
    lines.append("")
    if result.empty:
        lines.append(f"no changes ({result.unchanged} cases identical)")
    else:
        counts = ", ".join(f"{len(c)} {t}" for t, c in sections)
        verdict = "REGRESSED" if result.regressed else "no regressions"
        lines.append(f"{verdict}: {counts}, {result.unchanged} unchanged")
    return "\n".join(lines)
