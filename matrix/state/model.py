"""The connection-state profile's cases as data (SPEC section 9).

A standard case is one handshake on a freshly configured server. A state case is a
short script: one or more servers (each a default host plus virtual hosts chosen by
SNI), and steps, each one connection with a credential, an SNI name, a Host header,
a path, extra headers and, optionally, the TLS session an earlier step obtained;
before a step the server it talks to may be reloaded with another configuration.

Every field is a plain value so that a case is hashable, comparable and printable,
and its id names every value a grid varies (``pytest -k`` selects by any of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..dimensions import POLICY_SETTINGS, TRUSTS

PROFILE = "state"
LOOPBACK = "127.0.0.1"  # bind and connect: the peer address is not these grids' question
DEFAULT_HOST = "_default_"  # the default host's name in MTLS_VIRTUAL_HOST (Apache's word)

# TLS session kinds a client can carry from one step to the next (RFC 5077 tickets,
# RFC 5246 session ids, RFC 8446 section 4.6.1 NewSessionTicket).
SESSION_KINDS = {
    "none": "no session is carried",
    "id": "TLS 1.2 session id (the client sends no session ticket extension)",
    "ticket": "session ticket (TLS 1.2 RFC 5077, or a TLS 1.3 NewSessionTicket)",
}


@dataclass(frozen=True, order=True)
class HostPolicy:
    """What one (virtual) host verifies clients with: a policy id (SPEC section 2) and
    the client CA file (``matrix.dimensions.TRUSTS``: ``ca`` or ``other-ca``)."""

    policy: str
    trust: str = "ca"

    def __post_init__(self) -> None:
        if self.policy not in POLICY_SETTINGS:
            raise ValueError(f"unknown policy {self.policy!r}")
        if self.trust not in TRUSTS:
            raise ValueError(f"unknown trust {self.trust!r}")

    @property
    def label(self) -> str:
        """``required`` with the standard CA, ``required[other-ca]`` with another one
        (``[`` and ``]`` are word characters for ``pytest -k``; ``@`` is not)."""
        return self.policy if self.trust == "ca" else f"{self.policy}[{self.trust}]"


@dataclass(frozen=True, order=True)
class ServerState:
    """One server of a state case: its adapter, default host and SNI virtual hosts."""

    adapter: str
    default: HostPolicy
    hosts: tuple[tuple[str, HostPolicy], ...] = ()  # (SNI name, policy), in order
    bind: str = LOOPBACK
    server_cert: str = "server"
    # Certificates asked for by path (ServerSpec.path_policies) and the one TLS version
    # offered (ServerSpec.tls_version): the per-path grid's (matrix/state/perpath.py).
    path_policies: tuple[tuple[str, str], ...] = ()
    tls_version: str | None = None

    def host_for(self, sni: str | None) -> tuple[str, HostPolicy]:
        """The virtual host a client sending ``sni`` gets: (name, policy); the default
        host (``DEFAULT_HOST``) for no name or a name no host has."""
        if sni is not None:
            for name, policy in self.hosts:
                if name.lower() == sni.lower():
                    return name, policy
        return DEFAULT_HOST, self.default

    @property
    def key(self) -> str:
        """A readable key, unique per configuration (used in start-failure messages)."""
        hosts = ",".join(f"{n}={p.label}" for n, p in self.hosts)
        paths = ",".join(f"{prefix}={check}" for prefix, check in self.path_policies)
        return (
            f"{self.adapter}-{self.default.label}"
            + (f"-hosts:{hosts}" if hosts else "")
            + (f"-paths:{paths}" if paths else "")
            + (f"-{self.tls_version}" if self.tls_version else "")
        )


@dataclass(frozen=True)
class Step:
    """One connection of a state case.

    ``server``: index into the case's servers. ``reload``: a configuration the server is
    reloaded to (``handle.reload(spec)``) before this step, or None. ``sni``: the name
    the client sends, None for none. ``host``: the Host header, None for the SNI name
    (or, without one, the connect address). ``offer``: the index of an earlier step
    whose TLS session the client offers, None for a fresh handshake. ``path`` and
    ``headers`` are the request's (headers as (name, value) pairs, sent as given).
    """

    server: int = 0
    reload: ServerState | None = None
    sni: str | None = None
    host: str | None = None
    offer: int | None = None
    path: str = "/"  # the request target, sent as given (an absolute form too)
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "GET"
    source: str | None = None  # the client's source address (None: the system's choice)


@dataclass(frozen=True)
class StateCase:
    """A case of the connection-state profile.

    ``dims`` are the grid's own dimensions (name, value), in id order; the id is
    ``adapter-grid-<dims>-client:<c>-tls:<v>``. ``client`` is the credential every step
    presents (a client's TLS sessions belong to its context, so one case keeps one);
    ``tls`` pins the version ("1.2" or "1.3"); ``session`` is the kind of session a step
    may carry (``SESSION_KINDS``).
    """

    grid: str
    adapter: str
    client: str
    tls: str
    servers: tuple[ServerState, ...]
    steps: tuple[Step, ...]
    dims: tuple[tuple[str, str], ...] = ()
    session: str = "none"
    profile: str = field(default=PROFILE)

    @property
    def id(self) -> str:
        parts = [self.adapter, self.grid, *(f"{k}:{v}" for k, v in self.dims)]
        return "-".join([*parts, f"client:{self.client}", f"tls:{self.tls}"])

    @property
    def policy(self) -> str:
        """The first server's default host, for reports' policy column."""
        return self.servers[0].default.label

    @property
    def reloads(self) -> bool:
        return any(step.reload is not None for step in self.steps)

    def result_dims(self) -> dict[str, str]:
        """The dimensions results.json records (the report's six, then the grid's own)."""
        return {
            "id": self.id,
            "grid": self.grid,
            "adapter": self.adapter,
            "policy": self.policy,
            "bind": self.servers[0].bind,
            "connect": LOOPBACK,
            "client": self.client,
            "server_cert": self.servers[0].server_cert,
            "trust": self.servers[0].default.trust,
            "profile": self.profile,
            "tls": self.tls,
            "session": self.session,
            **dict(self.dims),
        }
