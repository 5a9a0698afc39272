"""Hostile clients: every kind of SPEC section 7, as data plus one small function each.

A :class:`Kind` names an attacker, says in words what it sends and how fast, and
holds the function that does it. The function gets an :class:`Attacker` (where
to connect, the TLS credential it may present, its pace, and a ``release``
event) and returns once it has done its part and been released, or its hold
time has run out, whichever comes first; it never raises for what the server
does to it (a reset, a close, an alert): those are recorded on the attacker
(``sent``, ``received``, ``error``), because a server that hangs up on an
attacker is doing its job.

    from harness.hostile import KINDS, run_attackers
    with run_attackers(KINDS["hello-then-silent"], address, 64) as attack:
        ...  # measure a good client while 64 of them hold their sockets
    # leaving the block releases them and joins their threads

Real ClientHellos come from the stdlib ``ssl`` module driven through a
``MemoryBIO`` (``SSLContext.wrap_bio``), so the bytes on the wire are exactly
what OpenSSL sends, and the attacker decides how many of them go out and when.
One kind is hand-edited TLS, because no stdlib API can make it:
``no-shared-group`` takes a real TLS 1.3 ClientHello and renames, in place (no
length changes), every group in its ``supported_groups`` and ``key_share``
extensions (RFC 8446 sections 4.2.7 and 4.2.8) to a private-use code point
(0xFE00 + i, RFC 8446 section 4.2.7), which no server supports. (Python 3.11's
``set_ecdh_curve`` restricts a client to one group, but OpenSSL 3.0 refuses to
build a TLS 1.3 ClientHello with a group it cannot use for TLS 1.3: "no suitable
groups", measured with OpenSSL 3.0.19.) ``forged-record`` writes one
application-data record header (RFC 8446 section 5.1) around random bytes,
which no TLS library would send.

Two kinds flood instead (``huge-headers``, ``endless-body``: SPEC section 7's
limits on header size and body buffering): they send as fast as they can, up to
``flood_bytes`` (256 MiB), and then hold.

Pacing: a trickling attacker sends one byte, then waits ``pace_s`` on its
release event (each such wait is marked ``# pace``); nothing else sleeps. An
attacker is patient: a read it makes (the server's handshake messages) waits as
long as its hold time, so that a server which stalls an attacker is not let off
by the attacker's own timeout; the release shuts its socket down, which ends
such a wait at once. Every attacker is bounded in time by ``hold_s`` and every
socket it opens is closed when it returns. Traffic goes only to the address given (loopback in the
project's use).
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import struct
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

PACE_S = 0.5  # seconds between two bytes of a trickle
HOLD_S = 60.0  # the longest an attacker holds its socket when nobody releases it
FLOOD_BYTES = 256 * 1024 * 1024  # what a flooding attacker sends at most (issue 9: 256 MB)
FLOOD_CHUNK = 64 * 1024
CONNECT_TIMEOUT_S = 5.0

# TLS record content types and handshake types (RFC 8446 section 5.1, 4)
HANDSHAKE = 0x16
APPLICATION_DATA = 0x17
ALERT = 0x15
CLIENT_HELLO = 0x01
EXT_SUPPORTED_GROUPS = 0x000A
EXT_KEY_SHARE = 0x0033
PRIVATE_GROUP = 0xFE00  # RFC 8446 section 4.2.7: 0xFE00..0xFEFF reserved for private use


@dataclass
class Attacker:
    """One hostile connection's parameters and what happened to it.

    ``credential`` is a PEM file with a certificate and its key; attackers whose
    kind needs to get past the handshake (``Kind.presents_certificate``) present
    it, the others never do. ``server_hostname`` is sent as SNI only.
    """

    address: tuple[str, int]
    release: threading.Event = field(default_factory=threading.Event)
    credential: Path | None = None
    server_hostname: str = "localhost"
    pace_s: float = PACE_S
    hold_s: float = HOLD_S
    flood_bytes: int = FLOOD_BYTES
    # what happened (filled in by the kind's function)
    connected: bool = False
    sent: int = 0  # bytes written to the TCP socket
    received: int = 0  # bytes read from it
    error: str | None = None  # the first OSError the server caused, e.g. "ConnectionResetError"
    started: float = field(default_factory=time.monotonic)
    # set once it has sent its opening bytes and holds or trickles (or has finished)
    in_position: threading.Event = field(default_factory=threading.Event)
    # set once it has nothing more to send: it holds, or has finished
    done_sending: threading.Event = field(default_factory=threading.Event)
    sock: socket.socket | None = field(default=None, repr=False)

    @property
    def deadline(self) -> float:
        return self.started + self.hold_s

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=CONNECT_TIMEOUT_S)
        sock.settimeout(max(self.remaining(), 0.001))  # patient: see the module docstring
        self.sock = sock
        self.connected = True
        if self.release.is_set():  # released while connecting
            self.leave()
        return sock

    def leave(self) -> None:
        """Shut the socket down: ends a read or write in progress (the release does this)."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)

    def send(self, sock: socket.socket, data: bytes) -> None:
        sock.sendall(data)
        self.sent += len(data)

    def hold(self) -> None:
        """Keep the socket open, sending nothing, until released or the hold time is over."""
        self.in_position.set()
        self.done_sending.set()
        self.release.wait(self.remaining())

    def pace(self) -> bool:
        """Wait one pace; False once released or out of time (the trickle stops)."""
        self.in_position.set()
        if self.release.wait(min(self.pace_s, self.remaining())):  # pace
            return False
        return self.remaining() > 0

    def trickle(self, sock: socket.socket, data: bytes | Iterator[int]) -> None:
        """Send ``data`` one byte per pace, until it ends, the release, or the hold time."""
        for byte in data:
            self.send(sock, bytes((byte,)))
            if not self.pace():
                return


