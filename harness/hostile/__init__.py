"""Hostile clients: every kind of SPEC section 7, as data plus one small function each.

A :class:`Kind` names an attacker, says in words what it sends and how fast, quotes the
SPEC section 7 item it exercises, and holds the function that does it; ``KINDS`` is
the table (:mod:`.kinds`). The functions live by the stage where they do their harm:
:mod:`.handshake` (before or during the handshake, proving nothing), :mod:`.request`
(after the handshake, in HTTP), :mod:`.post_handshake` (after the handshake, in TLS).
:mod:`.attacker` holds one connection's parameters and paces and runs many;
:mod:`.tls` real ClientHellos and handshakes from the stdlib ``ssl`` module;
:mod:`.records` the post-handshake records no TLS API streams (KeyUpdate,
renegotiation requests), built with keys OpenSSL hands us; :mod:`.remote` runs an
:class:`Attack` in a child process (for a server in the measuring process).

    from harness.hostile import KINDS, run_attackers
    with run_attackers(KINDS["hello-then-silent"], address, 64) as attack:
        ...  # measure a good client while 64 of them hold their sockets
    # leaving the block releases them and joins their threads

Traffic goes only to the address given (loopback in the project's use).
"""

from __future__ import annotations

from .attacker import (
    AT_ONCE,
    EVERY,
    FIRST,
    FLOOD,
    FLOOD_BYTES,
    FLOOD_CHUNK,
    HOLD_S,
    PACE_S,
    READ_PACE_S,
    READ_SIZE,
    SLOW_READ,
    STREAM,
    TRICKLE,
    Attack,
    Attacker,
    Kind,
    run_attackers,
)
from .kinds import KINDS
from .tls import (
    ALERT,
    APPLICATION_DATA,
    CLIENT_HELLO,
    EXT_KEY_SHARE,
    EXT_SUPPORTED_GROUPS,
    HANDSHAKE,
    PRIVATE_GROUP,
    HandshakeDriver,
    client_context,
    client_hello,
    reset,
    without_shared_group,
)

__all__ = [
    "ALERT",
    "APPLICATION_DATA",
    "AT_ONCE",
    "CLIENT_HELLO",
    "EVERY",
    "EXT_KEY_SHARE",
    "EXT_SUPPORTED_GROUPS",
    "FIRST",
    "FLOOD",
    "FLOOD_BYTES",
    "FLOOD_CHUNK",
    "HANDSHAKE",
    "HOLD_S",
    "KINDS",
    "PACE_S",
    "PRIVATE_GROUP",
    "READ_PACE_S",
    "READ_SIZE",
    "SLOW_READ",
    "STREAM",
    "TRICKLE",
    "Attack",
    "Attacker",
    "HandshakeDriver",
    "Kind",
    "client_context",
    "client_hello",
    "reset",
    "run_attackers",
    "without_shared_group",
]
