"""Survival proved by the next admitted case (matrix/survival.py), against real servers.

A refusal followed by a case on the same configuration that the oracle predicts is
admitted: that case's first request proves the server survived, and is reused as its
own first attempt. Where nothing admitted follows, the explicit probe runs. A server
that dies or hangs after a refusal fails survival either way.
"""

from __future__ import annotations

import datetime as dt

import pytest

from harness.client import OK
from harness.targets.reference import target as reference_target
from matrix.dimensions import Case
from matrix.problems import SURVIVAL
from matrix.resolver import probe
from matrix.runner import MatrixEnv, build_facts, run_case
from matrix.survival import PROBE, admitted_next
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
    expected_by = following.id if following is ADMITTED else PROBE
    assert one.observed["survival_by"] == expected_by
    if two is not None:  # the next case is not served either
        assert two.status == "fail"
