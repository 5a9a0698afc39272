"""The *request* grid (SPEC section 9, "What a request cannot change"): data and oracle.

``HTTPS``, ``wsgi.url_scheme``, ``REMOTE_ADDR`` and every ``SSL_*`` come from the
connection alone. Each case sends one request that tries to change them, from one
peer address, with one client credential; the oracle predicts those values from the
case and the certificate files only (never from a server) and ``judge`` compares.

Held fixed, and why: the policy is ``optional`` with client CA ``ca`` and no host
check (both a client with a certificate and one without are served, so a forged
``SSL_CLIENT_VERIFY: SUCCESS`` next to no certificate is visible, and a host check
would tie the case to the resolver); one server per adapter for the whole grid
(nothing here depends on the server's state); the bind is 127.0.0.1 (the peer
addresses 127.0.0.2 and 127.0.0.1 both reach it on Linux loopback).

Peer addresses (SPEC section 9): from ``127.0.0.2`` no server has been told of a
proxy, so a request that changes a connection fact is ``security`` (kind
``request-override``). From ``127.0.0.1`` some servers trust a local proxy by
default (gunicorn's ``forwarded_allow_ips``, uvicorn's ``--forwarded-allow-ips``
both default to it): the same change made by a header a proxy sets is a finding of
its own kind, ``local-proxy-trust``, severity ``visibility`` (the application is
told what a local peer claims; a peer from the network cannot do it) — decided
here, docs/state-request.md. A change made by what no proxy sets (an absolute-form
target, a Host, a header named like the variable) is ``request-override`` from any peer.

A server may refuse a forged request (4xx, or close): that changes nothing, and
passes. An unforged request (``baseline``) must be served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from matrix.problems import (
    AVAILABILITY,
    LOCAL_PROXY_TRUST,
    OUTCOME,
    REQUEST_OVERRIDE,
    SECURITY,
    VISIBILITY,
    Problem,
)

from .model import HostPolicy, ServerState, StateCase, Step

# Values no connection can ever carry: if one of them shows in a connection key, a request
# header (or the request target) put it there.
FORGED_ADDR = "10.9.8.7"
FORGED_HOST = "forged.example"
FORGED_DN = "CN=forged,O=forged"
FORGED_TOKENS = (FORGED_ADDR, FORGED_HOST, "forged", "evil")
NOT_A_PROXY = "127.0.0.2"
LOCAL = "127.0.0.1"
SOURCES = (NOT_A_PROXY, LOCAL)
CREDENTIALS = ("localhost", "none")  # a verified client, and one with no certificate
POLICY = "optional"
CONNECTION_KEYS = ("HTTPS", "wsgi.url_scheme", "REMOTE_ADDR")


@dataclass(frozen=True)
class Forgery:
    """One way a request tries to change what the connection says."""

    id: str
    method: str = "GET"
    target: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    host: str | None = None  # None: the server's own name (localhost:PORT)
    # A header a reverse proxy sets (X-Forwarded-*, Forwarded, client-certificate headers):
    # from 127.0.0.1 a server may trust it as a local proxy's (a finding of its own kind);
    # anything else (a request target, a Host, a header named like a variable) is never
    # a proxy's to set, whatever the peer.
    proxy: bool = True


FORGERIES: tuple[Forgery, ...] = (
    Forgery("baseline", proxy=False),
    Forgery("x-forwarded-proto", headers=(("X-Forwarded-Proto", "http"),)),
    Forgery("x-forwarded-for", headers=(("X-Forwarded-For", FORGED_ADDR),)),
    Forgery("x-real-ip", headers=(("X-Real-IP", FORGED_ADDR),)),
    Forgery("x-forwarded-host", headers=(("X-Forwarded-Host", FORGED_HOST),)),
    Forgery("x-forwarded-ssl", headers=(("X-Forwarded-Ssl", "off"),)),
    Forgery("x-forwarded-protocol", headers=(("X-Forwarded-Protocol", "http"),)),
    Forgery("x-forwarded-scheme", headers=(("X-Forwarded-Scheme", "http"),)),
    Forgery(
        "forwarded", headers=(("Forwarded", f'for="{FORGED_ADDR}";proto=http;host={FORGED_HOST}'),)
    ),
    Forgery(
        "x-forwarded-all",
        headers=(
            ("X-Forwarded-For", FORGED_ADDR),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Host", FORGED_HOST),
            ("X-Forwarded-Port", "80"),
        ),
    ),
    Forgery(
        "x-forwarded-client-cert",
        headers=(
            (
                "X-Forwarded-Client-Cert",
                f'By=spiffe://forged;Hash=00;Subject="{FORGED_DN}";URI=spiffe://forged',
            ),
        ),
    ),
    Forgery(
        "x-ssl-client",
        headers=(
            ("X-SSL-Client-Verify", "SUCCESS"),
            ("X-SSL-Client-S-DN", FORGED_DN),
            ("X-SSL-Client-Cert", "forged"),
            ("X-Client-Verify", "SUCCESS"),
            ("X-Client-DN", FORGED_DN),
        ),
    ),
    Forgery(
        "ssl-variables-as-headers",  # underscores (many servers drop them) and dashes
        proxy=False,
        headers=(
            ("SSL_CLIENT_VERIFY", "SUCCESS"),
            ("SSL_CLIENT_S_DN", FORGED_DN),
            ("SSL-Client-Verify", "SUCCESS"),
            ("SSL-Client-S-DN", FORGED_DN),
            ("SSL_PROTOCOL", "forged"),
            ("HTTPS", "off"),
            ("REMOTE_ADDR", FORGED_ADDR),
            ("Remote-Addr", FORGED_ADDR),
            ("wsgi.url_scheme", "http"),
        ),
    ),
    Forgery(
        "absolute-options-http", method="OPTIONS", target=f"http://{FORGED_HOST}/", proxy=False
    ),
    Forgery(
        "absolute-options-evil", method="OPTIONS", target=f"evil://{FORGED_HOST}/", proxy=False
    ),
    Forgery("absolute-get-http", target=f"http://{FORGED_HOST}/", proxy=False),
    Forgery("host-other", host=FORGED_HOST, proxy=False),
)


@dataclass(frozen=True)
class RequestCase:
    adapter: str
    forgery: Forgery
    source: str
    credential: str

    @property
    def id(self) -> str:
        return (
            f"request-{self.adapter}-{self.forgery.id}-from:{self.source}-client:{self.credential}"
        )


def cases(adapters: tuple[str, ...]) -> list[RequestCase]:
    """Every request case for these adapters: forgeries x peer addresses x credentials."""
    return [
        RequestCase(adapter, forgery, source, credential)
        for adapter in adapters
        for forgery in FORGERIES
        for source in SOURCES
        for credential in CREDENTIALS
    ]


@dataclass(frozen=True)
class Expected:
    """What the application must be told, whatever the request says."""

    served: bool  # True: must be served (baseline); False: served or refused both pass
    values: dict[str, str]  # connection keys and their only right value, where shown
    client_cert: bool  # whether SSL_CLIENT_* certificate variables may appear at all


def predict(case: RequestCase) -> Expected:
    """From the case alone (SPEC sections 5 and 9): the connection's facts."""
    verified = case.credential != "none"
    return Expected(
        served=case.forgery.id == "baseline",
        values={
            "HTTPS": "on",
            "wsgi.url_scheme": "https",
            "REMOTE_ADDR": case.source,
            "SSL_CLIENT_VERIFY": "SUCCESS" if verified else "NONE",
        },
        client_cert=verified,
    )


