"""Survival after a non-ok outcome (SPEC section 4), proved by the next case where it can be.

SPEC section 4: after any non-ok outcome, a good client is served within one second.
The matrix used to prove it with an explicit probe (a second full handshake) after
every refusal: 208 of the 460 standard cases. When the next case this process runs
uses the same server configuration and the oracle predicts it is admitted, that case's
own first request is made right away, on the same running server, and serves as the
proof; it is kept and becomes that case's first attempt (``Early``), so no handshake
is spent twice. Nothing else changes:

- the bound is the same: the early request must be served within ``SURVIVAL_TIMEOUT``
  seconds of the refusal's end (its attempts' end);
- served later than that, or not at all after more than ``SURVIVAL_TIMEOUT`` (a hang, a
  timeout, a dead server's reset after a delay), the server did not serve a client the
  oracle predicts is served in time: survival fails, as the probe would have failed;
- refused or failed *within* the bound, the early request is that case's own finding
  (a wrong refusal of it), not a proof either way: the explicit probe decides, as before;
- where no predicted admission follows (the configuration's last case, or the next case
  is itself predicted refused), the explicit probe runs as before.

The result records which case proved it (``observed["survival_by"]``: the case id, or
``"probe"``), so a report says where the evidence came from. What the server logs during
the early request is counted in the refusal's case (its window, harness/capture.py), as
the probe's lines were: a refusal's own log line may come after the client saw the
refusal, so the lines cannot be told apart by time, and moving them would misplace it
(measured: 3 of 120 refusals' lines did). A target that logs each served request thus
shows that line on the refusal's case, not on the case whose request it was.

The run's order (``run_order``) makes that proof as common as it can be: within each
server configuration (cases of one configuration still run together, configurations in
the matrix's order), the admitted cases that no refusal needs come first, then each
refusal followed by an admitted case, then the refusals left over (they take the explicit
probe), then the rest (refusals nobody is predicted to be served after, and cases the
oracle predicts never reach the server come first of all). In the standard matrix that
proves 120 of the 208 refusals' survival by the next case instead of 36, and leaves 88
explicit probes: the configurations where refusals outnumber admissions (the +host
policies, 48) and the server-certificate grid, where no client is admitted (40). A server
that breaks after its first refusal breaks the cases from that refusal on, in this order:
results.json lists the cases in the order they ran, so a reader (and
tests/test_matrix_wrong_servers.py) sees which came after it. ``--case`` keeps the order
given.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.client import OK, Attempt

from .dimensions import Case
from .oracle import SKIPPED, Facts, predict, survival_probe

if TYPE_CHECKING:
    from .runner import MatrixEnv

SURVIVAL_TIMEOUT = 1.0  # SPEC section 4: served again within one second
PROBE = "probe"  # observed["survival_by"] when the explicit probe decided


@dataclass
class Early:
    """A later case's first request, made right after a refusal (the survival proof).

    ``nows`` are the UTC clock readings before and after it (the environ check's
    window); ``handle`` is the server it went to (used only if that case finds the same
    one running); ``elapsed_s`` how long it took (seconds).
    """

    attempt: Attempt
    nows: tuple[dt.datetime, dt.datetime]
    handle: object
    elapsed_s: float


@dataclass(frozen=True)
class Survival:
    """The survival verdict: ``alive`` (None: nobody is predicted to be served here, not
    probed), ``by`` (the proving case's id, ``PROBE``, or None), ``got`` (what the good
    client got, for the problem), ``note`` (run-specific text for people) and ``early``
    (the later case's request made meanwhile, if one was, whatever it proved)."""

    alive: bool | None
    by: str | None = None
    got: str = ""
    note: str = ""
    early: Early | None = None


def run_order(cases: Sequence[Case], facts: Facts) -> list[Case]:
    """``cases`` in the order that lets the most refusals' survival be proved by the next
    case (module docstring): grouped by configuration in order of first appearance; within
    one, never-reaching cases, admissions no refusal needs, (refusal, admission) pairs,
    the refusals left over, the other refusals; each kind in its original order. A
    function of the cases and the facts only, so every pytest-xdist worker (and the
    controller, which lists results in this order) computes the same."""
    groups: dict[Any, list[Case]] = {}
    for case in cases:
        groups.setdefault(case.config, []).append(case)
    ordered: list[Case] = []
    for group in groups.values():
        ordered += _interleaved(group, facts)
    return ordered


def _interleaved(group: list[Case], facts: Facts) -> list[Case]:
    unreached: list[Case] = []
    admitted: list[Case] = []
    probed: list[Case] = []  # refusals after which survival is checked
    other: list[Case] = []
    for case in group:
        outcome = predict(case, facts).outcome
        if outcome == SKIPPED:
            unreached.append(case)
        elif outcome == OK:
            admitted.append(case)
        elif survival_probe(case.config, case.connect, facts) is not None:
            probed.append(case)
        else:
            other.append(case)
    pairs = min(len(admitted), len(probed))
    spare = len(admitted) - pairs
    order = unreached + admitted[:spare]
    for refusal, admission in zip(probed[:pairs], admitted[spare:], strict=True):
        order += [refusal, admission]
    return order + probed[pairs:] + other


def admitted_next(case: Case, following: object, facts: Facts) -> bool:
    """Whether ``following`` runs on ``case``'s server and is predicted admitted."""
    if not isinstance(following, Case) or following.config != case.config:
        return False
    if following.id == case.id:
        return False
    return predict(following, facts).outcome == OK


def late(outcome: str) -> str:
    """What a good client got, for the survival problem, when it took too long."""
    return outcome if outcome != OK else f"ok after more than {SURVIVAL_TIMEOUT} s"


def check(
    case: Case,
    env: MatrixEnv,
    url: str,
    handle: object,
    refused_at: float,
    following: object = None,
    url_of: Any = None,
) -> Survival:
    """Survival after ``case``'s non-ok outcome, which ended at ``refused_at``
    (``time.perf_counter()``): by ``following``'s early request when it may prove it
    (module docstring), else by the explicit probe to ``url``. ``url_of(case)`` is the
    URL of ``following`` on ``handle``."""
    if survival_probe(case.config, case.connect, env.facts) is None:
        return Survival(None)  # nobody is predicted to be served here: not probed, as before
    if url_of is not None and admitted_next(case, following, env.facts):
        assert isinstance(following, Case)
        early = observe_early(following, env, url_of(following), handle)
        env.early[following.id] = early
        waited = time.perf_counter() - refused_at
        attempt = early.attempt
        if waited > SURVIVAL_TIMEOUT:
            note = f"survival by {following.id!r}: {waited:.2f}s {attempt.detail}"
            return Survival(False, following.id, late(attempt.outcome), note, early)
        if attempt.outcome == OK:
            return Survival(True, following.id, early=early)
        return dataclasses.replace(probe(case, env, url), early=early)
    return probe(case, env, url)


def observe_early(following: Case, env: MatrixEnv, url: str, handle: object) -> Early:
    """``following``'s first request, now, to the server ``handle``."""
    client = env.client(following.client, tls=following.tls)
    started = time.perf_counter()
    before = dt.datetime.now(dt.timezone.utc)
    attempt = client.get(url)
    after = dt.datetime.now(dt.timezone.utc)
    return Early(attempt, (before, after), handle, time.perf_counter() - started)


def take_early(case: Case, env: MatrixEnv, handle: object) -> Early | None:
    """The early request made for ``case`` on this very server, if any (taken once)."""
    early = env.early.pop(case.id, None)
    if early is None or early.handle is not handle:
        return None
    return early


def probe(case: Case, env: MatrixEnv, url: str) -> Survival:
    """The explicit probe: a client the oracle predicts is served, within the bound."""
    chosen = survival_probe(case.config, case.connect, env.facts)
    if chosen is None:
        return Survival(None)
    client = env.client(chosen.client, chosen.trust_root, chosen.server_hostname, SURVIVAL_TIMEOUT)
    started = time.perf_counter()
    attempt = client.get(url)
    elapsed = time.perf_counter() - started
    if attempt.outcome == OK and elapsed <= SURVIVAL_TIMEOUT:
        return Survival(True, PROBE)
    note = f"survival probe {chosen.client!r}: {elapsed:.2f}s {attempt.detail}"
    return Survival(False, PROBE, late(attempt.outcome), note)
