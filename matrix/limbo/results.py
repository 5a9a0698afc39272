"""Scoring against the corpus, the agreement table, and the self-describing results file.

Every result is scored in one *column* — (target, adapter, check) where check
is ``tls1.2`` / ``tls1.3`` (live handshakes), ``host-check-tls1.2|1.3`` (the
server-name cases) or ``store`` (the store check) — as one of:

- ``agree``: the observed outcome is the corpus's expected one;
- ``known-divergence``: it differs, and ``divergences.py`` names why;
- ``disagree``: it differs for no recorded reason — a failure;
- ``not-applicable``: the case does not apply to this check (with the reason);
- ``could-not-present``: the client could not present the certificate;
- ``error``: no verdict (the harness could not connect, a server would not start).

The JSON file (``version`` 1, ``kind`` "mtls-matrix/limbo") carries the counts
per column, the divergences grouped by category, and every case's results, so
a report can render it without reading anything else.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .classify import CATEGORIES
from .corpus import LimboCase
from .divergences import DIVERGENCES, Divergence, known

AGREE, KNOWN, DISAGREE = "agree", "known-divergence", "disagree"
NOT_APPLICABLE, NOT_PRESENTED, ERROR = "not-applicable", "could-not-present", "error"
STATUSES = (AGREE, KNOWN, DISAGREE, NOT_APPLICABLE, NOT_PRESENTED, ERROR)
SCHEMA_VERSION = 1


@dataclass
class Scored:
    case_id: str
    category: str
    expected: str  # "accepted" | "refused"
    observed: str  # accepted | refused | could-not-present | error | not-applicable
    status: str
    reason: str = ""  # why not applicable, or the known divergence's reason
    detail: str = ""  # what the client/server/store said
    server: str | None = None
    form: str | None = None  # the client's view of a refusal: "alert" | "close" | "reset"
    alert: str | None = None  # RFC 8446 alert name (snake_case) when form is "alert"


@dataclass
class Column:
    target: str
    adapter: str
    check: str  # "tls1.2" | "tls1.3" | "host-check-tls1.2" | ... | "store"
    results: list[Scored] = field(default_factory=list)
    used: set[int] = field(default_factory=set)  # indexes of DIVERGENCES that excused something

    @property
    def key(self) -> str:
        return f"{self.target}/{self.adapter}/{self.check}"

    @property
    def kind(self) -> str:
        return "store" if self.check == "store" else "live"

    def add(
        self,
        case: LimboCase,
        category: str,
        observed: str,
        detail: str = "",
        server: str | None = None,
        not_applicable: str | None = None,
        form: str | None = None,
        alert: str | None = None,
    ) -> Scored:
        expected = "accepted" if case.expects_success else "refused"
        reason = ""
        if not_applicable is not None:
            status, observed, reason = NOT_APPLICABLE, NOT_APPLICABLE, not_applicable
        elif observed in (NOT_PRESENTED, ERROR):
            status = observed
        elif observed == expected:
            status = AGREE
        else:
            entry = known(case.id, category, self.target, self.adapter, self.kind, observed)
            if entry is None:
                status = DISAGREE
            else:
                status, reason = KNOWN, entry.reason
                self.used.add(DIVERGENCES.index(entry))
        scored = Scored(
            case.id, category, expected, observed, status, reason, detail, server, form, alert
        )
        self.results.append(scored)
        return scored

    def counts(self) -> dict[str, int]:
        c = Counter(r.status for r in self.results)
        return {s.replace("-", "_"): c.get(s, 0) for s in STATUSES}

    def divergences(self) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in self.results:
            if r.status in (KNOWN, DISAGREE):
                grouped[r.category].append(
                    {
                        "id": r.case_id,
                        "expected": r.expected,
                        "observed": r.observed,
                        "status": r.status,
                        "reason": r.reason,
                        "detail": r.detail,
                    }
                )
        return dict(sorted(grouped.items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "adapter": self.adapter,
            "check": self.check,
            "counts": self.counts(),
            "divergences": self.divergences(),
        }


def table(columns: list[Column]) -> str:
    """The agreement table: one row per column, agree / applicable and every other status."""
    head = (
        "target",
        "adapter",
        "check",
        "agree",
        "known",
        "disagree",
        "n/a",
        "no-present",
        "error",
    )
    rows = [head]
    for col in columns:
        c = col.counts()
        applicable = c["agree"] + c["known_divergence"] + c["disagree"]
        rows.append(
            (
                col.target,
                col.adapter,
                col.check,
                f"{c['agree']}/{applicable}",
                str(c["known_divergence"]),
                str(c["disagree"]),
                str(c["not_applicable"]),
                str(c["could_not_present"]),
                str(c["error"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def unused_divergences(
    columns: list[Column], targets_adapters: set[tuple[str, str]], present: set[str]
) -> list[dict[str, Any]]:
    """Entries for a case (or category) and target of this run that excused nothing in it."""
    used = set().union(*(c.used for c in columns)) if columns else set()
    out = []
    for i, entry in enumerate(DIVERGENCES):
        if i in used or entry.key not in present:
            continue
        applies = any(_applies(entry, t, a) for t, a in targets_adapters)
        if applies:
            out.append({"key": entry.key, "observed": entry.observed, "reason": entry.reason})
    return out


def _applies(entry: Divergence, target: str, adapter: str) -> bool:
    return ("*" in entry.targets or target in entry.targets) and (
        "*" in entry.adapters or adapter in entry.adapters
    )


def document(
    columns: list[Column],
    cases: list[LimboCase],
    plans: dict[str, Any],
    meta: dict[str, Any],
    anomalies: list[dict[str, Any]],
    live_vs_store: list[dict[str, Any]],
    skipped: list[dict[str, str]],
) -> dict[str, Any]:
    """The whole results file as a JSON-ready dict."""
    category_counts = Counter(p.category for p in plans.values())
    per_case: dict[str, dict[str, Any]] = {
        c.id: {
            "id": c.id,
            "category": plans[c.id].category,
            "expected": "accepted" if c.expects_success else "refused",
            "live": plans[c.id].live,
            "host_check": plans[c.id].host_check,
            "why_not_live": plans[c.id].why_not_live,
            "results": {},
        }
        for c in cases
    }
    for col in columns:
        for r in col.results:
            per_case[r.case_id]["results"][col.key] = {
                "observed": r.observed,
                "status": r.status,
                "reason": r.reason,
                "detail": r.detail,
                "server": r.server,
                "form": r.form,
                "alert": r.alert,
            }
    pairs = {(c.target, c.adapter) for c in columns}
    present = {c.id for c in cases} | {f"category:{p.category}" for p in plans.values()}
    return {
        "version": SCHEMA_VERSION,
        "kind": "mtls-matrix/limbo",
        **meta,
        "statuses": list(STATUSES),
        "categories": {
            name: {"action": cat.action, "reason": cat.reason, "cases": category_counts[name]}
            for name, cat in CATEGORIES.items()
        },
        "columns": [c.to_json() for c in columns],
        "skipped": skipped,
        "anomalies": anomalies,
        "live_vs_store": live_vs_store,
        "unused_divergences": unused_divergences(columns, pairs, present),
        "cases": list(per_case.values()),
    }


def write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
