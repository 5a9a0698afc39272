"""The *per-path* grid (SPEC section 9, "A certificate asked for by path"): data and oracle.

One server with ``/`` under ``ignore`` or ``optional`` and ``/secure/`` under
``required`` (Apache's per-directory ``SSLVerifyClient require`` in a
``<Location /secure/>``). The server must ask after the handshake: TLS 1.3
post-handshake authentication, TLS 1.2 renegotiation. Dimensions: the policy of
``/``, the path, the TLS version (the server offers only that one, so the
mechanism is fixed), whether the client can answer (offers post-handshake
authentication / accepts a renegotiation) and its credential (good, none,
wrong CA).

Held fixed, and why: client CA ``ca``, no host check (the host check is the main
matrix's; here only *whether* a certificate is asked for and verified is at
stake), bind 127.0.0.1, server credential ``server``.

The oracle is what SPEC section 9 says, with the refusal forms Apache httpd
2.4.71 (OpenSSL 3.0.22) showed, measured (docs/state-request.md):

- ``/``: the connection policy, as in the main matrix (``optional``: a wrong-CA
  certificate is refused in the handshake, ``unknown_ca``).
- ``/secure/`` after a handshake that verified the client (``optional`` with a
  good certificate): served. Also allowed, not a failure: refused as Apache
  refuses it (it asks again: TLS 1.3 ``403``, AH10158; TLS 1.2 a renegotiation the
  client may decline, ``handshake_failure``).
- ``/secure/`` otherwise: TLS 1.3, a client without post-handshake authentication:
  ``403``; with it: served with a good certificate, ``certificate_required``
  without one, ``unknown_ca`` for the wrong CA — except under ``optional``, where
  the handshake asked already and a client that sent nothing then gets ``403``.
  TLS 1.2: a client that declines the renegotiation, or sends no certificate:
  ``handshake_failure``; wrong CA: ``unknown_ca``; a good certificate: served.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from matrix.problems import (
    AVAILABILITY,
    ENVIRON,
    OUTCOME,
    PROTOCOL,
    REFUSAL_FORM,
    SECURITY,
    Problem,
)

from .model import HostPolicy, ServerState, StateCase, Step

BASES = ("ignore", "optional")
# The request targets: "/", "/secure/", and /secure/ spelled as an application resolves it
# but a naive prefix match does not (Apache matches <Location> after removing dot
# segments and merging slashes; RFC 3986 section 5.2.4).
PATH_LABELS = {
    "/": "root",
    "/secure/": "secure",
    "/public/../secure/": "dotted",
    "//secure/": "slashes",
}
PATHS = tuple(PATH_LABELS)
TLS_VERSIONS = ("TLSv1.2", "TLSv1.3")
ANSWERS = ("can", "cannot")
CREDENTIALS = ("localhost", "none", "wrong-ca")
SECURE_PREFIX = "/secure/"
PATH_POLICIES = ((SECURE_PREFIX, "required"),)
OK = "ok"
FORBIDDEN = "status:403"


def alert(name: str) -> str:
    return f"alert:{name}"


@dataclass(frozen=True)
class PathCase:
    adapter: str
    base: str  # the policy of "/" (the connection's)
    path: str
    tls_version: str
    answer: str  # "can" | "cannot": offers PHA / accepts a renegotiation
    credential: str

    @property
    def id(self) -> str:
        path = PATH_LABELS[self.path]
        return (
            f"per-path-{self.adapter}-{self.base}-path:{path}-{self.tls_version}"
            f"-{self.answer}-client:{self.credential}"
        )


def cases(adapters: tuple[str, ...]) -> list[PathCase]:
    return [
        PathCase(adapter, base, path, version, answer, credential)
        for adapter in adapters
        for base in BASES
        for version in TLS_VERSIONS
        for path in PATHS
        for answer in ANSWERS
        for credential in CREDENTIALS
    ]


@dataclass(frozen=True)
class PathExpected:
    outcome: str  # "ok" | "status:403" | "alert:<name>"
    reason: str
    also: tuple[str, ...] = ()  # other outcomes that pass (Apache's measured refusals)
    any_4xx: bool = False  # a request target spelled otherwise may also be refused (4xx)
    verified: bool = False  # on "ok": SSL_CLIENT_VERIFY must be SUCCESS (else NONE)


def predict(case: PathCase) -> PathExpected:
    """From the case alone: SPEC section 9 and Apache's measured refusal forms. ``/secure/``
    spelled with dot segments or a double slash is ``/secure/`` (and may be refused with
    any 4xx status: a server that will not resolve it serves nothing)."""
    want = _predict(case)
    if case.path not in ("/", SECURE_PREFIX):
        return replace(want, reason=f"{want.reason} ({case.path} is /secure/)", any_4xx=True)
    return want


def _predict(case: PathCase) -> PathExpected:
    good, none = case.credential == "localhost", case.credential == "none"
    tls13 = case.tls_version == "TLSv1.3"
    can = case.answer == "can"
    if case.base == "optional" and case.credential == "wrong-ca":
        return PathExpected(
            alert("unknown_ca"), "optional: untrusted issuer refused in the handshake"
        )
    if case.path == "/":
        if case.base == "ignore":
            return PathExpected(OK, "ignore: served, no certificate asked for")
        return PathExpected(OK, "optional: served", verified=good)
    if case.base == "optional" and good:
        also = (FORBIDDEN,) if tls13 else (() if can else (alert("handshake_failure"),))
        return PathExpected(OK, "verified in the handshake", also=also, verified=True)
    if tls13:
        if not can:
            return PathExpected(FORBIDDEN, "TLS 1.3 client without post-handshake authentication")
        if case.base == "optional":
            return PathExpected(FORBIDDEN, "optional: the handshake asked already, nothing sent")
        if good:
            return PathExpected(OK, "verified by post-handshake authentication", verified=True)
        if none:
            return PathExpected(alert("certificate_required"), "no certificate after the request")
        return PathExpected(alert("unknown_ca"), "untrusted issuer after the request")
    if not can:
        return PathExpected(alert("handshake_failure"), "client declined the renegotiation")
    if good:
        return PathExpected(OK, "verified by renegotiation", verified=True)
    if none:
        return PathExpected(alert("handshake_failure"), "no certificate in the renegotiation")
    return PathExpected(alert("unknown_ca"), "untrusted issuer in the renegotiation")


def observed_outcome(status: int | None, ended: str | None, alert_name: str | None) -> str:
    """'ok' for a 2xx, 'status:N' for another status, 'alert:NAME', or how it ended."""
    if status is not None:
        return OK if 200 <= status < 300 else f"status:{status}"
    if alert_name:
        return alert(alert_name)
    return ended or "close"


def judge(case: PathCase, observed: str, shown: dict[str, Any] | None) -> list[Problem]:
    """SPEC section 6's ranking: served where a refusal was due is ``security``; refused
    where service was due ``availability``; refused in another form ``protocol``."""
    want = predict(case)
    if want.any_4xx and observed.startswith("status:4"):
        return []
    if observed in (want.outcome, *want.also):
        if observed != OK:
            return []
        verify = (shown or {}).get("SSL_CLIENT_VERIFY")
        wanted = "SUCCESS" if want.verified else "NONE"
        if verify == wanted:
            return []
        severity = SECURITY if case.path != "/" else PROTOCOL
        kind = OUTCOME if case.path != "/" else ENVIRON
        return [Problem(kind, severity, "SSL_CLIENT_VERIFY", wanted, verify)]
    if observed == OK:
        return [Problem(OUTCOME, SECURITY, f"{want.outcome}->ok", want.outcome, OK)]
    if want.outcome == OK:
        return [Problem(OUTCOME, AVAILABILITY, f"ok->{observed}", OK, observed)]
    return [Problem(REFUSAL_FORM, PROTOCOL, want.outcome, want.outcome, observed)]


# -- the grid as state-profile cases (docs/state.md, "Adding a grid") ----------------------

HELD = (
    ("client CA", "ca: whether a certificate is asked for and verified is the question"),
    ("host check", "off: the main matrix's question, tied to the resolver"),
    ("bind", "127.0.0.1"),
    ("server", "one version offered (tls): the mechanism, post-handshake or renegotiation"),
)
TLS_LABELS = {"TLSv1.2": "1.2", "TLSv1.3": "1.3"}


def state_cases(adapters: tuple[str, ...]) -> list[StateCase]:
    """The grid as ``StateCase`` records: one server per policy of ``/`` and version."""
    return [
        StateCase(
            grid="per-path",
            adapter=c.adapter,
            client=c.credential,
            tls=TLS_LABELS[c.tls_version],
            servers=(
                ServerState(
                    c.adapter,
                    HostPolicy(c.base),
                    path_policies=PATH_POLICIES,
                    tls_version=c.tls_version,
                ),
            ),
            steps=(Step(path=c.path),),
            dims=(
                ("root", c.base),
                ("path", PATH_LABELS[c.path]),
                ("answer", c.answer),
            ),
        )
        for c in cases(adapters)
    ]


def from_state_case(case: StateCase) -> PathCase:
    dims = dict(case.dims)
    server = case.servers[0]
    path = next(p for p, label in PATH_LABELS.items() if label == dims["path"])
    return PathCase(
        case.adapter, server.default.policy, path, server.tls_version, dims["answer"], case.client
    )
