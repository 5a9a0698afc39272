"""Facts about this host's resolver and loopback, probed once per run.

The oracle needs them (where does ``localhost`` lead? what does the server see
as the client's name?) but must not ask the resolver itself: a prediction
has to be a pure function of recorded facts, so that a report can show what
the predictions were based on and a run can be replayed.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

LOOPBACKS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class ResolverFacts:
    # name -> addresses, in the order a client tries them (getaddrinfo order)
    forward: dict[str, list[str]] = field(default_factory=dict)
    # name -> addresses a passive (server) lookup yields; a server binds the first
    passive: dict[str, list[str]] = field(default_factory=dict)
    # loopback address -> its reverse names whose forward lookup yields it again
    reverse: dict[str, list[str]] = field(default_factory=dict)
    ipv6_loopback: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResolverFacts:
        return cls(
            forward={k: list(v) for k, v in data["forward"].items()},
            passive={k: list(v) for k, v in data["passive"].items()},
            reverse={k: list(v) for k, v in data["reverse"].items()},
            ipv6_loopback=bool(data["ipv6_loopback"]),
        )


def probe(names: tuple[str, ...]) -> ResolverFacts:
    """Look up each name the matrix binds to or connects to, and the loopbacks' names."""
    forward = {n: _lookup(n, 0) for n in names}
    passive = {n: _lookup(n, socket.AI_PASSIVE) for n in names}
    reverse = {ip: _confirmed_reverse(ip) for ip in LOOPBACKS}
    return ResolverFacts(forward, passive, reverse, _ipv6_loopback_works())


def _lookup(name: str, flags: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, flags)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(ipaddress.ip_address(i[4][0].split("%")[0])) for i in infos))


def _confirmed_reverse(ip: str) -> list[str]:
    try:
        primary, aliases, _ = socket.gethostbyaddr(ip)
    except (OSError, UnicodeError):
        return []
    return [name for name in dict.fromkeys([primary, *aliases]) if ip in _lookup(name, 0)]


def _ipv6_loopback_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as server:
            server.bind(("::1", 0))
            server.listen(1)
            with socket.create_connection(("::1", server.getsockname()[1]), timeout=1):
                return True
    except OSError:
        return False
