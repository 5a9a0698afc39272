"""``run.resilience`` (version 1, written by ``python -m matrix.resilience``) as table rows.

The block is read leniently: results without one render without the table, and a block of
another shape is named in one line instead of stopping the report. The older
``run.resilience.idle_client`` (matrix.stall) is not rendered; the battery replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .order import DASH


@dataclass(frozen=True)
class Row:
    adapter: str
    kind: str
    alone: str
    during: str
    after: str
    added: str
    stall: str
    alive: str
    verdict: str  # pass | fail: an unbounded stall, a dead server or tracebacks


@dataclass(frozen=True)
class Resilience:
    command: str = ""
    rows: tuple[Row, ...] = ()
    problem: str = ""  # why there are no rows, when the block is there but unusable

    @property
    def failing(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "fail"]


def read(raw: Any) -> Resilience | None:
    """The rows of ``run.resilience``; None when the run has no (version 1) block."""
    if not isinstance(raw, dict) or ("version" not in raw and "adapters" not in raw):
        return None
    adapters = raw.get("adapters")
    if raw.get("version") != 1 or not isinstance(adapters, dict):
        return Resilience(problem=f"run.resilience version {raw.get('version')!r} not readable")
    rows = []
    for adapter, block in adapters.items():
        if not isinstance(block, dict):
            continue
        workers = block.get("workers")
        label = f"{adapter} ({workers} workers)" if isinstance(workers, int) else str(adapter)
        alone = _ms(_get(block, "good_alone", "median_ms"))
        for kind in block.get("kinds") or ():
            if isinstance(kind, dict):
                rows.append(_row(label, alone, kind))
    return Resilience(str(raw.get("command") or ""), tuple(rows))


def _row(adapter: str, alone: str, kind: dict[str, Any]) -> Row:
    stall = str(kind.get("stall") or DASH)
    if stall == "bounded" and _number(kind.get("bound_s")) is not None:
        stall += f" ({kind['bound_s']:g} s)"
    alive = kind.get("alive")
    notes = [f"{kind[k]} {k}" for k in ("tracebacks", "restarts") if _number(kind.get(k))]
    alive_text = {True: "yes", False: "NO"}.get(alive, DASH) if isinstance(alive, bool) else DASH
    bad = (
        kind.get("stall") == "unbounded" or alive is False or bool(_number(kind.get("tracebacks")))
    )
    name, attackers = str(kind.get("kind", "?")), kind.get("attackers")
    return Row(
        adapter,
        f"{name} \u00d7{attackers}" if attackers is not None else name,
        alone,
        _phase(kind.get("during")),
        _phase(kind.get("after")),
        _ms(kind.get("added_ms"), sign=True),
        stall,
        ", ".join([alive_text, *notes]),
        "fail" if bad else "pass",
    )


def _phase(raw: Any) -> str:
    if not isinstance(raw, dict):
        return DASH
    text = f"{_ms(raw.get('median_ms'))} / {_ms(raw.get('max_ms'))}"
    failed = _number(raw.get("failed"))
    return text + (f", {failed:g} failed" if failed else "")


def _get(raw: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        raw = raw.get(key) if isinstance(raw, dict) else None
    return raw


def _number(value: Any) -> float | None:
    return None if isinstance(value, bool) or not isinstance(value, int | float) else value


def _ms(value: Any, sign: bool = False) -> str:
    """Milliseconds as people read them: one decimal under 10 ms, whole numbers above."""
    ms = _number(value)
    if ms is None:
        return DASH
    digits = 1 if abs(ms) < 10 else 0
    ms = round(ms, digits) + 0.0  # -0.0 (and -0.04, shown as 0.0) has no sign to show
    return f"{ms:{'+' if sign else ''}.{digits}f} ms"
