"""Figures as people read them in the battery's table and the reports (issue 18's cosmetics):
no "+-0.0 ms", no "workers ?" for a target that does not declare ``workers``."""

from __future__ import annotations

import pytest

from matrix.resilience import format_table
from reports import resilience


def block(added_ms: float | None, workers: int | None = 4) -> dict:
    kind = {
        "kind": "stall-handshake",
        "attackers": 1,
        "during": {"n": 3, "median_ms": 2.0, "max_ms": 3.0, "failed": 0},
        "after": {"n": 3, "median_ms": 2.0, "max_ms": 3.0, "failed": 0},
        "added_ms": added_ms,
        "stall": "bounded",
        "bound_s": 5.0,
        "alive": True,
        "tracebacks": 0,
        "restarts": 0,
    }
    return {
        "policy": "required",
        "workers": workers,
        "probe_s": 2.0,
        "cap_s": 10.0,
        "good_alone": {"n": 5, "median_ms": 1.5, "max_ms": 2.5},
        "kinds": [kind],
    }


@pytest.mark.parametrize(
    "added, shown",
    [(-0.0, "+0.0 ms"), (-0.04, "+0.0 ms"), (0.0, "+0.0 ms"), (3.26, "+3.3 ms"),
     (-3.26, "-3.3 ms"), (12.4, "+12 ms"), (-12.6, "-13 ms")],
)  # fmt: skip
def test_a_change_in_milliseconds_has_one_sign(added, shown):
    rows = resilience.read({"version": 1, "adapters": {"builtin": block(added)}}).rows
    assert rows[0].added == shown


def test_the_battery_table_names_workers_only_when_declared():
    declared = format_table("myserver", "builtin", block(1.0, workers=4)).splitlines()[0]
    assert declared.startswith("myserver (builtin, required, 4 workers): good client alone")
    undeclared = format_table("myserver", "builtin", block(1.0, workers=None)).splitlines()[0]
    assert undeclared.startswith("myserver (builtin, required): good client alone")
    assert "?" not in undeclared


@pytest.mark.parametrize("added, shown", [(-0.0, "+0"), (-0.3, "+0"), (0.6, "+1"), (-7.5, "-8")])
def test_the_battery_row_has_no_negative_zero(added, shown):
    row = format_table("s", "builtin", block(added)).splitlines()[2]
    assert row.split()[2] == shown
