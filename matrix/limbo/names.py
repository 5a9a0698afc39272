"""The server-name cases, against a server's client host check.

x509-limbo's server-name cases give a peer name (``expected_peer_name``) the
certificate must match. A server checks a client's name only with its host
check, and the name it checks is the *connecting address's*: the reference
server's check (SPEC section 2) matches an IP-ID against the peer address, or
a DNS-ID against a forward-confirmed reverse name of it. On loopback a test can
honestly control only that address, so:

- an IP peer name inside 127.0.0.0/8 or ``::1`` is run: the server binds that
  address and the client connects to it from it (the kernel picks the same
  loopback address as the source);
- a DNS peer name is run only if it is a confirmed reverse name of a loopback
  address on this machine (``localhost``, typically) — none of the corpus's are;
- anything else (``example.com``, ``192.168.1.1``...) would need a client on
  that address or DNS we do not control, and is skipped with that reason.
"""

from __future__ import annotations

import ipaddress

from harness.reference.hostcheck import confirmed_names

from .corpus import LimboCase


def loopback_address(case: LimboCase) -> tuple[str | None, str]:
    """(address to bind and connect from, "") when testable, else (None, why not)."""
    if case.expected_peer_name is None:
        return None, "the case names no peer"
    kind, value = case.expected_peer_name
    if kind == "IP":
        try:
            ip = ipaddress.ip_address(value)
        except ValueError:
            return None, f"peer IP {value!r} is not an IP address"
        if ip.is_loopback and (ip.version == 6 or str(ip).startswith("127.")):
            return str(ip), ""
        return None, (
            f"peer IP {value} is not a loopback address: a client cannot connect from it here"
        )
    if kind == "DNS":
        for address in ("127.0.0.1", "::1"):
            if value.lower() in (n.lower() for n in confirmed_names(address)):
                return address, ""
        return None, (
            f"peer name {value} is not a forward-confirmed name of a loopback address: "
            "the host check could only match it with DNS we do not control"
        )
    return None, f"peer name kind {kind} is not checked by a server's client host check"
