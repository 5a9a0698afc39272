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
from .dimensions import POLICY_SETTINGS, TRUST_ROOT, Case, ServerConfig
from .refusals import Refusal, predict_refusal
from .resolver import ResolverFacts

OK = "ok"
REJECTED = "rejected"
SERVER_CERT_REJECTED = "server-cert-rejected"
SKIPPED = "skipped"
# The server refused its configuration at start-up: never observed on a client, and
# an accepted alternative only where SPEC section 8 says refusing to start passes.
NOT_STARTED = "not-started"

# Why a client is refused (CONTRACTS: the cause vocabulary shared with matrix.refusals).
NO_CERTIFICATE = "no-certificate"
UNTRUSTED_ISSUER = "untrusted-issuer"
EXPIRED = "expired"
NOT_YET_VALID = "not-yet-valid"
BAD_EKU = "bad-eku"
REVOKED = "revoked"
HOST_MISMATCH = "host-mismatch"
NO_TRUST_STORE = "no-trust-store"
NONCONFORMING = "nonconforming"  # refused only by a strict (X509_STRICT) verifier

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
    cause: str | None = None  # why the client is refused (the cause vocabulary above)
    # Other outcomes that pass too (SPEC section 8: refusing to start, NOT_STARTED, is
    # as good as refusing every certificate when verification has no trust store).
    alternatives: tuple[str, ...] = ()
    refusal: Refusal | None = None  # how a refusal reaches the client (SPEC section 6)
    # The CA names the server's CertificateRequest lists (RFC 4514); None: it asks for no
    # certificate. The reference contract lists none (docs/refusals.md, "CA names").
    ca_names: tuple[str, ...] | None = None

    def accepts(self, observed: str | None) -> bool:
        return observed == self.outcome or observed in self.alternatives


@dataclass(frozen=True)
class Verdict:
    """The server's side of one case: outcome, one-line reason, cause, alternatives."""

    outcome: str
    reason: str
    cause: str | None = None
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class Probe:
    """A client the oracle predicts the server will serve: proof the server survived."""

    client: str
    trust_root: str
    server_hostname: str | None


def predict(case: Case, facts: Facts) -> Expectation:
    address = reachable_peer(case.bind, case.connect, facts.resolver)
    if address is None:
        return Expectation(SKIPPED, unreachable_reason(case.bind, case.connect, facts.resolver))
    peer = seen_peer(case.bind, address)
    server_problem = server_cert_problem(case.server_cert, case.connect, facts)
    if server_problem:
        return Expectation(SERVER_CERT_REJECTED, server_problem, peer)
    v = server_verdict(case.config, case.client, peer, facts)
    refusal = predict_refusal(v.cause, case.tls)
    asks = None if case.config.client_check == "ignore" else ()
    return Expectation(v.outcome, v.reason, peer, v.cause, v.alternatives, refusal, asks)


def client_verdict(policy: str, client: str, peer: str, facts: Facts) -> tuple[str, str]:
    """The server's side of the table: does this policy accept this credential from peer?
    (The standard trust configuration: client CA ``ca``, no chain file.)"""
    v = server_verdict(ServerConfig("builtin", policy, "127.0.0.1", "server"), client, peer, facts)
    return v.outcome, v.reason


def trusted_roots(config: ServerConfig) -> tuple[str, ...]:
    """The CAs a server configured this way must trust for client certificates.

    Only the client CA file counts: a certificate_chain file is what the server
    sends, never a trust source (SPEC section 8)."""
    return config.client_cas


def server_verdict(config: ServerConfig, client: str, peer: str, facts: Facts) -> Verdict:
    """Does a server configured this way accept this credential from ``peer``, and why."""
    policy = config.policy
    check, host = POLICY_SETTINGS[policy]
    if check == "ignore":
        return Verdict(OK, "ignore: the server does not ask for a client certificate")
    roots = trusted_roots(config)
    if not roots:
        return _no_trust_store(policy, check, client)
    if client == NO_CLIENT_CERT:
        if check == "required":
            return Verdict(REJECTED, f"{policy}: no client certificate presented", NO_CERTIFICATE)
        return Verdict(
            OK, f"{policy}: no certificate presented, which optional allows (host check needs one)"
        )
    cred = facts.credentials[client]
    if cred.root not in roots:
        issuer = cred.root or "an unknown CA"
        reason = f"{policy}: certificate chains to {issuer}, not the client CA {'+'.join(roots)}"
        if cred.root is not None and cred.root == config.certificate_chain:
            reason += " (the certificate_chain file is not a trust source, SPEC section 8)"
        return Verdict(REJECTED, reason, UNTRUSTED_ISSUER)
    if not cred.client_auth_eku:
        # OpenSSL checks the purpose (ssl_client, X509_check_purpose) while building
        # the chain, before revocation and dates.
        return Verdict(
            REJECTED,
            f"{policy}: certificate's EKU does not allow client authentication "
            "(OpenSSL purpose sslclient)",
            BAD_EKU,
        )
    if cred.nonconforming:
        # RFC 5280 makes the chain non-conforming; OpenSSL refuses it only when asked to
        # verify strictly (X509_V_FLAG_X509_STRICT: the reference server, Python 3.13's
        # default contexts), so admitting it is no failure.
        return Verdict(
            REJECTED,
            f"{policy}: a strict verifier refuses the chain to {cred.root} "
            f"({'; '.join(cred.nonconforming)}, RFC 5280 section 4.2.1); "
            "a lenient one admits it, which also passes",
            NONCONFORMING,
            (OK,),
        )
    if config.crl is not None and config.crl in cred.revoked_by:
        return Verdict(REJECTED, f"{policy}: certificate is revoked by {config.crl}'s CRL", REVOKED)
    if cred.not_after < facts.now:
        return Verdict(
            REJECTED, f"{policy}: certificate expired on {cred.not_after:%Y-%m-%d}", EXPIRED
        )
    if cred.not_before > facts.now:
        return Verdict(
            REJECTED,
            f"{policy}: certificate not valid before {cred.not_before:%Y-%m-%d}",
            NOT_YET_VALID,
        )
    notes = []
    if cred.intermediates:
        notes.append(f"chain through the {cred.intermediates} intermediate(s) the client sends")
    if cred.revoked_by:
        notes.append(f"revoked by {', '.join(cred.revoked_by)}'s CRL, which is not configured")
    note = f" ({'; '.join(notes)})" if notes else ""
    if not host:
        return Verdict(OK, f"{policy}: certificate verifies against {cred.root}{note}")
    outcome, reason = host_verdict(policy, cred, peer, facts.resolver)
    if outcome == REJECTED:
        return Verdict(outcome, reason, HOST_MISMATCH)
    return Verdict(outcome, reason + note)


