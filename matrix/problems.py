"""What can be wrong with one case, as fields that reports read (SPEC section 6).

A case's verdict is a list of ``Problem`` records, never a sentence to parse. The
``kind`` says which check found it, the ``severity`` how much it matters, ranked
as SPEC section 6 ranks them: admitting a client that should be refused
(``security``) above a dead or stalled server (``availability``) above a refusal
in the wrong form (``protocol``) above a difference in what the application is
told (``visibility``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Which check found the problem.
OUTCOME = "outcome"  # the observed outcome is not the predicted one
REFUSAL_FORM = "refusal-form"  # refused, as predicted, but with the wrong alert/stage
ENVIRON = "environ"  # an SSL_* variable differs from mod_ssl's value
SURVIVAL = "survival"  # the server did not serve a good client afterwards
START = "start"  # the server could not be started for this configuration
HARNESS = "harness"  # the harness itself failed (a bug of ours, not the server's)
CA_NAMES = "ca-names"  # the CertificateRequest lists other CA names than predicted
# A request changed a connection fact (HTTPS, scheme, peer address, SSL_*) from a peer
# that is no proxy; from 127.0.0.1, a server that trusts a local proxy by default
# (SPEC section 9, docs/state-request.md).
REQUEST_OVERRIDE = "request-override"
LOCAL_PROXY_TRUST = "local-proxy-trust"
# The harness's bounds (SPEC section 10, docs/spec.md section 10): the server made the
# harness give up on this case (or on its configuration's server), and the run went on.
START_TIMEOUT = "start-timeout"  # start() did not return within the start deadline
STOP_TIMEOUT = "stop-timeout"  # the handle's stop() did not return within the stop deadline
RESPONSE_DEADLINE = "response-deadline"  # no complete response within the request deadline
RESPONSE_SIZE = "response-size"  # a response body over the size cap
INTERIM_RESPONSES = "interim-responses"  # more interim (1xx) responses than the cap
LEAKED_PROCESS = "leaked-process"  # a process the target started outlived its stop()
BOUNDS = (
    START_TIMEOUT,
    STOP_TIMEOUT,
    RESPONSE_DEADLINE,
    RESPONSE_SIZE,
    INTERIM_RESPONSES,
    LEAKED_PROCESS,
)
KINDS = (
    OUTCOME,
    REFUSAL_FORM,
    ENVIRON,
    SURVIVAL,
    START,
    HARNESS,
    CA_NAMES,
    *BOUNDS,
    REQUEST_OVERRIDE,
    LOCAL_PROXY_TRUST,
)

# How much it matters, most severe first.
SECURITY = "security"
AVAILABILITY = "availability"
PROTOCOL = "protocol"
VISIBILITY = "visibility"
SEVERITIES = (SECURITY, AVAILABILITY, PROTOCOL, VISIBILITY)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a case.

    ``what`` names the subject: the environ variable for ``environ`` problems, the
    outcome pair (``"rejected->ok"``) for ``outcome`` problems, the alert for
    ``refusal-form``. ``expected`` and ``observed`` are short values, not prose,
    and hold nothing run-specific (no ports, no ephemeral addresses), so two runs
    of the same cases produce byte-identical problems.
    """

    kind: str
    severity: str
    what: str
    expected: Any = None
    observed: Any = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown problem kind {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown problem severity {self.severity!r}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def rank(severity: str) -> int:
    """0 for the most severe; for sorting findings."""
    return SEVERITIES.index(severity)
