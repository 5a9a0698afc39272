"""The connection-state profile (``--profile state``, SPEC section 9): what one handshake
on a fresh server cannot show.

A grid plugs in as a ``StateGrid`` (docs/state.md, "Adding a grid"): its cases as data
(``cases(adapters)`` returning ``StateCase`` records, model.py), an oracle (``predict``:
a pure function of the case and the recorded facts, returning a ``StateExpectation``),
a runner (``run``: the case and the matrix env to a ``CaseResult``; ``run_steps`` plays
any case's steps and suits most grids), and the dimensions it holds fixed with the
reason (``held``). ``GRIDS`` lists them in run order; ``cases`` and ``run_case`` are all
the pytest plugin needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..runner import CaseResult, MatrixEnv
from . import grids, oracle, perpath, request, run
from .model import PROFILE, HostPolicy, ServerState, StateCase, Step
from .runner import run_state_case


def run_steps(case: StateCase, env: MatrixEnv) -> CaseResult:
    """The default runner: every step played and judged against ``oracle.predict``."""
    return run_state_case(case, env, oracle.predict)


@dataclass(frozen=True)
class StateGrid:
    name: str
    question: str  # one line: what the grid asks (docs/state.md)
    cases: Callable[[tuple[str, ...]], list[StateCase]]
    predict: Callable[[StateCase, Any], oracle.StateExpectation] = oracle.predict
    run: Callable[[StateCase, MatrixEnv], CaseResult] = run_steps
    held: tuple[tuple[str, str], ...] = ()


GRIDS: dict[str, StateGrid] = {
    "sni": StateGrid(
        "sni",
        "is a client verified under the policy and client CA of the name it sent?",
        grids.sni_cases,
        held=grids.SNI_HELD,
    ),
    "resumption": StateGrid(
        "resumption",
        "does a session carried to another configuration admit a client a fresh "
        "handshake would refuse?",
        grids.resumption_cases,
        held=grids.RESUMPTION_HELD,
    ),
    "per-path": StateGrid(
        "per-path",
        "is /secure/ served only to a client verified after the handshake, and one that "
        "cannot answer refused as Apache refuses it?",
        perpath.state_cases,
        run=run.run_perpath_case,
        held=perpath.HELD,
    ),
    "request": StateGrid(
        "request",
        "can a request (forwarded headers, an absolute-form target, a Host) change "
        "HTTPS, the scheme, REMOTE_ADDR or an SSL_* variable?",
        request.state_cases,
        run=run.run_request_case,
        held=request.HELD,
    ),
}


def cases(adapters: tuple[str, ...]) -> list[StateCase]:
    """Every state case for a target's adapters, grid by grid, then grouped by first
    server so that cases sharing a server run together."""
    every = [c for g in GRIDS.values() for c in g.cases(tuple(adapters))]
    first: dict[tuple[str, ServerState], int] = {}
    return sorted(every, key=lambda c: first.setdefault((c.grid, c.servers[0]), len(first)))


def run_case(case: StateCase, env: MatrixEnv) -> CaseResult:
    """Run ``case`` with its grid's runner and oracle."""
    grid = GRIDS[case.grid]
    if grid.run is run_steps and grid.predict is not oracle.predict:
        return run_state_case(case, env, grid.predict)
    return grid.run(case, env)


def describe(adapters: tuple[str, ...] = ("builtin", "pyopenssl")) -> str:
    """The grids, their sizes and held-fixed reasons, as text for people."""
    lines = []
    total = 0
    for grid in GRIDS.values():
        n = len(grid.cases(adapters))
        total += n
        lines.append(f"{grid.name}: {n} cases: {grid.question}")
        lines += [f"  held {dim}: {why}" for dim, why in grid.held]
    lines.append(f"{PROFILE}: {total} cases")
    return "\n".join(lines)


__all__ = [
    "GRIDS",
    "PROFILE",
    "HostPolicy",
    "ServerState",
    "StateCase",
    "StateGrid",
    "Step",
    "cases",
    "describe",
    "run_case",
    "run_steps",
]
