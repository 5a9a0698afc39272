"""matrix.refusals' check on its own: which observed refusals pass for which cause.

Attempts and expectations are the real dataclasses, filled with what the client
and the oracle produce; the servers behind such values are exercised in
test_refusals_openssl.py and test_refusals_wrong_servers.py.
"""

from __future__ import annotations

import pytest

from harness.client import Attempt
from matrix.oracle import Expectation
from matrix.problems import OUTCOME, PROTOCOL, REFUSAL_FORM
from matrix.refusals import Refusal, predict_refusal, refusal_problems


def refused(cause: str, tls: str) -> Expectation:
    refusal = predict_refusal(cause, tls)
    return Expectation("rejected", "why", "127.0.0.1", cause=cause, refusal=refusal)


def seen(stage, form, alert=None, version="TLSv1.3", outcome="rejected") -> Attempt:
    return Attempt(outcome, "", tls_version=version, stage=stage, form=form, alert=alert)


def kinds(problems) -> list[tuple[str, str]]:
    return [(p.kind, p.severity) for p in problems]


def test_the_predicted_refusal_passes():
    attempt = seen("first-read", "alert", "certificate_required")
    assert refusal_problems(refused("no-certificate", "1.3"), attempt, "1.3") == []
    attempt = seen("handshake", "alert", "handshake_failure", "TLSv1.2")
    assert refusal_problems(refused("no-certificate", "1.2"), attempt, "1.2") == []


@pytest.mark.parametrize(
    "attempt",
    [
        seen("first-read", "close"),
        seen("first-read", "reset"),
        seen("first-read", "alert", "unknown_ca"),
        seen("handshake", "alert", "certificate_required"),
    ],
)
def test_another_certificate_refusal_is_a_form_problem(attempt):
    problems = refusal_problems(refused("no-certificate", "1.3"), attempt, "1.3")
    assert kinds(problems) == [(REFUSAL_FORM, PROTOCOL)]
    assert problems[0].expected == "first-read alert certificate_required"
    assert problems[0].observed == str(Refusal(attempt.stage, attempt.form, attempt.alert))


@pytest.mark.parametrize(
    ("tls", "attempt"),
    [
        ("1.2", seen("handshake", "alert", "protocol_version", None)),
        ("1.2", seen("handshake", "alert", "handshake_failure", None)),  # before ServerHello
        ("1.3", seen("handshake", "alert", "handshake_failure")),  # no shared group/cipher
        ("1.3", seen("handshake", "alert", "insufficient_security")),
        ("1.2", seen("handshake", "alert", "unknown_ca", "TLSv1.3")),  # not the pinned version
    ],
)
def test_a_refusal_not_about_the_certificate_never_passes(tls, attempt):
    problems = refusal_problems(refused("untrusted-issuer", tls), attempt, tls)
    assert kinds(problems) == [(OUTCOME, PROTOCOL)]


@pytest.mark.parametrize(
    "attempt",
    [
        seen("first-read", "close"),
        seen("first-read", "alert", "bad_certificate"),
        seen("first-read", "alert", "access_denied"),
    ],
)
def test_host_mismatch_accepts_a_close_or_a_certificate_alert(attempt):
    assert refusal_problems(refused("host-mismatch", "1.3"), attempt, "1.3") == []


def test_only_refusals_predicted_and_observed_are_checked():
    ok = Expectation("ok", "served", "127.0.0.1")
    assert refusal_problems(ok, seen("first-read", "close"), "1.3") == []
    attempt = seen(None, None, outcome="ok")
    assert refusal_problems(refused("expired", "1.3"), attempt, "1.3") == []  # outcome's job
