"""Refusals in the wrong form, or for the wrong reason, fail the matrix (SPEC section 6).

Two deliberately wrong servers (``tests/wrong_servers.py``) and the reference run
the client-auth grid on loopback, in TLS 1.2 and 1.3, in-process: each case
through ``matrix.runner.run_case`` (the verdict a user sees) and, for the
refused ones, through the form check itself (which problem, of what kind).

- ``closes_without_certificate`` accepts the handshake without a certificate
  under ``required`` and closes afterwards: every required/none case fails with
  a ``refusal-form`` problem of severity ``protocol``, and only those.
- ``refuses_tls12`` answers TLS 1.2 with ``protocol_version``: every TLS 1.2
  case fails — ok-cases as refused, certificate-refusal cases because that
  alert is not about the certificate — and every TLS 1.3 case passes.
- ``advertises_ca_names`` lists the client CA in its pyOpenSSL adapter's
  CertificateRequest: every served pyopenssl case that was asked for a
  certificate fails with a ``ca-names`` problem; the builtin ones pass.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from cryptography import x509

from harness.client import OK, REJECTED
from harness.targets.reference import ReferenceTarget
from matrix.canames import ca_names_problems
from matrix.dimensions import CLIENTS, POLICIES, Case
from matrix.oracle import predict
from matrix.problems import CA_NAMES, OUTCOME, PROTOCOL, REFUSAL_FORM, VISIBILITY
from matrix.refusals import refusal_problems
from matrix.resolver import probe
from matrix.runner import MatrixEnv, build_facts, run_case, url_for
from tests import wrong_servers

LOOPBACK = "127.0.0.1"
VERSIONS = ("1.2", "1.3")


def cases() -> list[Case]:
    """The client-auth grid on 127.0.0.1, both adapters, both TLS versions."""
    return [
        Case("client-auth", adapter, policy, LOOPBACK, LOOPBACK, client, "server", tls=tls)
        for adapter, policy, client, tls in itertools.product(
            ("builtin", "pyopenssl"), POLICIES, CLIENTS, VERSIONS
        )
    ]


@pytest.fixture(scope="module")
def facts(certs):
    return build_facts(certs, probe((LOOPBACK,)), dt.datetime.now(dt.timezone.utc))


def run(certs, facts, target) -> dict[Case, tuple]:
    """case -> (status, expectation, attempt, refusal problems)."""
    env = MatrixEnv(certs, facts, target)
    out = {}
    try:
        for case in cases():
            result = run_case(case, env)
            expectation = predict(case, facts)
            server = env.servers.get(case.config, env.spec(case.config))
            attempt = env.client(case.client, tls=case.tls).get(url_for(case.connect, server.port))
            problems = refusal_problems(expectation, attempt, case.tls)
            problems += ca_names_problems(expectation, attempt)
            out[case] = (result.status, expectation, attempt, problems)
    finally:
        env.close()
    return out


def test_reference_refuses_in_the_predicted_form_in_both_versions(certs, facts):
    results = run(certs, facts, ReferenceTarget())
    failed = {c.id + f" tls:{c.tls}": r[2].detail for c, r in results.items() if r[0] != "pass"}
    assert not failed
    refused = [r for r in results.values() if r[1].outcome == REJECTED]
    assert refused and all(r[1].refusal is not None and not r[3] for r in refused)
    # the two versions really differ where the table says they do
    forms = {(c.tls, r[2].stage, r[2].alert) for c, r in results.items() if c.client == "none"}
    assert ("1.2", "handshake", "handshake_failure") in forms
    assert ("1.3", "first-read", "certificate_required") in forms


def test_closing_instead_of_certificate_required_is_a_protocol_problem(certs, facts):
    results = run(certs, facts, wrong_servers.closes_without_certificate())
    broken = {c for c in results if c.policy.startswith("required") and c.client == "none"}
    assert broken
    for case, (status, expectation, attempt, problems) in results.items():
        if case in broken:
            assert status == "fail", case
            assert attempt.outcome == REJECTED and attempt.form == "close", attempt
            assert [(p.kind, p.severity) for p in problems] == [(REFUSAL_FORM, PROTOCOL)]
            assert problems[0].expected == str(expectation.refusal)
        else:
            assert status == "pass", (case, attempt.detail)


def test_refusing_tls12_passes_no_tls12_case(certs, facts):
    results = run(certs, facts, wrong_servers.refuses_tls12())
    for case, (status, expectation, attempt, problems) in results.items():
        if case.tls == "1.3":
            assert status == "pass", (case, attempt.detail)
            continue
        assert status == "fail", case
        assert attempt.alert == "protocol_version" and attempt.tls_version is None, attempt
        if expectation.outcome == REJECTED:
            # refused, as predicted, but not for the certificate: an outcome problem
            assert [(p.kind, p.severity) for p in problems] == [(OUTCOME, PROTOCOL)]
        else:
            assert expectation.outcome == OK
    refusal_cases = [c for c, r in results.items() if c.tls == "1.2" and r[1].outcome == REJECTED]
    assert refusal_cases  # the test is about them: they exist and none passed


def test_an_adapter_advertising_ca_names_shows_in_the_matrix(certs, facts):
    results = run(certs, facts, wrong_servers.advertises_ca_names())
    ca = x509.load_pem_x509_certificate(certs["ca"].cert.read_bytes())
    ca_subject = ca.subject.rfc4514_string()
    for case, (status, _, attempt, problems) in results.items():
        asked = case.policy != "ignore"
        if case.adapter == "pyopenssl" and asked and attempt.outcome == OK:
            assert status == "fail", case
            assert attempt.ca_names == (ca_subject,)
            assert [(p.kind, p.severity) for p in problems] == [(CA_NAMES, VISIBILITY)]
        elif case.adapter == "builtin" or not asked:
            assert status == "pass", (case, attempt.detail)
            assert attempt.ca_names == (() if asked else None), attempt
