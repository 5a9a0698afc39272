"""Attackers that do their harm before or during the handshake: they prove nothing.

SPEC section 7's first items: connects and sends nothing; one byte; a record header or
part of a ClientHello; a whole ClientHello, then nothing; a trickled ClientHello; an
RST after connecting or after the ClientHello; a close in the middle of the handshake;
refused, then holds its socket; plain HTTP; only an old protocol version; no shared
group. Each is one function of an :class:`~harness.hostile.attacker.Attacker`; the
table in :mod:`harness.hostile.kinds` says what each sends.
"""

from __future__ import annotations

import ssl

from .attacker import Attacker
from .tls import (
    HANDSHAKE,
    HandshakeDriver,
    client_context,
    client_hello,
    reset,
    without_shared_group,
)

GET = b"GET / HTTP/1.1\r\nHost: localhost\r\n"


def silent(a: Attacker) -> None:
    with a.connect():
        a.hold()


def one_byte(a: Attacker) -> None:
    with a.connect() as sock:
        a.send(sock, bytes((HANDSHAKE,)))
        a.hold()


def record_header(a: Attacker) -> None:
    with a.connect() as sock:
        a.send(sock, client_hello(server_hostname=a.server_hostname)[:5])
        a.hold()


def partial_hello(a: Attacker) -> None:
    hello = client_hello(server_hostname=a.server_hostname)
    with a.connect() as sock:
        a.send(sock, hello[: len(hello) // 2])
        a.hold()


def hello_then_silent(a: Attacker) -> None:
    with a.connect() as sock:
        a.send(sock, client_hello(server_hostname=a.server_hostname))
        a.hold()


def trickle_hello(a: Attacker) -> None:
    with a.connect() as sock:
        a.trickle(sock, client_hello(server_hostname=a.server_hostname))
        a.hold()


def reset_after_connect(a: Attacker) -> None:
    reset(a.connect())


def reset_after_hello(a: Attacker) -> None:
    sock = a.connect()
    try:
        a.send(sock, client_hello(server_hostname=a.server_hostname))
    finally:
        reset(sock)


def close_mid_handshake(a: Attacker) -> None:
    driver = HandshakeDriver(client_context(), a.server_hostname)
    with a.connect() as sock:
        a.send(sock, driver.client_hello())
        driver.read_server_flight(a, sock)  # the server has answered; we never finish
    # closed with a FIN here, before the client's Finished


def refused_then_hold(a: Attacker) -> None:
    driver = HandshakeDriver(client_context(), a.server_hostname)
    with a.connect() as sock:
        try:
            driver.complete(a, sock)  # TLS 1.3: done on our side; the server refuses next
        except (ssl.SSLError, ConnectionAbortedError) as exc:  # TLS 1.2: refused in it
            a.error = type(exc).__name__
        a.hold()  # the socket stays open; nothing more is read or sent


def plain_http(a: Attacker) -> None:
    with a.connect() as sock:
        a.send(sock, GET + b"Connection: close\r\n\r\n")
        a.hold()


def old_version(a: Attacker) -> None:
    context = client_context(minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1)
    with a.connect() as sock:
        a.send(sock, client_hello(context, a.server_hostname))
        a.hold()


def no_shared_group(a: Attacker) -> None:
    tls13 = client_context(minimum=ssl.TLSVersion.TLSv1_3)
    with a.connect() as sock:
        a.send(sock, without_shared_group(client_hello(tls13, a.server_hostname)))
        a.hold()
