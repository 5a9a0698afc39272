"""Survival proved by the next admitted case (matrix/survival.py), against real servers.

A refusal followed by a case on the same configuration that the oracle predicts is
admitted: that case's first request proves the server survived, and is reused as its
own first attempt. Where nothing admitted follows, the explicit probe runs. A server
that dies or hangs after a refusal fails survival either way.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from harness.client import OK
from harness.target import CheckedTarget
from harness.targets.reference import target as reference_target
from matrix.dimensions import Case
from matrix.oracle import SKIPPED, predict, survival_probe
from matrix.plugin import matrix_cases
from matrix.problems import SURVIVAL
from matrix.resolver import probe
from matrix.runner import MatrixEnv, build_facts, run_case
from matrix.survival import PROBE, admitted_next, run_order
from tests import wrong_servers

LOOPBACK = "127.0.0.1"


def _case(client: str, policy: str = "required") -> Case:
    return Case("client-auth", "builtin", policy, LOOPBACK, LOOPBACK, client, "server")


REFUSED, ADMITTED, ALSO_REFUSED = _case("wrong-ca"), _case("localhost"), _case("expired")


@pytest.fixture(scope="module")
def facts(certs):
    return build_facts(certs, probe((LOOPBACK,)), dt.datetime.now(dt.timezone.utc))


def run_pair(certs, facts, target, first: Case, second: Case | None):
    """``first`` (told that ``second`` follows), then ``second``, on one server."""
    env = MatrixEnv(certs, facts, target)
    try:
        one = run_case(first, env, last=second is None, following=second)
        two = run_case(second, env, last=True) if second is not None else None
        return one, two, env
    finally:
        env.close()


def test_the_oracle_says_which_case_may_prove_survival(facts):
    assert admitted_next(REFUSED, ADMITTED, facts)
    assert not admitted_next(REFUSED, ALSO_REFUSED, facts)  # predicted refused itself
    assert not admitted_next(REFUSED, _case("localhost", "optional"), facts)  # other server
    assert not admitted_next(REFUSED, None, facts)


def test_an_admitted_next_case_proves_survival_and_keeps_its_request(certs, facts):
    one, two, env = run_pair(certs, facts, reference_target(), REFUSED, ADMITTED)
    assert one.status == "pass", one.problems
    assert one.server_alive is True
    assert one.observed["survival_by"] == ADMITTED.id
    assert two.status == "pass", two.problems
    assert two.observed["outcome"] == OK
    assert two.environ  # the environ check ran on the early request
    assert env.early == {}  # taken by the case it belongs to


def test_without_an_admitted_next_case_the_probe_decides(certs, facts):
    for following in (ALSO_REFUSED, None):
        one, _, _ = run_pair(certs, facts, reference_target(), REFUSED, following)
        assert one.status == "pass", one.problems
        assert (one.server_alive, one.observed["survival_by"]) == (True, PROBE)


@pytest.mark.parametrize("name", ["drops_all_after_rejection", "stalls_after_rejection"])
@pytest.mark.parametrize("following", [ADMITTED, ALSO_REFUSED, None], ids=str)
def test_a_server_broken_by_a_refusal_fails_survival_whatever_follows(
    certs, facts, name, following
):
    target = getattr(wrong_servers, name)()
    one, two, _ = run_pair(certs, facts, target, REFUSED, following)
    assert one.server_alive is False
    assert [p.kind for p in one.problems if p.kind == SURVIVAL] == [SURVIVAL]
    survival = next(p for p in one.problems if p.kind == SURVIVAL)
    assert survival.observed != OK
    # A stalled server's early request times out after the bound: that case's request
    # decides. A dropping server refuses it at once, within the bound: the request is that
    # case's own finding, and the explicit probe decides (matrix/survival.py).
    stalled = name == "stalls_after_rejection"
    expected_by = following.id if following is ADMITTED and stalled else PROBE
    assert one.observed["survival_by"] == expected_by
    if two is not None:  # the next case is not served either
        assert two.status == "fail"


# -- the run's order (survival.run_order) ----------------------------------------------


@pytest.fixture(scope="module")
def standard_cases():
    return matrix_cases(CheckedTarget(reference_target()), "standard")


@pytest.fixture(scope="module")
def kinds(facts, standard_cases):
    """Each case's kind, as the order sees it (from the oracle, per case id)."""

    def kind(case: Case) -> str:
        outcome = predict(case, facts).outcome
        if outcome == SKIPPED:
            return "unreached"
        if outcome == OK:
            return "admitted"
        return "probed" if survival_probe(case.config, case.connect, facts) else "other"

    return {c.id: kind(c) for c in standard_cases}


def _proved_by_next(cases, kinds) -> int:
    """Refusals followed by an admitted case of their own configuration."""
    return sum(
        1
        for case, after in itertools.pairwise(cases)
        if kinds[case.id] == "probed"
        and kinds[after.id] == "admitted"
        and after.config == case.config
    )


def test_the_run_order_is_the_same_cases_with_each_configuration_together(facts, standard_cases):
    ordered = run_order(standard_cases, facts)
    assert sorted(c.id for c in ordered) == sorted(c.id for c in standard_cases)
    configs = [c.config for c in ordered]
    runs = [k for i, k in enumerate(configs) if i == 0 or configs[i - 1] != k]
    assert len(runs) == len(set(configs))  # contiguous
    assert runs == list(dict.fromkeys(c.config for c in standard_cases))  # in the same order
    assert run_order(standard_cases, facts) == ordered  # a function of its input


def test_the_run_order_follows_each_refusal_by_an_admission_where_the_server_has_one(
    facts, standard_cases, kinds
):
    ordered = run_order(standard_cases, facts)
    best = 0
    for config in dict.fromkeys(c.config for c in standard_cases):
        mine = [kinds[c.id] for c in standard_cases if c.config == config]
        best += min(mine.count("admitted"), mine.count("probed"))
    assert best > 0
    # every refusal that can be proved by the next case is (on this host's reachable cases)
    assert _proved_by_next(ordered, kinds) == best > _proved_by_next(standard_cases, kinds)


def test_the_run_order_keeps_each_kinds_order_and_refuses_as_late_as_it_can(
    facts, standard_cases, kinds
):
    ordered = run_order(standard_cases, facts)
    for config in dict.fromkeys(c.config for c in standard_cases):
        mine = [c for c in ordered if c.config == config]
        given = [c for c in standard_cases if c.config == config]
        for kind in ("unreached", "admitted", "probed", "other"):
            assert [c.id for c in mine if kinds[c.id] == kind] == [
                c.id for c in given if kinds[c.id] == kind
            ]
        seen = [kinds[c.id] for c in mine]
        if "probed" in seen:  # before the first refusal: every admission no refusal needs
            spare = max(0, seen.count("admitted") - seen.count("probed"))
            assert seen.index("probed") == seen.count("unreached") + spare
