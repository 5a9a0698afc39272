"""The gate: where a connection waits, off Cheroot's workers, until it holds a whole request head.

Cheroot hands every accepted connection to a worker thread at once, and its
adapters handshake there, blocking. A client that sends one byte, part of a
ClientHello, or trickles its request head one byte at a time then holds that
worker until a timeout; a few such clients hold the whole pool (SPEC section 7).
The gate is one thread with its own selector. It takes each new connection (and
each kept-alive connection between requests) and, with non-blocking steps only:

1. waits for the first bytes and tells TLS apart from plain HTTP (answered 400)
   and garbage;
2. drives the TLS handshake (``Session.handshake_step``: the stdlib's
   non-blocking SSLSocket, pyOpenSSL's WantRead/WantWrite), verification
   included, within the handshake timeout from accept;
3. reads the request head into the connection's buffer, within the request
   timeout and at most ``max_head`` bytes (else 408 or 431, answered and
   closed);
4. only then puts the connection on Cheroot's worker queue, head buffered.

A refused connection lingers here too (FIN sent, input discarded until the
client closes, at most ``LINGER_SECONDS``) so that its TLS alert or HTTP answer
arrives before any reset, without a worker waiting for it.

This module is the scheduling: admission, eviction, deadlines and the selector loop.
What one turn does for one connection is gate_steps.py; a connection's states and
record, and the gate's own answers, are gate_entry.py (the states are re-exported here).

Written by hand because Cheroot offers no hook for a non-blocking handshake and
no asyncio server can feed Cheroot's worker pool; the TLS work itself stays in
OpenSSL (via ``ssl`` and pyOpenSSL).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from .connection import TLSConnection, format_peer
from .gate_entry import (
    ANSWER,
    BODY,
    DELIVER,
    FIRST,
    HANDSHAKE,
    HEAD,
    IDLE,
    LINGER,
    MAX_HEAD,
    Entry,
    head_end,
)
from .gate_steps import READS_PER_TURN, ConnectionSteps

# Re-exported: server.py, cherrypy_mtls.py and tests import these from here.
__all__ = [
    "ANSWER",
    "BODY",
    "DELIVER",
    "FIRST",
    "HANDSHAKE",
    "HEAD",
    "IDLE",
    "LINGER",
    "MAX_HEAD",
    "READS_PER_TURN",
    "Gate",
    "default_max_waiting",
    "head_end",
]

log = logging.getLogger("mtls_matrix.reference")

_MAX_WAIT = 1.0  # the selector wakes at least this often (bounds stop() latency)
_QUEUE_MARGIN = 64  # new connections queued for admission beyond max_waiting


def default_max_waiting() -> int:
    """Half the process's file-descriptor limit (at least 64), less the queue margin:
    waiting connections never exhaust descriptors, on which accept() would fail."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 512
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 65536
    return max(64, soft // 2 - _QUEUE_MARGIN)


class Gate(ConnectionSteps):
    """The gate thread. ``hand_off(conn)`` puts a connection on the worker queue."""

    def __init__(
        self,
        hand_off: Callable[[Any], None],
        *,
        request_timeout: float,
        keepalive_timeout: float,
        max_head: int = MAX_HEAD,
        max_body: int = 0,
        max_waiting: int | None = None,
    ) -> None:
        self._hand_off = hand_off
        self.max_body = max_body  # bodies up to this size are read here (0: never)
        self.max_waiting = max_waiting or default_max_waiting()
        self.request_timeout = request_timeout
        self.keepalive_timeout = keepalive_timeout
        self.max_head = max_head
        self._sel: selectors.BaseSelector | None = None  # created by start()
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._lock = threading.Lock()
        self._inbox: list[tuple[Any, TLSConnection, str]] = []
        self._entries: dict[int, Entry] = {}
        self._deadlines: list[tuple[float, int, Entry]] = []
        self._seq = itertools.count()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="reference-gate", daemon=True)

    # -- from other threads --------------------------------------------------------------
    def start(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close every connection still in the gate."""
        with self._lock:
            self._stopping = True
            inbox, self._inbox = self._inbox, []
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for _, tls, _ in inbox:
            tls.close_now()
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            entry.tls.close_now()
        for resource in (self._sel, self._wake_r, self._wake_w):
            if resource is not None:
                resource.close()

    def submit(self, conn: Any, tls: TLSConnection, state: str = FIRST) -> None:
        """Take ``conn`` (state FIRST for a new connection, IDLE between requests)."""
        tls.gate = self
        dropped: TLSConnection | None = None
        with self._lock:
            overflow = state == FIRST and (
                len(self._entries) + len(self._inbox) >= self.max_waiting + _QUEUE_MARGIN
            )
            if not self._stopping:
                if overflow:
                    # A flood outruns admission: the oldest new connection still queued
                    # makes room, here on the accepting thread, so the newest gets in.
                    for i, (_, queued, queued_state) in enumerate(self._inbox):
                        if queued_state == FIRST:
                            dropped = queued
                            del self._inbox[i]
                            break
                if not overflow or dropped is not None:
                    self._inbox.append((conn, tls, state))
                    conn = None
        if dropped is not None:
            dropped.log_refusal(
                f"dropped to make room: over {self.max_waiting} connections waiting, "
                "this the oldest queued"
            )
            dropped.close_now()
        if conn is not None:
            if not self._stopping:
                tls.log_refusal(f"over {self.max_waiting} connections waiting; closed at once")
            tls.close_now()
            return
        self._wake()

    def linger(self, tls: TLSConnection) -> bool:
        """Close ``tls`` after a linger (a worker refused it); False if the gate is stopping."""
        with self._lock:
            if self._stopping:
                return False
            self._inbox.append((None, tls, LINGER))
        self._wake()
        return True

    def deliver(self, tls: TLSConnection) -> bool:
        """Send what is left of ``tls``'s last response, then end the session and close;
        False if the gate is stopping."""
        with self._lock:
            if self._stopping:
                return False
            self._inbox.append((None, tls, DELIVER))
        self._wake()
        return True

    def census(self) -> Counter:
        """How many connections wait in the gate, by state (for tests and monitoring)."""
        with self._lock:
            counts = Counter(entry.state for entry in self._entries.values())
            counts["queued"] = len(self._inbox)
        return counts

    def _wake(self) -> None:
        # Full: a wake-up is pending anyway. Closed or never opened: stopping.
        with contextlib.suppress(OSError, AttributeError):
            self._wake_w.send(b"\0")

    # -- the gate thread -------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping:
            try:
                ready = self._sel.select(self._next_wait())
            except (OSError, ValueError):
                self._drop_broken()
                continue
            for key, _ in ready:
                if key.data is None:
                    with contextlib.suppress(OSError):
                        while self._wake_r.recv(4096):
                            pass
                elif self._entries.get(key.fd) is key.data:
                    self._guarded(self._step, key.data)
            self._admit()
            self._expire()

    def _guarded(self, action: Callable[[Entry], None], entry: Entry) -> None:
        try:
            action(entry)
        except Exception:  # a bug here must not stop the gate; it shows with its traceback
            log.exception("TLS client %s: internal error in the gate", format_peer(entry.tls.peer))
            self._close(entry)

    def _admit(self) -> None:
        with self._lock:
            inbox, self._inbox = self._inbox, []
        now = time.monotonic()
        for conn, tls, state in inbox:
            entry = Entry(conn, tls, state, fd=tls.fileno())
            if entry.fd < 0 or entry.fd in self._entries:
                tls.close_now()
                continue
            if state == FIRST and len(self._entries) >= self.max_waiting and not self._evict():
                tls.log_refusal(f"{len(self._entries)} connections already waiting (the limit)")
                tls.close_now()
                continue
            if state == IDLE and tls.outbuf:
                entry.state = state = DELIVER  # the response first, then the next request
            if state == FIRST:
                entry.deadline = tls.accepted_at + tls.handshake_timeout
            elif state == IDLE:
                entry.deadline = now + self.keepalive_timeout
            elif state == DELIVER:
                entry.deadline = now + self.request_timeout
            try:
                self._sel.register(entry.fd, selectors.EVENT_READ, entry)
            except (OSError, ValueError, KeyError):
                tls.close_now()
                continue
            with self._lock:
                self._entries[entry.fd] = entry
            if state == LINGER:
                self._start_linger(entry)
            else:
                self._push_deadline(entry)
                if state in (IDLE, DELIVER):  # a pipelined request may be buffered already
                    self._guarded(self._step, entry)

    def _evict(self) -> bool:
        """Make room for a new connection; False if every waiting one has proved itself.

        First a refused connection that lingers, then the oldest that has not
        finished its handshake (it is the likeliest to be an attacker, and it has
        had the longest chance), then the oldest idle kept-alive connection.
        """
        entries = list(self._entries.values())
        for states in ((LINGER, ANSWER), (FIRST, HANDSHAKE), (IDLE,)):
            candidates = [e for e in entries if e.state in states]
            if candidates:
                victim = min(candidates, key=lambda e: e.deadline)
                if victim.state in (FIRST, HANDSHAKE):
                    self._refuse(
                        victim,
                        f"dropped to make room: {len(entries)} connections waiting (the limit),"
                        " this the oldest without a finished handshake",
                    )
                self._close(victim)
                return True
        return False

    def _next_wait(self) -> float:
        while self._deadlines:
            deadline, _, entry = self._deadlines[0]
            if self._entries.get(entry.fd) is entry and entry.deadline == deadline:
                return min(max(deadline - time.monotonic(), 0.0), _MAX_WAIT)
            heapq.heappop(self._deadlines)
        return _MAX_WAIT

    def _push_deadline(self, entry: Entry) -> None:
        heapq.heappush(self._deadlines, (entry.deadline, next(self._seq), entry))

    def _set_deadline(self, entry: Entry, deadline: float) -> None:
        entry.deadline = deadline
        self._push_deadline(entry)

    def _expire(self) -> None:
        now = time.monotonic()
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, _, entry = heapq.heappop(self._deadlines)
            if self._entries.get(entry.fd) is entry and entry.deadline == deadline:
                self._guarded(self._on_deadline, entry)

    def _drop_broken(self) -> None:
        """select() failed: a socket was closed behind the gate's back; drop such entries."""
        for entry in list(self._entries.values()):
            if entry.tls.sock.fileno() < 0:
                self._forget(entry)

    def _wait(self, entry: Entry, event: int) -> None:
        if entry.event != event:
            self._sel.modify(entry.fd, event, entry)
            entry.event = event

    def _forget(self, entry: Entry) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._sel.unregister(entry.fd)
        with self._lock:
            if self._entries.get(entry.fd) is entry:
                del self._entries[entry.fd]

    def _close(self, entry: Entry) -> None:
        self._forget(entry)
        entry.tls.close_now()

    def _refuse(self, entry: Entry, why: str) -> None:
        entry.tls.log_refusal(why)
