"""The connection-state profile's plumbing: cases as data, the oracle, the feature gate.

No server here: the oracle is a pure function of the case and the certificate files, and
these tests predict from a real certificate set (certs_gen) and hand-made resolver facts.
The servers' side is in tests/test_state_reference.py.
"""

from __future__ import annotations

import datetime as dt

import pytest

import certs_gen
from harness.target import FEATURES, CheckedTarget, ServerSpec, SNIHost, required_features
from matrix import state
from matrix.oracle import OK, REJECTED
from matrix.resolver import ResolverFacts
from matrix.runner import build_facts
from matrix.state import grids
from matrix.state.model import DEFAULT_HOST, HostPolicy, ServerState, StateCase, Step
from matrix.state.oracle import MISDIRECTED, predict


@pytest.fixture(scope="module")
def facts(tmp_path_factory):
    certs = certs_gen.generate(tmp_path_factory.mktemp("certs"))
    resolver = ResolverFacts(
        forward={"localhost": ["127.0.0.1"]},
        reverse={"127.0.0.1": ["localhost"]},
        passive={"localhost": ["127.0.0.1"]},
        ipv6_loopback=False,
    )
    return build_facts(certs, resolver, dt.datetime.now(dt.timezone.utc))


def test_ids_are_unique_and_name_every_value():
    cases = state.cases(("builtin", "pyopenssl"))
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids))
    for case in cases:
        for name, value in case.dims:
            assert f"{name}:{value}" in case.id
        assert case.id.startswith(f"{case.adapter}-{case.grid}-")


def test_every_grid_says_what_it_holds_fixed():
    for grid in state.GRIDS.values():
        assert grid.held, grid.name
        assert grid.cases(("builtin",)), grid.name


def _sni_case(default, other, sent, client, host=None):
    server = ServerState("builtin", default, (("a.test", default), ("b.test", other)))
    return StateCase("sni", "builtin", client, "1.3", (server,), (Step(sni=sent, host=host),))


@pytest.mark.parametrize(
    ("sent", "client", "outcome", "served"),
    [
        ("b.test", "none", REJECTED, ("b.test",)),  # the named host's required applies
        ("B.TEST", "none", REJECTED, ("b.test",)),  # names compare case-insensitively
        ("a.test", "none", OK, (DEFAULT_HOST, "a.test")),
        (None, "none", OK, (DEFAULT_HOST, "a.test")),
        ("unknown.test", "wrong-ca", OK, (DEFAULT_HOST, "a.test")),  # unknown: default
        ("b.test", "localhost", OK, ("b.test",)),
        ("b.test", "wrong-ca", REJECTED, ("b.test",)),
    ],
)
def test_sni_selects_the_named_hosts_policy(facts, sent, client, outcome, served):
    expected = predict(_sni_case(HostPolicy("ignore"), HostPolicy("required"), sent, client), facts)
    assert expected.last.outcome == outcome
    assert expected.last.served == served
    assert expected.last.sni == sent


def test_a_host_ca_is_the_hosts_own(facts):
    other = HostPolicy("required", "other-ca")
    for client, outcome in (("wrong-ca", OK), ("localhost", REJECTED)):
        case = _sni_case(HostPolicy("required"), other, "b.test", client)
        assert predict(case, facts).last.outcome == outcome
        assert predict(case, facts).last.verified == (outcome == OK)


def test_host_header_naming_the_other_host_may_be_misdirected(facts):
    case = _sni_case(HostPolicy("required"), HostPolicy("ignore"), "b.test", "none", "a.test")
    last = predict(case, facts).last
    assert last.outcome == OK and last.accepts(MISDIRECTED)
    same = _sni_case(HostPolicy("required"), HostPolicy("ignore"), "b.test", "none")
    assert not predict(same, facts).last.accepts(MISDIRECTED)
    refused = _sni_case(HostPolicy("required"), HostPolicy("ignore"), "a.test", "none", "b.test")
    assert predict(refused, facts).last.outcome == REJECTED  # the TLS verdict comes first


def test_a_carried_session_changes_no_verdict(facts):
    """SPEC section 9: after a reload to required, the session of a client without a
    certificate must not admit it."""
    wanted = "builtin-resumption-carry:reload-from:optional-to:required-session:ticket"
    case = next(
        c for c in grids.resumption_cases(("builtin",)) if c.id == f"{wanted}-client:none-tls:1.3"
    )
    first, second = predict(case, facts).steps
    assert (first.outcome, second.outcome) == (OK, REJECTED)
    assert second.carried == 0


def test_sni_hosts_and_reload_are_declared_features(tmp_path):
    assert {"sni-hosts", "reload"} <= set(FEATURES)
    base = ServerSpec("builtin", "ignore", False, "127.0.0.1", tmp_path, tmp_path, None)
    assert "sni-hosts" not in required_features(base)
    hosts = (SNIHost("b.test", "required", False, tmp_path),)
    spec = ServerSpec(
        "builtin", "ignore", False, "127.0.0.1", tmp_path, tmp_path, None, sni_hosts=hosts
    )
    assert "sni-hosts" in required_features(spec)

    class Old:  # a target written before the features existed
        name = "old"
        adapters = ("builtin",)

        def unsupported(self, spec):
            return None

        def start(self, spec):
            raise AssertionError("an undeclared feature must never reach the target")

        def provides(self, adapter, variable):
            return False

        def versions(self):
            return {}

    checked = CheckedTarget(Old())
    assert "sni-hosts" in checked.unsupported(spec)
    assert checked.unsupported(base) is None
    assert "reload" in checked.unsupported_features(base, ("reload",))


def test_twisted_sni_gives_each_virtual_host_its_own_options(tmp_path):
    """twisted-sni declares sni-hosts and hands each host's policy and CA to
    contextForServerName (the sni grid then shows the verify mode it loses)."""
    from harness.targets.twisted import TwistedSNITarget

    target = TwistedSNITarget()
    assert "sni-hosts" in target.features and "reload" not in target.features
    hosts = (SNIHost("b.test", "required", False, tmp_path / "ca.pem"),)
    spec = ServerSpec(
        "pyopenssl", "ignore", False, "127.0.0.1", tmp_path, tmp_path, None, sni_hosts=hosts
    )
    args, _ = target.command(spec)
    assert args[-4:] == ["--sni-host", "b.test", "required", str(tmp_path / "ca.pem")]
    assert "--sni" in args
