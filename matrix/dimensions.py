"""The matrix as data (SPEC section 3): dimensions, the two grids, and case ids.

Adding a value to a dimension, or a grid, is a one-line change here; the
oracle, the runner and the reports are driven by what this module yields.
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

# policy id -> (client_check, client_check_host), SPEC section 2
POLICY_SETTINGS = {
    "ignore": ("ignore", False),
    "optional": ("optional", False),
    "optional+host": ("optional", True),
    "required": ("required", False),
    "required+host": ("required", True),
}

TRUST_ROOT = "ca"  # the client CA on the server, and the client's trust root


@dataclass(frozen=True)
class Grid:
    """One block of the matrix: every combination of the listed values."""

    name: str
    adapter: tuple[str, ...]
    policy: tuple[str, ...]
    bind: tuple[str, ...]
    connect: tuple[str, ...]
    client: tuple[str, ...]
    server_cert: tuple[str, ...]


GRIDS = (
    Grid("client-auth", ADAPTERS, POLICIES, BINDS, CONNECTS, CLIENTS, ("server",)),
    Grid(
        "server-cert", ADAPTERS, POLICIES, ("0.0.0.0",), CONNECTS, ("localhost",), BAD_SERVER_CERTS
    ),
)


@dataclass(frozen=True, order=True)
class ServerConfig:
    """What a server under test is started with; cases sharing one share the server."""

    adapter: str
    policy: str
    bind: str
    server_cert: str

    @property
    def client_check(self) -> str:
        return POLICY_SETTINGS[self.policy][0]

    @property
    def check_host(self) -> bool:
        return POLICY_SETTINGS[self.policy][1]

    @property
    def key(self) -> str:
        return f"{self.adapter}-{self.policy}-bind:{self.bind}-cert:{self.server_cert}"


@dataclass(frozen=True)
class Case:
    grid: str
    adapter: str
    policy: str
    bind: str
    connect: str
    client: str
    server_cert: str
    tls: str = "1.3"

    @property
    def id(self) -> str:
        """Readable, stable, and selectable with ``pytest -k`` for every dimension value."""
        parts = [self.adapter, self.policy, f"bind:{self.bind}", f"connect:{self.connect}"]
        parts.append(f"client:{self.client}")
        if self.server_cert != "server":
            parts.append(f"server:{self.server_cert}")
        return "-".join(parts)

    @property
    def config(self) -> ServerConfig:
        return ServerConfig(self.adapter, self.policy, self.bind, self.server_cert)


def enumerate_cases(grids: tuple[Grid, ...] = GRIDS, adapters: Iterable[str] = ()) -> list[Case]:
    """Every case, grouped by server configuration so each server is started once.

    ``adapters`` are a target's own TLS stacks (``Target.adapters``, e.g. granian's
    ``rustls``): each one not already a dimension value gets every grid again, after
    the standard cases, whose ids never change.
    """
    extra = tuple(a for a in dict.fromkeys(adapters) if a not in ADAPTERS)
    if extra:
        grids = (*grids, *(dataclasses.replace(g, adapter=extra) for g in grids))
    return [
        Case(g.name, adapter, policy, bind, connect, client, cert)
        for g in grids
        for adapter, policy, bind, cert, connect, client in itertools.product(
            g.adapter, g.policy, g.bind, g.server_cert, g.connect, g.client
        )
    ]
