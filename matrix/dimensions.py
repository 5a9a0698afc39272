"""The matrix as data (SPEC section 3): dimensions, grids, profiles, and case ids.

Adding a value to a dimension, or a grid, is a one-line change here; the
oracle, the runner and the reports are driven by what this module yields.

Two profiles: ``standard`` (the 460 cases; their ids never change) and
``extended`` (IPv6, both TLS versions, the extended credentials, revocation and
configuration faults). An extended grid is not a full cross product: each one
varies the dimensions its question is about and holds the others fixed, and
says why in ``Grid.held`` (shown by ``python -m matrix.dimensions``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

ADAPTERS = ("builtin", "pyopenssl")
POLICIES = ("ignore", "optional", "optional+host", "required", "required+host")
BINDS = ("localhost", "127.0.0.1", "0.0.0.0")
CONNECTS = ("localhost", "127.0.0.1")
CLIENTS = ("none", "localhost", "ip", "wildcard", "wrong-host", "wrong-ca", "expired")
BAD_SERVER_CERTS = ("server-wrong-host", "server-wrong-ca")

# Extended profile (SPEC section 3, "Extended profile").
IPV6_BINDS = ("::1", "::")
IPV6_CONNECTS = ("::1",)
TLS_VERSIONS = ("1.2", "1.3")
CRL_POLICIES = ("optional+crl", "required+crl")  # the policy plus a CRL of the client CA
EXTENDED_CLIENTS = (
    "ipv6",
    "chain",
    "no-client-eku",
    "not-yet-valid",
    "cn-only",
    "revoked",
    "legacy",
)
# The hard-DN clients (repeated OU, RFC 2253 specials, UTF-8, CR/LF, multi-valued RDN,
# emailAddress, odd serials) are made by certs_gen for the environ checks (SPEC section 5).
HARD_DN_CLIENTS: tuple[str, ...] = (
    "dn-repeated-ou",
    "dn-specials",
    "dn-utf8",
    "dn-control",
    "dn-multi-rdn",
    "dn-email",
    "serial-negative",
    "serial-leading-zero",
    "dn-every-attribute",
    "dn-string-types",
    "not-after-odd",
)

# One client and one server per key type besides ECDSA P-256, which every other credential
# holds (SPEC section 1; certs_gen.keys.KEY_TYPES).
OTHER_KEY_TYPES = ("rsa-2048", "rsa-3072", "ecdsa-p384", "ed25519", "rsa-pss")
KEY_TYPE_CLIENTS = tuple(f"key-{k}" for k in OTHER_KEY_TYPES)
KEY_TYPE_SERVERS = tuple(f"server-{k}" for k in OTHER_KEY_TYPES)

# policy id -> (client_check, client_check_host), SPEC section 2
POLICY_SETTINGS = {
    "ignore": ("ignore", False),
    "optional": ("optional", False),
    "optional+host": ("optional", True),
    "required": ("required", False),
    "required+host": ("required", True),
    "optional+crl": ("optional", False),
    "required+crl": ("required", False),
}

TRUST_ROOT = "ca"  # the client CA on the server, and the client's trust root

# What the server trusts for client certificates (SPEC section 8). The client CA
# file and, where it matters, the server's certificate_chain file:
TRUSTS = {
    "ca": "client CA file: ca",
    "no-ca": "no client CA at all, while verification is asked for",
    "ca+legacy-ca": "client CA file: a bundle of ca and the older-style legacy-ca",
    "ca-chain:other-ca": "client CA file: ca; certificate_chain file: other-ca's certificate",
    # The connection-state profile's second client CA (a virtual host or a reload that
    # trusts another CA than ca): wrong-ca's issuer.
    "other-ca": "client CA file: other-ca",
}
# trust -> (the client CA file: a credential or bundle id, or None; the CAs in that file)
CLIENT_CA_FILES: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "ca": (TRUST_ROOT, (TRUST_ROOT,)),
    "no-ca": (None, ()),
    "ca+legacy-ca": ("ca+legacy-ca", (TRUST_ROOT, "legacy-ca")),
    "ca-chain:other-ca": (TRUST_ROOT, (TRUST_ROOT,)),
    "other-ca": ("other-ca", ("other-ca",)),
}
CRL_OF = {"optional+crl": TRUST_ROOT, "required+crl": TRUST_ROOT}  # policy -> CA whose CRL


@dataclass(frozen=True)
class Grid:
    """One block of the matrix: every combination of the listed values.

    ``held`` pairs each dimension the grid holds at one value with the reason it
    plays no part in what the grid asks (SPEC section 3).
    """

    name: str
    adapter: tuple[str, ...]
    policy: tuple[str, ...]
    bind: tuple[str, ...]
    connect: tuple[str, ...]
    client: tuple[str, ...]
    server_cert: tuple[str, ...]
    trust: tuple[str, ...] = ("ca",)
    tls: tuple[str, ...] = ("1.3",)
    held: tuple[tuple[str, str], ...] = ()
    profile: str = "standard"


GRIDS = (
    Grid("client-auth", ADAPTERS, POLICIES, BINDS, CONNECTS, CLIENTS, ("server",)),
    Grid(
        "server-cert",
        ADAPTERS,
        POLICIES,
        ("0.0.0.0",),
        CONNECTS,
        ("localhost",),
        BAD_SERVER_CERTS,
        held=(("bind", "the bind address plays no part in the client's check of the server"),),
    ),
)

_LOOPBACK4 = (
    "bind/connect",
    "127.0.0.1 both: the peer address only matters to the host check, which the ipv6 "
    "grid and the standard profile vary; 127.0.0.1 reaches on every host",
)
_GOOD_SERVER = ("server_cert", "server: the bad server certificates have their own grid")
_CA_TRUST = ("trust", "ca: what the server trusts is the configuration grid's question")

EXTENDED_GRIDS = (
    Grid(
        "ipv6",
        ADAPTERS,
        POLICIES,
        IPV6_BINDS,
        (*CONNECTS, *IPV6_CONNECTS),
        ("none", "localhost", "ip", "ipv6", "wildcard", "wrong-host"),
        ("server",),
        held=(
            ("tls", "1.3: the address family plays no part in version negotiation"),
            (
                "client",
                "the credentials whose verdict depends on the peer address; the others are "
                "refused or admitted whatever the address (credentials grid)",
            ),
            _GOOD_SERVER,
            _CA_TRUST,
        ),
        profile="extended",
    ),
    Grid(
        "ipv6-connect",
        ADAPTERS,
        POLICIES,
        BINDS,
        IPV6_CONNECTS,
        ("none", "localhost", "ip", "ipv6"),
        ("server",),
        held=(
            ("connect", "::1: the grid's question; the standard profile connects over IPv4"),
            ("tls", "1.3: the address family plays no part in version negotiation"),
            (
                "client",
                "those that tell an IPv6 peer from an IPv4 one; most pairs are skipped "
                "here (an IPv4 bind never hears ::1) and run where localhost is ::1",
            ),
            _GOOD_SERVER,
            _CA_TRUST,
        ),
        profile="extended",
    ),
    Grid(
        "credentials",
        ADAPTERS,
        POLICIES,
        ("127.0.0.1",),
        ("127.0.0.1",),
        (*CLIENTS, *EXTENDED_CLIENTS),
        ("server",),
        tls=TLS_VERSIONS,
        held=(_LOOPBACK4, _GOOD_SERVER, _CA_TRUST),
        profile="extended",
    ),
    Grid(
        "revocation",
        ADAPTERS,
        CRL_POLICIES,
        ("127.0.0.1",),
        ("127.0.0.1",),
        tuple(c for c in (*CLIENTS, *EXTENDED_CLIENTS) if c != "chain"),
        ("server",),
        tls=TLS_VERSIONS,
        held=(
            _LOOPBACK4,
            _GOOD_SERVER,
            _CA_TRUST,
            (
                "client",
                "all but chain: the set has no CRL from chain's intermediate CA, so a "
                "leaf CRL check refuses it for that (unable to get certificate CRL), "
                "not for anything about the server",
            ),
        ),
        profile="extended",
    ),
    Grid(
        "configuration",
        ADAPTERS,
        POLICIES,
        ("127.0.0.1",),
        ("127.0.0.1",),
        ("none", "localhost", "wrong-ca", "expired", "legacy"),
        ("server",),
        trust=("no-ca", "ca+legacy-ca", "ca-chain:other-ca"),
        held=(
            _LOOPBACK4,
            _GOOD_SERVER,
            ("tls", "1.3: a trust store does not depend on the version"),
            (
                "client",
                "one from ca, one from the older-style legacy-ca, one from neither (wrong-ca, "
                "whose CA is the chain file's), one refused for its dates, and none",
            ),
        ),
        profile="extended",
    ),
    Grid(
        "distinguished-names",
        ADAPTERS,
        ("optional", "required"),
        ("127.0.0.1",),
        ("127.0.0.1",),
        HARD_DN_CLIENTS,
        ("server",),
        held=(
            _LOOPBACK4,
            _GOOD_SERVER,
            _CA_TRUST,
            (
                "policy",
                "optional and required, where a verified certificate's variables reach the "
                "application; ignore shows none, and a host check adds nothing about the DN",
            ),
            ("tls", "1.3: how a DN is printed does not depend on the version"),
        ),
        profile="extended",
    ),
    Grid(
        "key-types",
        ADAPTERS,
        POLICIES,
        ("127.0.0.1",),
        ("127.0.0.1",),
        KEY_TYPE_CLIENTS,
        ("server",),
        tls=TLS_VERSIONS,
        held=(
            _LOOPBACK4,
            _GOOD_SERVER,
            _CA_TRUST,
            (
                "client",
                "one per key type, each like localhost (issued by ca for DNS localhost) but "
                "for its key; localhost itself is ECDSA P-256 (credentials grid)",
            ),
        ),
        profile="extended",
    ),
    Grid(
        "server-key-types",
        ADAPTERS,
        ("required",),
        ("127.0.0.1",),
        ("127.0.0.1",),
        ("localhost",),
        KEY_TYPE_SERVERS,
        tls=TLS_VERSIONS,
        held=(
            _LOOPBACK4,
            _CA_TRUST,
            (
                "policy",
                "required: the server's key signs its side of the handshake whatever it asks "
                "of the client; required makes the client sign too",
            ),
            ("client", "localhost: the client's own key is the key-types grid's question"),
        ),
        profile="extended",
    ),
    Grid(
        "server-cert-ipv6",
        ADAPTERS,
        POLICIES,
        ("::",),
        IPV6_CONNECTS,
        ("localhost",),
        BAD_SERVER_CERTS,
        tls=TLS_VERSIONS,
        held=(
            ("connect", "::1: the server's IP-ID ::1 is the question; IPv4 is standard"),
            ("bind", "the bind address plays no part in the client's check of the server"),
            ("client", "localhost: the client's own certificate is not in question"),
            _CA_TRUST,
        ),
        profile="extended",
    ),
)

PROFILES: dict[str, tuple[Grid, ...]] = {"standard": GRIDS, "extended": EXTENDED_GRIDS}


@dataclass(frozen=True, order=True)
class ServerConfig:
    """What a server under test is started with; cases sharing one share the server."""

    adapter: str
    policy: str
    bind: str
    server_cert: str
    trust: str = "ca"

    @property
    def client_check(self) -> str:
        return POLICY_SETTINGS[self.policy][0]

    @property
    def check_host(self) -> bool:
        return POLICY_SETTINGS[self.policy][1]

    @property
    def crl(self) -> str | None:
        """Id of the CA whose CRL the server checks, or None."""
        return CRL_OF.get(self.policy)

    @property
    def client_ca(self) -> str | None:
        """The client CA file, as a credential id or bundle id; None without one."""
        return CLIENT_CA_FILES[self.trust][0]

    @property
    def client_cas(self) -> tuple[str, ...]:
        """The CAs the client CA file holds (none without one)."""
        return CLIENT_CA_FILES[self.trust][1]

    @property
    def certificate_chain(self) -> str | None:
        """Id of the certificate the server's certificate_chain file holds, or None."""
        _, _, chain = self.trust.partition("-chain:")
        return chain or None

    @property
    def key(self) -> str:
        key = f"{self.adapter}-{self.policy}-bind:{self.bind}-cert:{self.server_cert}"
        return key if self.trust == "ca" else f"{key}-trust:{self.trust}"


