"""Check the CA names a server advertises in its CertificateRequest (docs/refusals.md).

RFC 5246 section 7.4.4 and RFC 8446 section 4.2.4 let a server list the CAs whose
certificates it accepts; a client holding several certificates may pick by that
list, and some (GnuTLS, so wget) send none when no listed CA issued theirs. What a
server lists therefore changes what some clients send, so the matrix predicts it
(``Expectation.ca_names``) and compares it with what the client saw.
"""

from __future__ import annotations

from typing import Any

from harness.client import OBSERVES_HANDSHAKE, OK

from .problems import CA_NAMES, VISIBILITY, Problem


def ca_names_problems(expectation: Any, attempt: Any) -> list[Problem]:
    """A ``ca-names`` problem when the advertised names differ from the prediction.

    Checked on served clients (a CertificateRequest came, or, under ``ignore``,
    none should have) and on refused ones whose CertificateRequest the client
    saw; never when the client cannot observe the handshake. Severity
    ``visibility``: the server's verdict is unchanged, what the client is told
    differs.
    """
    if not OBSERVES_HANDSHAKE or attempt.outcome != expectation.outcome:
        return []
    if attempt.outcome != OK and attempt.ca_names is None:
        return []
    if attempt.outcome != OK and expectation.ca_names is None:
        return []
    expected = _shown(expectation.ca_names)
    observed = _shown(attempt.ca_names)
    if expected == observed:
        return []
    return [Problem(CA_NAMES, VISIBILITY, "ca-names", expected, observed)]


def _shown(names: tuple[str, ...] | list[str] | None) -> list[str] | None:
    """JSON-friendly and order-preserving: None (no request) or a list of names."""
    return None if names is None else list(names)
