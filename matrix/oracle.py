"""The oracle: what SPEC section 4 says a case should do, and why.

``predict`` is a pure function of the case and recorded facts (resolver probe,
certificate contents, the run's clock). It never talks to a server and never
imports the reference server: it is the independent half of every verdict.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from .credentials import CredentialFacts
from .dimensions import TRUST_ROOT, Case, ServerConfig
from .refusals import (
    BAD_EKU,
    EXPIRED,
    HOST_MISMATCH,
    NO_CERTIFICATE,
    NOT_YET_VALID,
    UNTRUSTED_ISSUER,
    Refusal,
    predict_refusal,
)
from .resolver import ResolverFacts

OK = "ok"
REJECTED = "rejected"
SERVER_CERT_REJECTED = "server-cert-rejected"
SKIPPED = "skipped"

NO_CLIENT_CERT = "none"
# Survival probes try these in order; each is served under some policy on any host.
PROBE_CLIENTS = ("ip", "localhost", NO_CLIENT_CERT)


@dataclass(frozen=True)
class Facts:
    resolver: ResolverFacts
    credentials: dict[str, CredentialFacts]
    now: dt.datetime


@dataclass(frozen=True)
class Expectation:
    outcome: str
    reason: str
    peer: str | None = None  # the address the server will see the client connect from
    cause: str | None = None  # why the client is refused (matrix.refusals' cause vocabulary)
    refusal: Refusal | None = None  # how that refusal reaches the client (SPEC section 6)
    # The CA names the server's CertificateRequest lists (RFC 4514); None: it asks for no
    # certificate. The reference contract lists none (docs/refusals.md, "CA names").
    ca_names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Probe:
    """A client the oracle predicts the server will serve: proof the server survived."""

    client: str
    trust_root: str
    server_hostname: str | None


def predict(case: Case, facts: Facts) -> Expectation:
    peer = reachable_peer(case.bind, case.connect, facts.resolver)
    if peer is None:
        return Expectation(SKIPPED, unreachable_reason(case.bind, case.connect, facts.resolver))
    server_problem = server_cert_problem(case.server_cert, case.connect, facts)
    if server_problem:
        return Expectation(SERVER_CERT_REJECTED, server_problem, peer)
    outcome, reason, cause = client_verdict(case.policy, case.client, peer, facts)
    asks = None if case.policy == "ignore" else ()
    refusal = predict_refusal(cause, case.tls)
    return Expectation(outcome, reason, peer, cause=cause, refusal=refusal, ca_names=asks)


def client_verdict(
    policy: str, client: str, peer: str, facts: Facts
) -> tuple[str, str, str | None]:
    """The server's side of the table: does this policy accept this credential from peer?
    (outcome, one-line reason, cause of a refusal or None)."""
    check, _, host = policy.partition("+")
    if check == "ignore":
        return OK, "ignore: the server does not ask for a client certificate", None
    if client == NO_CLIENT_CERT:
        if check == "required":
            return REJECTED, f"{policy}: no client certificate presented", NO_CERTIFICATE
        return (
            OK,
            f"{policy}: no certificate presented, which optional allows (host check needs one)",
            None,
        )
    cred = facts.credentials[client]
    if cred.root != TRUST_ROOT:
        issuer = cred.root or "an unknown CA"
        reason = f"{policy}: certificate chains to {issuer}, not the client CA {TRUST_ROOT}"
        return REJECTED, reason, UNTRUSTED_ISSUER
    if cred.not_after < facts.now:
        reason = f"{policy}: certificate expired on {cred.not_after:%Y-%m-%d}"
        return REJECTED, reason, EXPIRED
    if cred.not_before > facts.now:
        reason = f"{policy}: certificate not valid before {cred.not_before:%Y-%m-%d}"
        return REJECTED, reason, NOT_YET_VALID
    if not cred.client_auth_eku:
        reason = f"{policy}: certificate's EKU does not allow client authentication"
        return REJECTED, reason, BAD_EKU
    if not host:
        return OK, f"{policy}: certificate verifies against {TRUST_ROOT}", None
    outcome, reason = host_verdict(policy, cred, peer, facts.resolver)
    return outcome, reason, HOST_MISMATCH if outcome == REJECTED else None


def host_verdict(
    policy: str, cred: CredentialFacts, peer: str, resolver: ResolverFacts
) -> tuple[str, str]:
    ip = normalise(peer)
    if ip in cred.ips:
        return OK, f"{policy}: IP-ID {ip} equals the peer address"
    names = resolver.reverse.get(ip, [])
    for name in names:
        for pattern in cred.dns:
            if dns_matches(pattern, name):
                return OK, f"{policy}: DNS-ID {pattern} matches {name}, the peer's confirmed name"
    ids = ", ".join([*(f"DNS:{d}" for d in cred.dns), *(f"IP:{i}" for i in cred.ips)]) or "no SAN"
    shown = ", ".join(names) or "none"
    return REJECTED, f"{policy}: {ids} names neither peer {ip} nor its confirmed names ({shown})"


def dns_matches(pattern: str, name: str) -> bool:
    """RFC 6125: exact, or a whole left-most '*' label standing for exactly one label."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern.startswith("*."):
        first, _, rest = name.partition(".")
        return bool(first) and rest == pattern[2:] and _is_dns(name)
    return pattern == name