def _no_trust_store(policy: str, check: str, client: str) -> Verdict:
    """SPEC section 8: verification without a trust store. Refusing to start passes;
    so does refusing every certificate; admitting one is a security failure."""
    alternatives = (NOT_STARTED,)
    if client == NO_CLIENT_CERT:
        if check == "required":
            return Verdict(
                REJECTED,
                f"{policy} with no client CA: no client certificate presented "
                "(refusing to start also passes)",
                NO_CERTIFICATE,
                alternatives,
            )
        return Verdict(
            OK,
            f"{policy} with no client CA: no certificate presented, which optional allows "
            "(refusing to start also passes)",
            None,
            alternatives,
        )
    return Verdict(
        REJECTED,
        f"{policy} with no client CA: no certificate can verify; refusing it or refusing "
        "to start passes, admitting it is a security failure (SPEC section 8)",
        NO_TRUST_STORE,
        alternatives,
    )


def host_verdict(
    policy: str, cred: CredentialFacts, peer: str, resolver: ResolverFacts
) -> tuple[str, str]:
    ip = normalise(peer)
    seen = ip if ip == peer else f"{ip} (the server sees {peer}, an IPv4-mapped address)"
    if ip in cred.ips:
        return OK, f"{policy}: IP-ID {ip} equals the peer address {seen}"
    if not cred.subject_alt_name:
        return REJECTED, (
            f"{policy}: no subjectAltName; the Common Name is never matched against a host "
            "(RFC 6125 section 6.4.4 as service_identity applies it)"
        )
    names = resolver.reverse.get(ip, [])
    for name in names:
        for pattern in cred.dns:
            if dns_matches(pattern, name):
                return OK, f"{policy}: DNS-ID {pattern} matches {name}, the peer's confirmed name"
    ids = ", ".join([*(f"DNS:{d}" for d in cred.dns), *(f"IP:{i}" for i in cred.ips)]) or "no SAN"
    shown = ", ".join(names) or "none"
    return REJECTED, f"{policy}: {ids} names neither peer {seen} nor its confirmed names ({shown})"


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


def seen_peer(bind: str, address: str) -> str:
    """The peer address a server bound to ``bind`` sees for a client connecting to
    ``address``: an IPv4 client of a dual-stack ``::`` socket arrives IPv4-mapped
    (RFC 4291 section 2.5.5.2, ``::ffff:127.0.0.1``)."""
    if bind == "::" and ":" not in address:
        return f"::ffff:{address}"
    return address


def unreachable_reason(bind: str, connect: str, resolver: ResolverFacts) -> str:
    listening = _listening(bind, resolver) or ["nothing"]
    targets = [connect] if _is_ip(connect) else resolver.forward.get(connect, [])
    reason = (
        f"bind {bind} listens on {', '.join(listening)}; connect {connect} "
        f"goes to {', '.join(targets) or 'no address'}: they cannot meet on this host"
    )
    if not resolver.ipv6_loopback and any(":" in a for a in [*listening, *targets]):
        reason += " (it has no working IPv6 loopback ::1)"
    return reason


def survival_probe(config: ServerConfig, connect: str, facts: Facts) -> Probe | None:
    """A client predicted to be served by this server, or None if the set has none."""
    address = reachable_peer(config.bind, connect, facts.resolver)
    if address is None:
        return None
    peer = seen_peer(config.bind, address)
    server = facts.credentials[config.server_cert]
    hostname = None
    if server_cert_problem(config.server_cert, connect, facts):
        names = [*server.dns, *server.ips]
        if server.root is None or not names:
            return None
        hostname = names[0]
    for client in PROBE_CLIENTS:
        if server_verdict(config, client, peer, facts).outcome == OK:
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
        if ":" in bound and not resolver.ipv6_loopback:
            continue  # no IPv6 here: the server cannot bind it
        if bound == "0.0.0.0" and not family6:
            return True
        if bound == "::":  # dual stack: Cheroot clears IPV6_V6ONLY; Linux's default is off
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
