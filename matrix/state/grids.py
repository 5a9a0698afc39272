"""The ``sni`` and ``resumption`` grids of the connection-state profile (SPEC section 9).

Each grid varies what its question is about and holds the rest fixed, saying why in
``held`` (shown by ``python -m matrix.state``), as the extended profile's grids do.
"""

from __future__ import annotations

import itertools

from .model import HostPolicy, ServerState, StateCase, Step

# Virtual host names (RFC 2606's reserved .test): the SNI never needs resolving, and the
# server certificate need not carry them (the client checks the chain, not the name).
NAME_A = "a.test"  # configured as the default host
NAME_B = "b.test"  # configured otherwise
UNKNOWN_NAME = "unknown.test"  # no host has it: the default host serves it

IGNORE = HostPolicy("ignore")
OPTIONAL = HostPolicy("optional")
REQUIRED = HostPolicy("required")
REQUIRED_OTHER_CA = HostPolicy("required", "other-ca")

CLIENTS = ("none", "localhost", "wrong-ca")  # no certificate, one from ca, one from other-ca

_LOOPBACK = (
    "bind/connect",
    "127.0.0.1 both: which host serves depends on the SNI, not on the address; the "
    "standard and extended profiles vary the address",
)
_SERVER = ("server_cert", "server: the client's check of the server is the standard profile's")
_CLIENTS = (
    "client",
    "none, localhost (from ca) and wrong-ca (from other-ca): each host's policy and CA admit "
    "a different subset of the three; the other credentials add nothing about the host",
)

# -- sni -------------------------------------------------------------------------------

# (default host = a.test, b.test): a weaker and a stricter default, and two client CAs.
SNI_HOSTS = (
    (IGNORE, REQUIRED),
    (REQUIRED, IGNORE),
    (OPTIONAL, REQUIRED),
    (REQUIRED, REQUIRED_OTHER_CA),
)
SNI_SENT = {"a": NAME_A, "b": NAME_B, "none": None, "unknown": UNKNOWN_NAME}
# The Host header: the SNI's own name (or the address without one), or the other host's.
HOST_HEADERS = ("same", "other")
SNI_HELD = (
    _LOOPBACK,
    _SERVER,
    _CLIENTS,
    (
        "tls",
        "1.3: the host is chosen from the ClientHello the same way in both versions "
        "(the resumption grid runs TLS 1.2 too)",
    ),
    ("session", "none: carrying a session across hosts is the resumption grid's question"),
)


def sni_server(adapter: str, default: HostPolicy, other: HostPolicy) -> ServerState:
    return ServerState(adapter, default, ((NAME_A, default), (NAME_B, other)))


def other_name(sent: str | None) -> str:
    """The Host header naming the other virtual host than the one ``sent`` selects."""
    return NAME_A if sent == NAME_B else NAME_B


def sni_cases(adapters: tuple[str, ...]) -> list[StateCase]:
    cases = []
    for adapter, (default, other), (sni, sent), host, client in itertools.product(
        adapters, SNI_HOSTS, SNI_SENT.items(), HOST_HEADERS, CLIENTS
    ):
        step = Step(sni=sent, host=other_name(sent) if host == "other" else None)
        dims = (("hosts", f"{default.label}/{other.label}"), ("sni", sni), ("host", host))
        server = sni_server(adapter, default, other)
        cases.append(StateCase("sni", adapter, client, "1.3", (server,), (step,), dims))
    return cases


# -- resumption ------------------------------------------------------------------------

# (TLS version, session kind): RFC 5246 session ids, RFC 5077 tickets, RFC 8446 tickets.
SESSIONS = (("1.2", "id"), ("1.2", "ticket"), ("1.3", "ticket"))
# Where the session goes between its two steps.
CARRIES = {
    "same": "the same server, unchanged",
    "reload": "the same server after reload(spec) changed its client CA or policy in place",
    "second-server": "a second server (another process or context) under another policy",
    "sni": "the same server, another SNI virtual host under another policy",
}
# (first policy, second policy) for every carry but "same": a weaker policy, then a
# stricter one; a certificate from ca, then a server that trusts other-ca instead.
CHANGES = ((OPTIONAL, REQUIRED), (IGNORE, REQUIRED), (REQUIRED, REQUIRED_OTHER_CA))
SAME = (OPTIONAL, REQUIRED)
RESUMPTION_HELD = (
    _LOOPBACK,
    _SERVER,
    (
        "client",
        f"{_CLIENTS[1]}; one credential for both steps: a TLS session belongs to the "
        "client context that made it (CPython refuses another's), and the question is "
        "what the session itself carries",
    ),
    ("host", "the SNI's own name: a Host header naming another host is the sni grid's"),
)


def resumption_cases(adapters: tuple[str, ...]) -> list[StateCase]:
    cases = []
    pairs = [("same", p, p) for p in SAME]
    pairs += [(carry, a, b) for carry in CARRIES if carry != "same" for a, b in CHANGES]
    for adapter, (carry, first, second), (tls, kind), client in itertools.product(
        adapters, pairs, SESSIONS, CLIENTS
    ):
        servers, steps = _carry(adapter, carry, first, second)
        dims = (
            ("carry", carry),
            ("from", first.label),
            ("to", second.label),
            ("session", kind),
        )
        cases.append(
            StateCase("resumption", adapter, client, tls, servers, steps, dims, session=kind)
        )
    return cases


def _carry(
    adapter: str, carry: str, first: HostPolicy, second: HostPolicy
) -> tuple[tuple[ServerState, ...], tuple[Step, ...]]:
    """The servers and the two steps of one carry: a fresh handshake, then its session."""
    one = ServerState(adapter, first)
    if carry == "same":
        return (one,), (Step(), Step(offer=0))
    if carry == "reload":
        return (one,), (Step(), Step(reload=ServerState(adapter, second), offer=0))
    if carry == "second-server":
        return (one, ServerState(adapter, second)), (Step(), Step(server=1, offer=0))
    if carry == "sni":
        server = ServerState(adapter, first, ((NAME_A, first), (NAME_B, second)))
        return (server,), (Step(sni=NAME_A), Step(sni=NAME_B, offer=0))
    raise ValueError(f"unknown carry {carry!r}")