def server_cert_problem(server_cert: str, connect: str, facts: Facts) -> str | None:
    """Why a client trusting ``ca`` and checking ``connect`` refuses the server, if it does."""
    cred = facts.credentials[server_cert]
    if cred.root != TRUST_ROOT:
        issuer = cred.root or "an unknown CA"
        return f"{server_cert} is issued by {issuer}; the client trusts {TRUST_ROOT}"
    if _is_ip(connect):
        if normalise(connect) not in cred.ips:
            return f"{server_cert} has no IP-ID {connect}"
    elif not any(dns_matches(p, connect) for p in cred.dns):
        return f"{server_cert} has no DNS-ID matching {connect} ({', '.join(cred.dns) or 'none'})"
    return None


def reachable_peer(bind: str, connect: str, resolver: ResolverFacts) -> str | None:
    """The first address of ``connect`` (in client order) that a server bound to ``bind`` hears."""
    listening = _listening(bind, resolver)
    for address in resolver.forward.get(connect, []) if not _is_ip(connect) else [connect]:
        if _hears(listening, address, resolver):
            return address
    return None


def unreachable_reason(bind: str, connect: str, resolver: ResolverFacts) -> str:
    listening = _listening(bind, resolver) or ["nothing"]
    targets = [connect] if _is_ip(connect) else resolver.forward.get(connect, [])
    return (
        f"bind {bind} listens on {', '.join(listening)}; connect {connect} "
        f"goes to {', '.join(targets) or 'no address'}: they cannot meet on this host"
    )


def survival_probe(config: ServerConfig, connect: str, facts: Facts) -> Probe | None:
    """A client predicted to be served by this server, or None if the set has none."""
    peer = reachable_peer(config.bind, connect, facts.resolver)
    if peer is None:
        return None
    server = facts.credentials[config.server_cert]
    hostname = None
    if server_cert_problem(config.server_cert, connect, facts):
        names = [*server.dns, *server.ips]
        if server.root is None or not names:
            return None
        hostname = names[0]
    for client in PROBE_CLIENTS:
        if client_verdict(config.policy, client, peer, facts)[0] == OK:
            return Probe(client, server.root or TRUST_ROOT, hostname)
    return None


def normalise(address: str) -> str:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def _listening(bind: str, resolver: ResolverFacts) -> list[str]:
    if _is_ip(bind):
        return [bind]
    passive = resolver.passive.get(bind, [])
    return passive[:1]  # a server binds the first address the passive lookup yields


def _hears(listening: list[str], address: str, resolver: ResolverFacts) -> bool:
    family6 = ":" in address
    if family6 and not resolver.ipv6_loopback:
        return False
    for bound in listening:
        if bound == "0.0.0.0" and not family6:
            return True
        if bound == "::" and (resolver.ipv6_loopback or not family6):
            return True
        if bound == address:
            return True
    return False


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_dns(name: str) -> bool:
    return not _is_ip(name)
