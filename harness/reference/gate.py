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
from dataclasses import dataclass, field
from typing import Any

from .connection import (
    DRAIN_READS,
    LINGER_SECONDS,
    MAX_READ,
    PLAIN_HTTP_ANSWER,
    Refused,
    Reset,
    TLSConnection,
    Want,
    format_peer,
)
from .framing import ChunkedError, ChunkedScanner, framing, without_expect

log = logging.getLogger("mtls_matrix.reference")

MAX_HEAD = 64 * 1024  # SPEC section 7: request line and headers together
_READ_CHUNK = 16 * 1024  # one TLS record's worth of plaintext
# Reads of one connection per turn of the gate (at most 16 x 16 KiB): a connection with
# more to read waits for the next turn (the socket stays readable), so one client that
# sends fast cannot keep the single gate thread from the others (SPEC section 7).
_READS_PER_TURN = 16
_MAX_WAIT = 1.0  # the selector wakes at least this often (bounds stop() latency)
_QUEUE_MARGIN = 64  # new connections queued for admission beyond max_waiting

# States a connection can be in while it is in the gate.
FIRST = "first-bytes"  # accepted, nothing received yet
HANDSHAKE = "handshake"
HEAD = "request-head"  # handshake done, reading a request head
BODY = "request-body"  # a whole head, reading its (Content-Length, bounded) body
IDLE = "keep-alive"  # between two requests on a kept-alive connection
ANSWER = "answer"  # writing a 400/408/413/431 before lingering
DELIVER = "deliver"  # writing the rest of a response a worker left (then keep-alive or close)
LINGER = "linger"  # refused: FIN sent, discarding input until the client closes


def _response(status: str, text: str) -> bytes:
    body = text.encode() + b"\n"
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


ANSWER_408 = _response("408 Request Timeout", "The request head did not arrive in time.")
ANSWER_400_CHUNKED = _response("400 Bad Request", "The chunked request body is malformed.")
ANSWER_413 = _response(
    "413 Request Entity Too Large", "The request body is larger than this server accepts."
)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
ANSWER_431 = _response(
    "431 Request Header Fields Too Large", "The request head is larger than 64 KiB."
)


@dataclass(eq=False)
class _Entry:
    conn: Any  # cheroot.server.HTTPConnection, or None for a socket that only lingers
    tls: TLSConnection
    state: str
    deadline: float = 0.0
    event: int = selectors.EVENT_READ
    out: bytes = b""
    out_tls: bool = True
    scan_from: int = 0
    need: int = 0  # BODY, Content-Length: the buffer length that holds head and body
    chunks: ChunkedScanner | None = None  # BODY, chunked: where the body ends
    fd: int = field(default=-1)


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


def head_end(buf: bytes | bytearray, start: int = 0) -> int:
    """Index just past the request head in ``buf``, or -1 while it is incomplete.

    The head ends at the first empty line (CRLF CRLF, RFC 9112 section 2.1). A
    bare LF ends it early: Cheroot answers such a line with 400 without reading
    further, so the worker never waits. ``start`` skips what an earlier call
    already scanned.
    """
    i = buf.find(b"\n", max(start - 3, 0))
    while i != -1:
        if i == 0 or buf[i - 1] != 0x0D:
            return i + 1
        if i >= 3 and buf[i - 3 : i + 1] == b"\r\n\r\n":
            return i + 1
        i = buf.find(b"\n", i + 1)
    return -1


