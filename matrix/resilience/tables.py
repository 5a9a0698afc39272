"""The battery's table on stdout: one row per kind x attacker count."""

from __future__ import annotations

from typing import Any

from harness import hostile

WIDTH = max(len(name) for name in hostile.KINDS)  # the kind column fits every kind's name

HEADER = (
    f"{'kind':{WIDTH}} {'N':>3} {'added ms':>9} {'max ms':>8} {'stall':>10} {'bound s':>8} "
    f"{'fail':>4} {'tb':>3} {'rst':>3} {'alive':>5}"
)


def format_row(entry: dict[str, Any]) -> str:
    during = entry["during"]
    added = "-" if entry["added_ms"] is None else f"{round(entry['added_ms']):+d}"  # no "-0"
    longest = "-" if during["max_ms"] is None else f"{during['max_ms']:.0f}"
    bound = "-" if entry["bound_s"] is None else f"{entry['bound_s']:.2f}"
    stall = entry["stall"] + ("*" if entry.get("inferred") else "")
    return (
        f"{entry['kind']:{WIDTH}} {entry['attackers']:3} {added:>9} {longest:>8} {stall:>10} "
        f"{bound:>8} {during['failed']:4} {entry['tracebacks']:3} {entry['restarts']:3} "
        f"{'yes' if entry['alive'] else 'NO':>5}"
    )


def format_table(name: str, adapter: str, measured: dict[str, Any]) -> str:
    alone = measured["good_alone"]
    workers = f", {measured['workers']} workers" if measured["workers"] else ""  # undeclared
    lines = [
        f"{name} ({adapter}, {measured['policy']}{workers}): good "
        f"client alone median {alone['median_ms']:.1f} ms, max {alone['max_ms']:.1f} ms; "
        f"probe {measured['probe_s']:g} s, cap {measured['cap_s']:g} s",
        HEADER,
        *(format_row(e) for e in measured["kinds"]),
    ]
    if any(e.get("inferred") for e in measured["kinds"]):
        lines.append("* unbounded with fewer attackers of the same kind; not run again")
    return "\n".join(lines)