def judge(case: RequestCase, status: int | None, shown: dict[str, Any] | None) -> list[Problem]:
    """Problems of one case: ``status`` is the HTTP status (None: no response), ``shown``
    the application's JSON (None: no JSON body, e.g. a server's own OPTIONS answer).

    Only keys the application shows are judged: a key a target never shows cannot be
    changed through it (the case's observation lists what was shown).
    """
    want = predict(case)
    served = status is not None and 200 <= status < 300
    if not served:
        if want.served:
            return [Problem(OUTCOME, AVAILABILITY, "baseline-not-served", 200, status)]
        return []
    if shown is None:
        return []
    changed: list[tuple[str, Any, Any]] = []
    for key, value in want.values.items():
        if key in shown and shown[key] != value:
            changed.append((key, value, shown[key]))
    for key, value in sorted(shown.items()):
        if key in want.values or not (key.startswith("SSL_") or key in CONNECTION_KEYS):
            continue
        cert_key = key.startswith("SSL_CLIENT_")
        if cert_key and not want.client_cert and value != "":  # mod_ssl: "" for no certificate
            changed.append((key, None, value))
        elif any(token in str(value) for token in FORGED_TOKENS):
            changed.append((key, "a value from the connection", value))
    local_proxy = case.source == LOCAL and case.forgery.proxy
    kind, severity = (
        (LOCAL_PROXY_TRUST, VISIBILITY) if local_proxy else (REQUEST_OVERRIDE, SECURITY)
    )
    return [Problem(kind, severity, key, expected, observed) for key, expected, observed in changed]


# -- the grid as state-profile cases (docs/state.md, "Adding a grid") ----------------------

TLS = "1.3"  # the client's version: what a request can change does not depend on it
HELD = (
    ("policy", "optional with client CA ca: a client with and without a certificate is served"),
    ("host check", "off: it would tie the case to the resolver, not to the request"),
    ("bind", "127.0.0.1: both peer addresses reach it on Linux loopback"),
    ("tls", f"{TLS}: nothing a request sends depends on the TLS version"),
)


def state_cases(adapters: tuple[str, ...]) -> list[StateCase]:
    """The grid as ``StateCase`` records: one step, the forgery's request, from ``source``."""
    return [
        StateCase(
            grid="request",
            adapter=c.adapter,
            client=c.credential,
            tls=TLS,
            servers=(ServerState(c.adapter, HostPolicy(POLICY)),),
            steps=(
                Step(
                    host=c.forgery.host,
                    path=c.forgery.target,
                    headers=c.forgery.headers,
                    method=c.forgery.method,
                    source=c.source,
                ),
            ),
            dims=(("forgery", c.forgery.id), ("from", c.source)),
        )
        for c in cases(adapters)
    ]


def from_state_case(case: StateCase) -> RequestCase:
    """The grid's own case back from its ``StateCase``."""
    dims = dict(case.dims)
    forgery = next(f for f in FORGERIES if f.id == dims["forgery"])
    return RequestCase(case.adapter, forgery, dims["from"], case.client)
