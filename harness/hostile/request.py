"""Attackers that finish the handshake (with the good client's certificate), then misbehave in HTTP.

SPEC section 7: finishes the handshake, then sends nothing; trickles request headers or
a body; floods a header block or a body (the memory bounds); sends a request head with
``Expect: 100-continue`` or ``Transfer-Encoding: chunked`` and then no body; pipelines
requests and never reads the answers, or reads them a few bytes at a time.

The two that never read, or read slowly, shrink their socket's receive buffer to
``RECEIVE_BUFFER`` before connecting, so that the server's answers fill what the
client accepts after a few KiB, as a client on a slow link would (without it, loopback
autotuning lets a client swallow megabytes before the server's writes block). What
they pipeline, ``PIPELINED`` requests of about 35 bytes each, fits in the server's
receive buffer: the sending finishes at once and the answers are what pile up.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

from .attacker import FLOOD_CHUNK, Attacker
from .handshake import GET
from .tls import HandshakeDriver, handshake

PIPELINED = 2000  # requests a pipelining attacker sends without reading (issue 20: thousands)
RECEIVE_BUFFER = 4096  # bytes: SO_RCVBUF of a client that never reads or reads slowly
DECLARED_BODY = 1024  # bytes: the Content-Length of expect-then-silence's body that never comes


def _endless_headers() -> Iterator[int]:
    """A request whose header block never ends: the request line, then header after header."""
    yield from GET
    for index in range(1_000_000):
        yield from b"X-Slow-%d: x\r\n" % index


def handshake_then_silent(a: Attacker) -> None:
    with a.connect() as sock:
        handshake(a, sock)
        a.hold()


def trickle_headers(a: Attacker) -> None:
    with a.connect() as sock:
        driver = handshake(a, sock)
        for byte in _endless_headers():  # one TLS record per byte
            a.send(sock, driver.wrap(bytes((byte,))))
            if not a.pace():
                break
        a.hold()


def trickle_body(a: Attacker) -> None:
    with a.connect() as sock:
        driver = handshake(a, sock)
        head = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n"
        a.send(sock, driver.wrap(head))
        for _ in range(1_000_000):
            a.send(sock, driver.wrap(b"x"))
            if not a.pace():
                break
        a.hold()


def _flood(a: Attacker, sock: socket.socket, driver: HandshakeDriver, chunk: bytes) -> None:
    """Send ``chunk`` again and again until ``flood_bytes``, the release or the hold time."""
    sent = 0
    while sent < a.flood_bytes and not a.release.is_set() and a.remaining() > 0:
        a.send(sock, driver.wrap(chunk))
        sent += len(chunk)
        a.in_position.set()  # flooding: in position from the first chunk on


def huge_headers(a: Attacker) -> None:
    with a.connect() as sock:
        driver = handshake(a, sock)
        a.send(sock, driver.wrap(GET))
        line = b"X-Big: " + b"x" * 1016 + b"\r\n"  # 1 KiB header lines, the block never ends
        _flood(a, sock, driver, line * (FLOOD_CHUNK // len(line)))
        a.hold()


def endless_body(a: Attacker) -> None:
    with a.connect() as sock:
        driver = handshake(a, sock)
        head = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000000000\r\n\r\n"
        a.send(sock, driver.wrap(head))
        _flood(a, sock, driver, b"x" * FLOOD_CHUNK)
        a.hold()


EXPECT_HEAD = (
    b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % DECLARED_BODY
)
CHUNKED_HEAD = (
    b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def expect_then_silence(a: Attacker) -> None:
    """A POST head announcing a body and ``Expect: 100-continue``; never the body, never reads."""
    with a.connect() as sock:
        driver = handshake(a, sock)
        a.send(sock, driver.wrap(EXPECT_HEAD))
        a.hold()


def chunked_then_silence(a: Attacker) -> None:
    """A POST head with ``Transfer-Encoding: chunked``; never a chunk, never reads."""
    with a.connect() as sock:
        driver = handshake(a, sock)
        a.send(sock, driver.wrap(CHUNKED_HEAD))
        a.hold()


def pipelined(count: int = PIPELINED) -> bytes:
    """``count`` keep-alive ``GET /`` requests back to back (RFC 9112 section 9.3.2)."""
    return (GET + b"\r\n") * count


def pipeline_and_never_read(a: Attacker) -> None:
    """Thousands of pipelined GETs in one go; the answers are never read."""
    with a.connect(receive_buffer=RECEIVE_BUFFER) as sock:
        driver = handshake(a, sock)
        a.in_position.set()  # what follows may block once the server stops reading
        a.send(sock, driver.wrap(pipelined()))
        a.messages = PIPELINED
        a.hold()


def slow_reader(a: Attacker) -> None:
    """Thousands of pipelined GETs, then the answers read 4 KiB every 3 s (``read_pace_s``)."""
    with a.connect(receive_buffer=RECEIVE_BUFFER) as sock:
        driver = handshake(a, sock)
        a.in_position.set()
        a.send(sock, driver.wrap(pipelined()))
        a.messages = PIPELINED
        a.read_slowly(sock)  # raw TLS records: the pace is what matters, not the plaintext
        a.hold()
