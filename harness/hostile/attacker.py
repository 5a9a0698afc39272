"""One hostile connection (:class:`Attacker`), a kind (:class:`Kind`), many (:class:`Attack`).

An attacker's function gets an :class:`Attacker` (where to connect, the TLS credential
it may present, its paces, and a ``release`` event) and returns once it has done its
part and been released, or its hold time has run out, whichever comes first; it never
raises for what the server does to it (a reset, a close, an alert): those are recorded
on the attacker (``sent``, ``received``, ``error``), because a server that hangs up on
an attacker is doing its job.

Pacing: a trickling attacker sends one byte, then waits ``pace_s`` on its release event;
a slow reader reads ``READ_SIZE`` bytes, then waits ``read_pace_s`` (each such wait is
marked ``# pace``); nothing else sleeps. An attacker is patient: a read it makes waits
as long as its hold time, so that a server which stalls an attacker is not let off by
the attacker's own timeout; the release shuts its socket down, which ends such a wait
at once. Every attacker is bounded in time by ``hold_s`` and every socket it opens is
closed when it returns.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

PACE_S = 0.5  # seconds between two bytes of a trickle
READ_PACE_S = 3.0  # seconds between two reads of a slow reader (issue 20: 4 KiB every 3 s)
READ_SIZE = 4096  # bytes a slow reader reads at a time
HOLD_S = 60.0  # the longest an attacker holds its socket when nobody releases it
FLOOD_BYTES = 256 * 1024 * 1024  # what a flooding attacker sends at most (issue 9: 256 MB)
FLOOD_CHUNK = 64 * 1024
CONNECT_TIMEOUT_S = 5.0

# paces (Kind.pace)
AT_ONCE = "at once"
TRICKLE = "one byte per pace"
FLOOD = "as fast as it can"  # up to flood_bytes, then holds: a memory bound
STREAM = "as fast as it can, until released"  # post-handshake messages: a CPU bound
SLOW_READ = "reads 4 KiB every 3 s"

# which attacker counts a kind runs at (Kind.counts)
EVERY = "every"  # 1, the target's workers + 1, 64 (or the counts asked for)
FIRST = "first"  # the first count only: a memory bound is per connection


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
    read_pace_s: float = READ_PACE_S
    # what happened (filled in by the kind's function)
    connected: bool = False
    sent: int = 0  # bytes written to the TCP socket
    received: int = 0  # bytes read from it
    messages: int = 0  # post-handshake messages or requests sent (streams, pipelines)
    paced_reads: int = 0  # reads a slow reader made (each of at most READ_SIZE bytes)
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

    def connect(self, receive_buffer: int | None = None) -> socket.socket:
        """A TCP connection to the address; ``receive_buffer`` (bytes) sets SO_RCVBUF first.

        A small receive buffer (set before connecting, so that the window is small from
        the start and Linux does not autotune it) makes a client that never reads hold
        the server's writes after a few KiB instead of a few MiB.
        """
        family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if receive_buffer is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(self.address)
        except BaseException:
            sock.close()
            raise
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

    def read_slowly(self, sock: socket.socket) -> None:
        """Read ``READ_SIZE`` bytes per ``read_pace_s`` until the end, release or hold time."""
        self.in_position.set()
        self.done_sending.set()
        while not self.release.is_set() and self.remaining() > 0:
            chunk = sock.recv(READ_SIZE)
            if not chunk:
                return
            self.received += len(chunk)
            self.paced_reads += 1
            if self.release.wait(min(self.read_pace_s, self.remaining())):  # pace
                return


@dataclass(frozen=True)
class Kind:
    """A hostile client as data: its name, the SPEC section 7 item, what it sends, its pace.

    ``run`` is the function that attacks (one :class:`Attacker`); ``counts`` says at
    which attacker counts the battery runs it (``EVERY`` or ``FIRST``); ``flood``
    kinds send up to ``flood_bytes`` and the battery waits for that before it releases
    them (a memory bound); ``presents_certificate`` kinds must get past a ``required``
    handshake and present the good client's certificate.
    """

    name: str
    description: str
    sends: str
    pace: str  # AT_ONCE, TRICKLE, FLOOD, STREAM or SLOW_READ
    run: Callable[[Attacker], None] = field(repr=False, compare=False)
    presents_certificate: bool = False  # it must get past a ``required`` handshake
    flood: bool = False  # sends up to flood_bytes: measures a memory bound
    spec: str = ""  # the SPEC section 7 item it exercises, in the spec's words
    counts: str = EVERY  # EVERY or FIRST

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
