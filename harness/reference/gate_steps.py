"""One step of one connection in the gate, each bounded so no connection holds the thread.

The gate (gate.py) calls ``_step(entry)`` when the connection's socket is ready and
``_on_deadline(entry)`` when its time is up; each step does what can be done now
without blocking and returns: peek at the first bytes, drive the handshake, read at
most ``READS_PER_TURN`` records of a request head and body (framed as Cheroot frames
it: framing.py), write a ``100 Continue`` or the gate's own answer, deliver what a
worker left unsent, linger after a refusal. A connection with more to read waits for
its next turn; a client's post-handshake flood is cut inside OpenSSL (budget.py).

``ConnectionSteps`` is a mixin of ``Gate``: it uses the gate's bookkeeping
(``_wait``, ``_close``, ``_refuse``, ``_set_deadline``, ``_forget``, ``_hand_off``).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time

from .connection import (
    DRAIN_READS,
    LINGER_SECONDS,
    MAX_READ,
    PLAIN_HTTP_ANSWER,
    Refused,
    Reset,
    Want,
)
from .framing import ChunkedError, ChunkedScanner, framing, without_expect
from .gate_entry import (
    ANSWER,
    ANSWER_400_CHUNKED,
    ANSWER_408,
    ANSWER_413,
    ANSWER_431,
    BODY,
    CONTINUE,
    DELIVER,
    FIRST,
    HANDSHAKE,
    HEAD,
    IDLE,
    LINGER,
    Entry,
    head_end,
)

READ_CHUNK = 16 * 1024  # one TLS record's worth of plaintext
# Reads of one connection per turn of the gate (at most 16 x 16 KiB): a connection with
# more to read waits for the next turn (the socket stays readable), so one client that
# sends fast cannot keep the single gate thread from the others (SPEC section 7).
READS_PER_TURN = 16


class ConnectionSteps:
    """The per-connection half of ``Gate`` (see the module docstring)."""

    max_head: int
    max_body: int
    request_timeout: float
    keepalive_timeout: float

    def _step(self, entry: Entry) -> None:
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

    def _first_bytes(self, entry: Entry) -> None:
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

    def _handshake(self, entry: Entry) -> None:
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

    def _read_head(self, entry: Entry) -> None:
        tls = entry.tls
        if entry.state == BODY and entry.out and not self._send_continue(entry):
            return  # the 100 Continue waits for the socket; the body cannot come before it
        if tls.inbuf and self._head_done(entry):  # a pipelined request, buffered already
            return
        for _ in range(READS_PER_TURN):  # then other connections get their turn
            try:
                data = tls.session.read_step(READ_CHUNK)
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

    def _head_done(self, entry: Entry) -> bool:
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

    def _body_done(self, entry: Entry) -> bool:
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

    def _send_continue(self, entry: Entry) -> bool:
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

    def _on_deadline(self, entry: Entry) -> None:
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

    def _start_answer(self, entry: Entry, answer: bytes, *, tls_layer: bool = True) -> None:
        entry.state = ANSWER
        entry.out = answer
        entry.out_tls = tls_layer
        self._set_deadline(entry, time.monotonic() + LINGER_SECONDS)
        self._answer(entry)

    def _answer(self, entry: Entry) -> None:
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

    def _deliver(self, entry: Entry) -> None:
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

    def _start_linger(self, entry: Entry) -> None:
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

    def _drain(self, entry: Entry) -> None:
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