@dataclass(frozen=True)
class Kind:
    """A hostile client: its name, what it is, what it sends, and at what pace."""

    name: str
    description: str
    sends: str
    pace: str  # AT_ONCE, TRICKLE or FLOOD
    run: Callable[[Attacker], None] = field(repr=False, compare=False)
    presents_certificate: bool = False  # it must get past a ``required`` handshake
    flood: bool = False  # sends as fast as it can: measures a memory bound, one attacker suffices

    def __call__(self, attacker: Attacker) -> None:
        """Run one attacker to its end; errors the server causes are recorded, not raised."""
        try:
            self.run(attacker)
        except OSError as exc:  # includes ssl.SSLError: reset, closed, alert, timeout
            if not attacker.release.is_set():  # not our own leaving
                attacker.error = attacker.error or type(exc).__name__
        finally:
            attacker.in_position.set()
            attacker.done_sending.set()


# -- ClientHellos -----------------------------------------------------------------------


def client_context(
    credential: Path | None = None,
    *,
    minimum: ssl.TLSVersion | None = None,
    maximum: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    """A client context that trusts any server (attackers do not care who answers)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated in ssl: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum is not None:
            context.minimum_version = minimum
        if maximum is not None:
            context.maximum_version = maximum
    if maximum is not None and maximum < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 needs level 0 for TLS 1.0/1.1
    if credential is not None:
        context.load_cert_chain(str(credential))
    return context


class HandshakeDriver:
    """A client handshake over a plain socket through MemoryBIOs: bytes leave only when asked."""

    def __init__(self, context: ssl.SSLContext, server_hostname: str) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=server_hostname)

    def step(self) -> bool:
        """One do_handshake(); True when the handshake is complete on the client's side."""
        try:
            self.tls.do_handshake()
            return True
        except ssl.SSLWantReadError:
            return False

    def pending(self) -> bytes:
        return self.outgoing.read()

    def client_hello(self) -> bytes:
        self.step()
        return self.pending()

    def complete(self, attacker: Attacker, sock: socket.socket) -> None:
        """Run the handshake to the end over ``sock``, sending every flight the client makes."""
        while True:
            done = self.step()
            data = self.pending()
            if data:
                attacker.send(sock, data)
            if done:
                return
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionAbortedError("the server closed during the handshake")
            attacker.received += len(chunk)
            self.incoming.write(chunk)

    def read_server_flight(self, attacker: Attacker, sock: socket.socket) -> bytes:
        """Read until the server has said something (its first flight), feed it, return it."""
        chunk = sock.recv(65536)
        attacker.received += len(chunk)
        if chunk:
            self.incoming.write(chunk)
            self.step()
        return chunk

    def wrap(self, data: bytes) -> bytes:
        """``data`` as TLS application-data records (after the handshake)."""
        self.tls.write(data)
        return self.pending()


def client_hello(
    context: ssl.SSLContext | None = None, server_hostname: str = "localhost"
) -> bytes:
    """The bytes of one real ClientHello record from the stdlib ``ssl`` module."""
    return HandshakeDriver(context or client_context(), server_hostname).client_hello()


def without_shared_group(hello: bytes) -> bytes:
    """``hello`` (one ClientHello record) with every named group renamed to a private one.

    Lengths are unchanged; only the 2-byte group code points in ``supported_groups``
    and in each ``key_share`` entry are rewritten (RFC 8446 sections 4.2.7, 4.2.8).
    Raises ValueError on anything but a single ClientHello record with extensions.
    """
    out = bytearray(hello)
    if len(out) < 9 or out[0] != HANDSHAKE or out[5] != CLIENT_HELLO:
        raise ValueError("not a ClientHello record")
    pos = 5 + 4 + 2 + 32  # record header, handshake header, legacy_version, random
    pos += 1 + out[pos]  # legacy_session_id
    pos += 2 + struct.unpack_from("!H", out, pos)[0]  # cipher_suites
    pos += 1 + out[pos]  # legacy_compression_methods
    end = pos + 2 + struct.unpack_from("!H", out, pos)[0]
    pos += 2
    renamed: dict[int, int] = {}

    def rename(at: int) -> None:
        group = struct.unpack_from("!H", out, at)[0]
        new = renamed.setdefault(group, PRIVATE_GROUP + len(renamed))
        struct.pack_into("!H", out, at, new)

    while pos + 4 <= end:
        ext_type, ext_len = struct.unpack_from("!HH", out, pos)
        body = pos + 4
        if ext_type == EXT_SUPPORTED_GROUPS:
            count = struct.unpack_from("!H", out, body)[0] // 2
            for i in range(count):
                rename(body + 2 + 2 * i)
        elif ext_type == EXT_KEY_SHARE:
            at, stop = body + 2, body + 2 + struct.unpack_from("!H", out, body)[0]
            while at + 4 <= stop:
                rename(at)
                at += 4 + struct.unpack_from("!H", out, at + 2)[0]
        pos = body + ext_len
    if not renamed:
        raise ValueError("the ClientHello names no group")
    return bytes(out)


def reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN (SO_LINGER on, zero seconds)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# -- the kinds ----------------------------------------------------------------------------

GET = b"GET / HTTP/1.1\r\nHost: localhost\r\n"


def _endless_headers() -> Iterator[int]:
    """A request whose header block never ends: the request line, then header after header."""
    yield from GET
    for index in range(1_000_000):
        yield from b"X-Slow-%d: x\r\n" % index


def _silent(a: Attacker) -> None:
    with a.connect():
        a.hold()


def _one_byte(a: Attacker) -> None:
    with a.connect() as sock:
        a.send(sock, bytes((HANDSHAKE,)))
        a.hold()


def _record_header(a: Attacker) -> None:
    with a.connect() as sock:
        a.send(sock, client_hello(server_hostname=a.server_hostname)[:5])
        a.hold()


def _partial_hello(a: Attacker) -> None:
    hello = client_hello(server_hostname=a.server_hostname)
    with a.connect() as sock:
        a.send(sock, hello[: len(hello) // 2])
        a.hold()


def _hello_then_silent(a: Attacker) -> None:
    with a.connect() as sock:
        a.send(sock, client_hello(server_hostname=a.server_hostname))
        a.hold()


def _trickle_hello(a: Attacker) -> None:
    with a.connect() as sock:
        a.trickle(sock, client_hello(server_hostname=a.server_hostname))
        a.hold()


def _handshake(a: Attacker, sock: socket.socket) -> HandshakeDriver:
    driver = HandshakeDriver(client_context(a.credential), a.server_hostname)
    driver.complete(a, sock)
    return driver


def _handshake_then_silent(a: Attacker) -> None:
    with a.connect() as sock:
        _handshake(a, sock)
        a.hold()


def _trickle_headers(a: Attacker) -> None:
    with a.connect() as sock:
        driver = _handshake(a, sock)
        for byte in _endless_headers():  # one TLS record per byte
            a.send(sock, driver.wrap(bytes((byte,))))
            if not a.pace():
                break
        a.hold()


def _trickle_body(a: Attacker) -> None:
    with a.connect() as sock:
        driver = _handshake(a, sock)
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


def _huge_headers(a: Attacker) -> None:
    with a.connect() as sock:
        driver = _handshake(a, sock)
        a.send(sock, driver.wrap(GET))
        line = b"X-Big: " + b"x" * 1016 + b"\r\n"  # 1 KiB header lines, the block never ends
        _flood(a, sock, driver, line * (FLOOD_CHUNK // len(line)))
        a.hold()


def _endless_body(a: Attacker) -> None:
    with a.connect() as sock:
        driver = _handshake(a, sock)
        head = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000000000\r\n\r\n"
        a.send(sock, driver.wrap(head))
        _flood(a, sock, driver, b"x" * FLOOD_CHUNK)
        a.hold()


def _reset_after_connect(a: Attacker) -> None:
    reset(a.connect())


def _reset_after_hello(a: Attacker) -> None:
    sock = a.connect()
    try:
        a.send(sock, client_hello(server_hostname=a.server_hostname))
    finally:
        reset(sock)


def _close_mid_handshake(a: Attacker) -> None:
    driver = HandshakeDriver(client_context(), a.server_hostname)
    with a.connect() as sock:
        a.send(sock, driver.client_hello())
        driver.read_server_flight(a, sock)  # the server has answered; we never finish
    # closed with a FIN here, before the client's Finished


def _refused_then_hold(a: Attacker) -> None:
    driver = HandshakeDriver(client_context(), a.server_hostname)
    with a.connect() as sock:
        try:
            driver.complete(a, sock)  # TLS 1.3: done on our side; the server refuses next
        except (ssl.SSLError, ConnectionAbortedError) as exc:  # TLS 1.2: refused in it
            a.error = type(exc).__name__
        a.hold()  # the socket stays open; nothing more is read or sent


def _forged_record(a: Attacker) -> None:
    with a.connect() as sock:
        _handshake(a, sock)
        payload = os.urandom(64)  # fails the record's AEAD check (RFC 8446 section 5.2)
        a.send(sock, struct.pack("!BHH", APPLICATION_DATA, 0x0303, len(payload)) + payload)
        a.hold()


def _plain_http(a: Attacker) -> None:
    with a.connect() as sock:
        a.send(sock, GET + b"Connection: close\r\n\r\n")
        a.hold()


def _old_version(a: Attacker) -> None:
    context = client_context(minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1)
    with a.connect() as sock:
        a.send(sock, client_hello(context, a.server_hostname))
        a.hold()


def _no_shared_group(a: Attacker) -> None:
    tls13 = client_context(minimum=ssl.TLSVersion.TLSv1_3)
    with a.connect() as sock:
        a.send(sock, without_shared_group(client_hello(tls13, a.server_hostname)))
        a.hold()


AT_ONCE = "at once"
TRICKLE = "one byte per pace"
FLOOD = "as fast as it can"

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("silent", "connects and sends nothing", "nothing", AT_ONCE, _silent),
        Kind("one-byte", "sends one byte", "0x16 (a handshake record's type)", AT_ONCE, _one_byte),
        Kind(
            "record-header",
            "sends a TLS record header only",
            "the first 5 bytes of a real ClientHello record",
            AT_ONCE,
            _record_header,
        ),
        Kind(
            "partial-hello",
            "sends part of a ClientHello",
            "the first half of a real ClientHello record",
            AT_ONCE,
            _partial_hello,
        ),
        Kind(
            "hello-then-silent",
            "sends a whole ClientHello, then nothing",
            "one real ClientHello record",
            AT_ONCE,
            _hello_then_silent,
        ),
        Kind(
            "trickle-hello",
            "trickles a ClientHello",
            "a real ClientHello record, one byte at a time",
            TRICKLE,
            _trickle_hello,
        ),
        Kind(
            "handshake-then-silent",
            "finishes the handshake, then sends nothing",
            "a complete handshake (with a client certificate), then nothing",
            AT_ONCE,
            _handshake_then_silent,
            presents_certificate=True,
        ),
        Kind(
            "trickle-headers",
            "trickles request headers",
            "a complete handshake, then a header block that never ends, one byte per record",
            TRICKLE,
            _trickle_headers,
            presents_certificate=True,
        ),
        Kind(
            "trickle-body",
            "trickles a request body",
            "a complete handshake, a POST with Content-Length 1000000, then one body byte "
            "per record",
            TRICKLE,
            _trickle_body,
            presents_certificate=True,
        ),
        Kind(
            "huge-headers",
            "sends a header block of 256 MiB",
            "a complete handshake, then a request line and 1 KiB header lines, as fast as it "
            "can, up to 256 MiB",
            FLOOD,
            _huge_headers,
            presents_certificate=True,
            flood=True,
        ),
        Kind(
            "endless-body",
            "sends a body that never ends",
            "a complete handshake, a POST with Content-Length 1000000000000, then body bytes as "
            "fast as it can, up to 256 MiB",
            FLOOD,
            _endless_body,
            presents_certificate=True,
            flood=True,
        ),
        Kind(
            "reset-after-connect",
            "resets (RST) right after connecting",
            "nothing, then an RST",
            AT_ONCE,
            _reset_after_connect,
        ),
        Kind(
            "reset-after-hello",
            "resets (RST) after its ClientHello",
            "one real ClientHello record, then an RST",
            AT_ONCE,
            _reset_after_hello,
        ),
        Kind(
            "close-mid-handshake",
            "closes in the middle of the handshake",
            "a ClientHello; after the server's first flight, a FIN instead of the client's "
            "Finished",
            AT_ONCE,
            _close_mid_handshake,
        ),
        Kind(
            "refused-then-hold",
            "is refused (no certificate), then holds its socket open",
            "a complete handshake without a certificate, then nothing; never closes",
            AT_ONCE,
            _refused_then_hold,
        ),
        Kind(
            "forged-record",
            "sends a forged TLS record after the handshake",
            "a complete handshake, then an application-data record of 64 random bytes",
            AT_ONCE,
            _forged_record,
            presents_certificate=True,
        ),
        Kind(
            "plain-http",
            "speaks plain HTTP to the TLS port",
            "a cleartext GET request",
            AT_ONCE,
            _plain_http,
        ),
        Kind(
            "old-version",
            "offers only an old protocol version",
            "a real ClientHello offering TLS 1.0 and 1.1 only",
            AT_ONCE,
            _old_version,
        ),
        Kind(
            "no-shared-group",
            "offers no group the server supports",
            "a TLS 1.3 ClientHello whose groups are renamed to private-use code points",
            AT_ONCE,
            _no_shared_group,
        ),
    )
}


class Attack:
    """``count`` attackers of one kind, each on its own thread, until :meth:`release`."""

    def __init__(
        self,
        kind: Kind,
        address: tuple[str, int],
        count: int,
        *,
        credential: Path | None = None,
        pace_s: float = PACE_S,
        hold_s: float = HOLD_S,
    ) -> None:
        self.kind = kind
        self.release_event = threading.Event()
        self.attackers = [
            Attacker(
                address,
                self.release_event,
                credential if kind.presents_certificate else None,
                pace_s=pace_s,
                hold_s=hold_s,
            )
            for _ in range(count)
        ]
        self.threads = [
            threading.Thread(target=kind, args=(a,), name=f"attacker-{kind.name}", daemon=True)
            for a in self.attackers
        ]

    def start(self) -> Attack:
        for thread in self.threads:
            thread.start()
        return self

    def wait_in_position(self, timeout: float) -> int:
        """Wait (bounded) until every attacker is in position; how many are."""
        deadline = time.monotonic() + timeout
        for a in self.attackers:
            a.in_position.wait(max(0.0, deadline - time.monotonic()))
        return sum(a.in_position.is_set() for a in self.attackers)

    def wait_done_sending(self, timeout: float) -> int:
        """Wait (bounded) until no attacker has anything more to send; how many have not."""
        deadline = time.monotonic() + timeout
        for a in self.attackers:
            a.done_sending.wait(max(0.0, deadline - time.monotonic()))
        return sum(not a.done_sending.is_set() for a in self.attackers)

    def release(self, timeout: float = 10.0) -> None:
        """Let every attacker go and wait (bounded) until their sockets are closed."""
        self.release_event.set()
        for attacker in self.attackers:
            attacker.leave()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def errors(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.attackers:
            if a.error:
                out[a.error] = out.get(a.error, 0) + 1
        return out


@contextlib.contextmanager
def run_attackers(
    kind: Kind, address: tuple[str, int], count: int, **options: object
) -> Iterator[Attack]:
    """Start ``count`` attackers of ``kind``; release them when the block ends."""
    attack = Attack(kind, address, count, **options).start()  # type: ignore[arg-type]
    try:
        yield attack
    finally:
        attack.release()
