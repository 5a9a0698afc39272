"""Small text helpers shared by the HTML and Markdown renderers, so both say the same thing."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from .model import Case, Results, RunInfo
from .order import DASH, STATUS_SYMBOL, STATUSES


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def alive(value: bool | None) -> str:
    """server_alive is only probed after a non-ok outcome; null means nobody asked."""
    if value is None:
        return "not probed"
    return "yes" if value else "NO (server died or stalled)"


def cell_text(case: Case) -> str:
    """What a grid cell says, e.g. a tick and ``ok``; a skip says ``skip`` whatever was recorded."""
    if case.status == "skip":
        return f"{STATUS_SYMBOL['skip']} skip"
    return f"{STATUS_SYMBOL.get(case.status, '?')} {case.outcome}"


def totals(results: Results) -> str:
    counts = results.counts
    parts = [f"{STATUS_SYMBOL[s]} {counts[s]} {s}" for s in STATUSES]
    return f"{len(results.cases)} cases: " + " · ".join(parts)


def value(obj: Any) -> str:
    """Any JSON value from the run block as one readable line."""
    if obj is None:
        return DASH
    if isinstance(obj, bool):
        return "yes" if obj else "no"
    if isinstance(obj, str):
        return obj
    if isinstance(obj, list):
        return ", ".join(value(v) for v in obj) if obj else "(none)"
    if isinstance(obj, dict):
        return "; ".join(f"{k} → {value(v)}" for k, v in obj.items()) or "(none)"
    return json.dumps(obj)


def title(run: RunInfo) -> str:
    target = run.target or "unknown target"
    return f"mTLS matrix: {target}" + (f" ({run.profile})" if run.profile else "")


def truncate(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when(started: str | None) -> str:
    """A start time to the minute: the runner writes microseconds nobody compares by eye."""
    if not started:
        return "unknown"
    try:
        moment = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return started
    if moment.utcoffset() is not None:
        return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M")
