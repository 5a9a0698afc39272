"""Refusals as the TLS stack says them (SPEC section 6): the predicted form, and the check.

The oracle says *why* a client is refused (its ``cause``); this module says how
that refusal reaches the client for each TLS version — at which ``stage``, in
which ``form``, with which ``alert`` — and checks an observed refusal against
it. The table follows OpenSSL, the TLS library of both reference adapters:

- A verification error becomes an alert through ``ssl_x509err2alert`` (its
  ``x509table``) in ssl/statem/statem_lib.c: unable to get the (local) issuer
  -> ``unknown_ca``; certificate has expired -> ``certificate_expired``; not
  yet valid -> ``bad_certificate``; revoked -> ``certificate_revoked``;
  invalid purpose (EKU) -> ``unsupported_certificate``; anything not listed
  -> ``certificate_unknown`` (so the RFC 5280 conformance errors a strict
  verifier raises, e.g. a missing authority key identifier: ``nonconforming``).
- No certificate where one is required (``tls_process_client_certificate`` in
  ssl/statem/statem_srvr.c): ``certificate_required`` in TLS 1.3 (RFC 8446
  section 4.4.2.4 and 6.2), ``handshake_failure`` before it (RFC 5246 section
  7.4.6 leaves the choice open; OpenSSL sends handshake_failure).
- Stage: a TLS 1.3 client completes its handshake when it sends its Finished,
  before the server has judged its certificate, so the alert arrives on the
  first read (RFC 8446 section 4.4.4 and Appendix A.1); in TLS 1.2 the server
  judges the certificate before its own Finished, so the alert arrives during
  the handshake.
- Host mismatch is judged by the server after the handshake, where neither
  the stdlib nor pyOpenSSL can send an alert: the reference server closes the
  connection, and the client sees a close without an alert on its first read.
  A server that sends a certificate alert there instead (``bad_certificate``,
  ``access_denied``, ``certificate_unknown``) says more and passes too.

``tests/test_refusals_openssl.py`` measures the table against the OpenSSL in use
with servers of a few lines each (not the reference server).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .problems import OUTCOME, PROTOCOL, REFUSAL_FORM, Problem

# The observation vocabulary (CONTRACTS.md; harness.client's Attempt uses the same
# strings; the oracle side imports nothing from the harness).
REJECTED = "rejected"
HANDSHAKE, FIRST_READ, RESPONSE = "handshake", "first-read", "response"
ALERT, CLOSE, RESET = "alert", "close", "reset"

TLS12, TLS13 = "1.2", "1.3"
WIRE_NAMES = {TLS12: "TLSv1.2", TLS13: "TLSv1.3"}

# The cause vocabulary (CONTRACTS.md), as matrix.oracle sets it.
NO_CERTIFICATE = "no-certificate"
UNTRUSTED_ISSUER = "untrusted-issuer"
EXPIRED = "expired"
NOT_YET_VALID = "not-yet-valid"
BAD_EKU = "bad-eku"
REVOKED = "revoked"
HOST_MISMATCH = "host-mismatch"
NO_TRUST_STORE = "no-trust-store"
NONCONFORMING = "nonconforming"

# cause -> the alert OpenSSL sends once the certificate fails verification, and the
# X509_V_ERR_* that leads there (ssl_x509err2alert), or the statem_srvr.c reason.
VERIFY_ALERTS: dict[str, tuple[str, str]] = {
    UNTRUSTED_ISSUER: ("unknown_ca", "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY"),
    NO_TRUST_STORE: ("unknown_ca", "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY"),
    EXPIRED: ("certificate_expired", "X509_V_ERR_CERT_HAS_EXPIRED"),
    NOT_YET_VALID: ("bad_certificate", "X509_V_ERR_CERT_NOT_YET_VALID"),
    REVOKED: ("certificate_revoked", "X509_V_ERR_CERT_REVOKED"),
    BAD_EKU: ("unsupported_certificate", "X509_V_ERR_INVALID_PURPOSE"),
    # X509_V_FLAG_X509_STRICT's RFC 5280 checks (x509_vfy.c, OpenSSL 3.0+) are not in
    # x509table, so they get its default alert.
    NONCONFORMING: ("certificate_unknown", "X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER"),
}
NO_CERTIFICATE_ALERTS = {TLS12: "handshake_failure", TLS13: "certificate_required"}
CERTIFICATE_STAGE = {TLS12: HANDSHAKE, TLS13: FIRST_READ}

# Alerts that say something about the client's certificate (RFC 8446 section 6.2),
# plus handshake_failure, which is TLS 1.2's "no certificate". Any other alert
# (protocol_version, insufficient_security, illegal_parameter, ...) is a refusal
# for a reason that is not the client's certificate.
CERTIFICATE_ALERTS = frozenset(
    {
        "bad_certificate",
        "unsupported_certificate",
        "certificate_revoked",
        "certificate_expired",
        "certificate_unknown",
        "unknown_ca",
        "access_denied",
        "certificate_required",
        "handshake_failure",
    }
)
HOST_MISMATCH_ALERTS = ("bad_certificate", "access_denied", "certificate_unknown")


@dataclass(frozen=True)
class Refusal:
    """How a refusal reaches the client: stage, form and (for an alert) its name."""

    stage: str
    form: str
    alert: str | None = None

    def __str__(self) -> str:
        return " ".join(p for p in (self.stage, self.form, self.alert) if p)


def accepted_refusals(cause: str | None, tls: str) -> tuple[Refusal, ...]:
    """Every refusal that is right for ``cause`` under TLS ``tls`` ("1.2" | "1.3"),
    the predicted one first; () when the cause is None or unknown."""
    if tls not in CERTIFICATE_STAGE:
        return ()
    stage = CERTIFICATE_STAGE[tls]
    if cause == NO_CERTIFICATE:
        return (Refusal(stage, ALERT, NO_CERTIFICATE_ALERTS[tls]),)
    if cause in VERIFY_ALERTS:
        return (Refusal(stage, ALERT, VERIFY_ALERTS[cause][0]),)
    if cause == HOST_MISMATCH:
        alerts = tuple(Refusal(FIRST_READ, ALERT, a) for a in HOST_MISMATCH_ALERTS)
        return (Refusal(FIRST_READ, CLOSE), *alerts)
    return ()


def predict_refusal(cause: str | None, tls: str) -> Refusal | None:
    """The refusal the oracle predicts for ``cause`` under TLS ``tls``, or None."""
    accepted = accepted_refusals(cause, tls)
    return accepted[0] if accepted else None


def about_certificate(attempt: Any, tls: str) -> bool:
    """Could this refusal be the server judging the client's certificate?

    Only after the server chose the version the client asked for (its ServerHello,
    and so its CertificateRequest, came first: ``tls_version`` is set), and only
    with an alert about a certificate — handshake_failure counting only in TLS
    1.2, where it means "no certificate". A close or reset says nothing either way.
    """
    if attempt.form != ALERT:
        return True
    if attempt.tls_version != WIRE_NAMES.get(tls):
        return False
    if attempt.alert not in CERTIFICATE_ALERTS:
        return False
    if attempt.alert == "handshake_failure":
        return tls == TLS12 and attempt.tls_version == WIRE_NAMES[TLS12]
    return True


def refusal_problems(expectation: Any, attempt: Any, tls: str) -> list[Problem]:
    """Problems with a refusal that was predicted and observed as ``rejected``.

    A refusal that is not about the client's certificate (protocol version,
    cipher, group) never passes for a certificate refusal: an ``outcome``
    problem. A certificate refusal in another stage or form than the predicted
    one: a ``refusal-form`` problem (severity ``protocol``, SPEC section 6).
    ``expectation`` is a matrix.oracle.Expectation, ``attempt`` a
    harness.client.Attempt.
    """
    if expectation.outcome != REJECTED or attempt.outcome != REJECTED:
        return []
    accepted = accepted_refusals(expectation.cause, tls)
    if not accepted:
        return []
    observed = Refusal(attempt.stage, attempt.form, attempt.alert)
    if not about_certificate(attempt, tls):
        what = f"{REJECTED}->{REJECTED}:{attempt.alert}"
        return [Problem(OUTCOME, PROTOCOL, what, str(accepted[0]), str(observed))]
    if observed in accepted:
        return []
    return [Problem(REFUSAL_FORM, PROTOCOL, expectation.cause, str(accepted[0]), str(observed))]