@dataclass(frozen=True)
class Case:
    grid: str
    adapter: str
    policy: str
    bind: str
    connect: str
    client: str
    server_cert: str
    trust: str = "ca"
    profile: str = "standard"
    tls: str = "1.3"

    @property
    def id(self) -> str:
        """Readable, stable, and selectable with ``pytest -k`` for every dimension value.

        Standard ids are as they always were; extended ids also name the trust
        configuration and the TLS version (``trust:no-ca``, ``tls:1.2``).
        """
        parts = [self.adapter, self.policy]
        if self.profile != "standard":
            parts.append(f"trust:{self.trust}")
        parts += [f"bind:{self.bind}", f"connect:{self.connect}", f"client:{self.client}"]
        if self.server_cert != "server":
            parts.append(f"server:{self.server_cert}")
        if self.profile != "standard":
            parts.append(f"tls:{self.tls}")
        return "-".join(parts)

    @property
    def config(self) -> ServerConfig:
        return ServerConfig(self.adapter, self.policy, self.bind, self.server_cert, self.trust)


def enumerate_cases(
    grids: tuple[Grid, ...] | None = None, adapters: Iterable[str] = (), profile: str = "standard"
) -> list[Case]:
    """Every case of ``profile`` (or of ``grids``), grouped by server configuration so
    each server is started once.

    ``adapters`` are a target's own TLS stacks (``Target.adapters``, e.g. granian's
    ``rustls``): each one not already a dimension value gets every grid again, after
    the matrix's own cases, whose ids never change. Raises KeyError for an unknown
    profile.
    """
    if grids is None:
        grids = PROFILES[profile]
    extra = tuple(a for a in dict.fromkeys(adapters) if a not in ADAPTERS)
    if extra:
        grids = (*grids, *(dataclasses.replace(g, adapter=extra) for g in grids))
    cases = [
        Case(g.name, adapter, policy, bind, connect, client, cert, trust, g.profile, tls)
        for g in grids
        for adapter, policy, trust, bind, cert, connect, client, tls in itertools.product(
            g.adapter, g.policy, g.trust, g.bind, g.server_cert, g.connect, g.client, g.tls
        )
    ]
    # Grids can share a server configuration: keep its cases together (a stable sort by
    # first appearance, which leaves a profile whose grids share none in grid order).
    first: dict[ServerConfig, int] = {}
    return sorted(cases, key=lambda c: first.setdefault(c.config, len(first)))


def addresses(profile: str) -> tuple[str, ...]:
    """Every bind and connect value of ``profile``: what the resolver probe must look up."""
    names = [n for g in PROFILES[profile] for n in (*g.bind, *g.connect)]
    return tuple(dict.fromkeys(names))


def describe(profile: str) -> str:
    """The profile's grids, sizes and held-fixed reasons, as text for people."""
    lines = []
    total = 0
    for g in PROFILES[profile]:
        n = len(enumerate_cases((g,)))
        total += n
        lines.append(f"{g.name}: {n} cases")
        for dim in ("adapter", "policy", "trust", "bind", "connect", "client", "server_cert"):
            lines.append(f"  {dim}: {', '.join(getattr(g, dim))}")
        lines.append(f"  tls: {', '.join(g.tls)}")
        if g.trust != ("ca",):
            lines += [f"    trust {trust}: {TRUSTS[trust]}" for trust in g.trust]
        for dim, why in g.held:
            lines.append(f"  held {dim}: {why}")
    lines.append(f"{profile}: {total} cases")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(describe(sys.argv[1] if len(sys.argv) > 1 else "standard"))