class Gate:
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
        self._entries: dict[int, _Entry] = {}
        self._deadlines: list[tuple[float, int, _Entry]] = []
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

    def _guarded(self, action: Callable[[_Entry], None], entry: _Entry) -> None:
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
            entry = _Entry(conn, tls, state, fd=tls.fileno())
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

    def _push_deadline(self, entry: _Entry) -> None:
        heapq.heappush(self._deadlines, (entry.deadline, next(self._seq), entry))

    def _set_deadline(self, entry: _Entry, deadline: float) -> None:
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

    def _wait(self, entry: _Entry, event: int) -> None:
        if entry.event != event:
            self._sel.modify(entry.fd, event, entry)
            entry.event = event

    def _forget(self, entry: _Entry) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._sel.unregister(entry.fd)
        with self._lock:
            if self._entries.get(entry.fd) is entry:
                del self._entries[entry.fd]

    def _close(self, entry: _Entry) -> None:
        self._forget(entry)
        entry.tls.close_now()

    def _refuse(self, entry: _Entry, why: str) -> None:
        entry.tls.log_refusal(why)

    # -- one step of one connection ------------------------------------------------------------
    def _step(self, entry: _Entry) -> None:
        {
            FIRST: self._first_bytes,
            HANDSHAKE: self._handshake,
            HEAD: self._read_head,
            BODY: self._read_head,
            IDLE: self._read_head,
            ANSWER: self._answer,
            DELIVER: self._deliver,
            LINGER: self._drain,
        }[entry.state](entry)

    def _first_bytes(self, entry: _Entry) -> None:
        tls = entry.tls
        sock = tls.sock
        try:
            sock.setblocking(False)
            head = sock.recv(8, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._refuse(entry, f"connection failed before the handshake: {exc.strerror or exc}")
            self._close(entry)
            return
        if not head:
            self._refuse(entry, "closed the connection before the handshake")
            self._close(entry)
            return
        kind = tls.classify_first_bytes(head)
        if kind == "tls":
            try:
                tls.open_session()
            except Refused as exc:
                self._refuse(entry, str(exc))
                self._close(entry)
                return
            entry.state = HANDSHAKE
            self._handshake(entry)
        elif kind == "http":
            with contextlib.suppress(OSError):  # read what came, so closing sends no RST
                for _ in range(DRAIN_READS):
                    if not tls.raw_recv(65536):
                        break
            self._refuse(entry, "spoke plain HTTP to the TLS port (answered 400)")
            self._start_answer(entry, PLAIN_HTTP_ANSWER, tls_layer=False)
        else:
            self._refuse(entry, f"sent bytes that are not TLS (starting {head[:4].hex()})")
            self._start_linger(entry)

    def _handshake(self, entry: _Entry) -> None:
        tls = entry.tls
        try:
            tls.session.handshake_step()
        except Want as want:
            self._wait(entry, want.event)
            return
        except Reset as exc:
            self._refuse(entry, str(exc))
            self._close(entry)
            return
        except Refused as exc:
            self._refuse(entry, str(exc))
            self._start_linger(entry)
            return
        tls.handshaken = True
        entry.state = HEAD
        self._set_deadline(entry, time.monotonic() + self.request_timeout)
        self._read_head(entry)  # under TLS 1.3 the request may have come with the Finished

    def _read_head(self, entry: _Entry) -> None:
        tls = entry.tls
        if entry.state == BODY and entry.out and not self._send_continue(entry):
            return  # the 100 Continue waits for the socket; the body cannot come before it
        if tls.inbuf and self._head_done(entry):  # a pipelined request, buffered already
            return
        for _ in range(_READS_PER_TURN):  # then other connections get their turn
            try:
                data = tls.session.read_step(_READ_CHUNK)
            except Want as want:
                self._wait(entry, want.event)
                return
            except Refused as exc:
                between_requests = entry.state == IDLE and not tls.inbuf
                if not (between_requests and isinstance(exc, Reset)):
                    self._refuse(entry, str(exc))
                self._close(entry)
                return
            if not data:
                if tls.inbuf:
                    self._refuse(entry, "closed the connection in the middle of a request head")
                self._close(entry)  # closing before (another) request is not a failure
                return
            if entry.state == IDLE:
                entry.state = HEAD
                self._set_deadline(entry, time.monotonic() + self.request_timeout)
            tls.inbuf += data
            if self._head_done(entry):
                return

    def _head_done(self, entry: _Entry) -> bool:
        """Hand off (or answer 400, 413, 431) once the buffer holds a whole head and its
        body; False: read on.

        The body is read here whatever its framing (Content-Length or chunked, with or
        without ``Expect: 100-continue``, which the gate answers), as Cheroot will
        frame it (framing.py), so that a worker never waits for a body.
        """
        tls = entry.tls
        if entry.state != BODY:
            end = head_end(tls.inbuf, entry.scan_from)
            entry.scan_from = len(tls.inbuf)
            if end > self.max_head or (end < 0 and len(tls.inbuf) > self.max_head):
                self._refuse(
                    entry, f"sent a request head over {self.max_head // 1024} KiB (answered 431)"
                )
                self._start_answer(entry, ANSWER_431)
                return True
            if end < 0:
                return False
            frame = framing(bytes(tls.inbuf[:end]), self.max_body) if self.max_body else None
            if frame is not None and frame.expect_continue:
                head = without_expect(bytes(tls.inbuf[:end]))
                tls.inbuf[:end] = head
                end = entry.scan_from = len(head)
            if frame is not None and frame.kind != "none":
                entry.state = BODY  # read the body here too: a trickle holds no worker
                entry.need = end + frame.length if frame.kind == "length" else 0
                entry.chunks = (
                    ChunkedScanner(end, self.max_body) if frame.kind == "chunked" else None
                )
                self._set_deadline(entry, time.monotonic() + self.request_timeout)
                if not self._body_done(entry):
                    if entry.state == BODY and frame.expect_continue:
                        entry.out = CONTINUE
                        if not self._send_continue(entry):
                            return True  # waiting to write it (or closed): read no further
                    return entry.state != BODY
        elif not self._body_done(entry):
            return entry.state != BODY
        self._forget(entry)
        entry.chunks = None
        tls.request_timeout = self.request_timeout
        tls.body_deadline = time.monotonic() + self.request_timeout
        self._hand_off(entry.conn)
        return True

    def _body_done(self, entry: _Entry) -> bool:
        """Whether the buffer holds the whole body; answers 400 or 413 (state ANSWER)
        for a chunked body Cheroot would refuse or that grows past the bound."""
        if entry.chunks is None:
            return len(entry.tls.inbuf) >= entry.need
        try:
            end = entry.chunks.scan(entry.tls.inbuf)
            if end >= 0 and entry.chunks.trailers_at < end - 2:
                del entry.tls.inbuf[entry.chunks.trailers_at : end - 2]  # Cheroot reads none
            return end >= 0
        except ChunkedError as exc:
            answer = ANSWER_413 if exc.status == "413" else ANSWER_400_CHUNKED
            self._refuse(
                entry, f"sent a chunked body the server refuses: {exc} (answered {exc.status})"
            )
            entry.chunks = None
            self._start_answer(entry, answer)
            return False

    def _send_continue(self, entry: _Entry) -> bool:
        """Write the pending ``100 Continue``; False while the socket cannot take it."""
        while entry.out:
            try:
                sent = entry.tls.session.write_step(entry.out)
            except Want as want:
                self._wait(entry, want.event)
                return False
            except Refused as exc:
                self._refuse(entry, str(exc))
                self._close(entry)
                return False
            entry.out = entry.out[sent:]
        self._wait(entry, selectors.EVENT_READ)
        return True

    def _on_deadline(self, entry: _Entry) -> None:
        tls = entry.tls
        if entry.state == FIRST:
            self._refuse(entry, f"sent nothing within {tls.handshake_timeout:g}s")
            self._close(entry)
        elif entry.state == HANDSHAKE:
            self._refuse(entry, f"handshake timed out after {tls.handshake_timeout:g}s")
            self._close(entry)
        elif entry.state == BODY:
            self._refuse(
                entry,
                f"request body not complete within {self.request_timeout:g}s (answered 408)",
            )
            self._start_answer(entry, ANSWER_408)
        elif entry.state == HEAD:
            self._refuse(
                entry,
                f"sent no complete request head within {self.request_timeout:g}s (answered 408)",
            )
            self._start_answer(entry, ANSWER_408)
        elif entry.state == DELIVER:
            self._refuse(
                entry,
                f"did not read its response ({len(tls.outbuf) // 1024} KiB waiting) "
                f"within {self.request_timeout:g}s; dropped",
            )
            tls.outbuf.clear()
            self._close(entry)
        else:  # IDLE: an unused kept-alive connection; ANSWER, LINGER: time is up
            self._close(entry)

    def _start_answer(self, entry: _Entry, answer: bytes, *, tls_layer: bool = True) -> None:
        entry.state = ANSWER
        entry.out = answer
        entry.out_tls = tls_layer
        self._set_deadline(entry, time.monotonic() + LINGER_SECONDS)
        self._answer(entry)

    def _answer(self, entry: _Entry) -> None:
        tls = entry.tls
        while entry.out:
            try:
                if entry.out_tls:
                    sent = tls.session.write_step(entry.out)
                else:
                    sent = tls.raw_send(entry.out)
            except Want as want:
                self._wait(entry, want.event)
                return
            except (BlockingIOError, InterruptedError):
                self._wait(entry, selectors.EVENT_WRITE)
                return
            except (Refused, OSError):
                self._close(entry)
                return
            entry.out = entry.out[sent:]
        self._start_linger(entry)

    def _deliver(self, entry: _Entry) -> None:
        """Write what a worker left unsent; then wait for the next request (keep-alive)
        or end the session (close_notify, FIN, linger)."""
        tls = entry.tls
        while tls.outbuf:  # each pass sends at least a byte, or waits
            try:
                sent = tls.session.write_step(bytes(tls.outbuf[:MAX_READ]))
            except Want as want:
                self._wait(entry, want.event)
                return
            except Refused as exc:
                if not isinstance(exc, Reset):
                    self._refuse(entry, f"{exc} (while its response was delivered)")
                tls.outbuf.clear()
                self._close(entry)
                return
            del tls.outbuf[:sent]
        if entry.conn is None:
            self._start_linger(entry)
            return
        entry.state = IDLE
        self._set_deadline(entry, time.monotonic() + self.keepalive_timeout)
        self._wait(entry, selectors.EVENT_READ)
        self._read_head(entry)

    def _start_linger(self, entry: _Entry) -> None:
        """FIN now, then read and discard until the client closes or LINGER_SECONDS pass.

        Closing with unread input makes the kernel send RST, which can overtake a
        TLS alert or an HTTP answer; the client closes once it has read them.
        """
        entry.state = LINGER
        if entry.out_tls:
            entry.tls.send_close_notify()  # after a response (a 408, say), not after a refusal
        entry.tls.raw_shutdown_write()
        self._set_deadline(entry, time.monotonic() + LINGER_SECONDS)
        self._wait(entry, selectors.EVENT_READ)
        self._drain(entry)

    def _drain(self, entry: _Entry) -> None:
        for _ in range(DRAIN_READS):
            try:
                if not entry.tls.raw_recv(65536):
                    break
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                break
        else:
            return  # still sending: more next time, until the deadline
        self._close(entry)
