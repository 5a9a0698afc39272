"""Deliberately broken targets: servers the harness must survive (SPEC section 10).

Each is a real TLS server on loopback (Python's ``ssl``, real handshakes with the
matrix's certificates), in-process, behind the target contract. What each does wrong:

- ``never_starts``: ``start()`` never returns.
- ``stop_hangs``: serves, but ``stop()`` never returns.
- ``trickles_body``: answers 200 with a Content-Length, then one body byte every 4 s.
- ``endless_continue``: answers ``100 Continue`` forever, never a final response.
- ``huge_body``: answers 200 and streams a 2 GiB body (no Content-Length; generated from
  one 64 KiB buffer, never stored), until the client goes away.
- ``huge_length``: announces a 2 GiB Content-Length.
- ``leaves_child``: starts a child process that its ``stop()`` never ends.
- ``trickles_with_child``: both of the above (the interruption tests' target).
- ``leaves_orphan``: starts a child that starts a grandchild in a new session and exits,
  so the grandchild is nobody's child (the harness sees it as a subreaper).
- ``logs_tracebacks``: logs an exception (with traceback) through ``logging`` for every
  request and every refused handshake, and prints a traceback to stderr for each request.
- ``racing_refusals``: refuses a bad client certificate with the alert OpenSSL prepared,
  or, at random (``BROKEN_ALERT_RATE``, default 0.7 for the alert), closes the
  connection without sending it: tornado's race, made on purpose. The handshake runs on
  memory BIOs (``ssl.SSLObject``), so the server decides which bytes reach the socket.
- ``closes_first_then_alerts``: the first refusal is a bare close, every later one the
  alert (a race's two forms in a known order).
- ``always_closes``: every refusal is a bare close (never the alert).

The pids of processes the targets start are appended to the file named by
``BROKEN_PIDS`` (if set), so the tests can prove none survives (and clean up if one did).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.target import ServerSpec

HEAD_LIMIT = 65536
CHUNK = b" " * 65536
HUGE = 2 * 1024**3
PACE_S = 4.0
log = logging.getLogger("broken.app")


def _record_pid(pid: int) -> None:
    path = os.environ.get("BROKEN_PIDS")
    if path:
        with open(path, "a") as pids:
            pids.write(f"{pid}\n")


def server_context(spec: ServerSpec) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(spec.certificate), str(spec.private_key))
    if spec.client_check != "ignore" and spec.client_ca is not None:
        context.verify_mode = (
            ssl.CERT_REQUIRED if spec.client_check == "required" else ssl.CERT_OPTIONAL
        )
        context.load_verify_locations(str(spec.client_ca))
    return context


def read_head(conn: ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < HEAD_LIMIT:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def answer_json(conn: ssl.SSLSocket, body: bytes = b"{}") -> None:
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


class Server:
    """A threaded TLS server on ``spec.bind``: ``respond(conn, stopping)`` answers one
    request after the handshake; ``accept(raw)`` may take over a raw connection."""

    def __init__(
        self,
        spec: ServerSpec,
        respond: Callable[[ssl.SSLSocket, threading.Event], None] | None = None,
        handshake: Callable[[socket.socket, ssl.SSLContext, Server], None] | None = None,
    ) -> None:
        self.context = server_context(spec)
        self.respond = respond or (lambda conn, stopping: answer_json(conn))
        self.handshake = handshake
        self.stopping = threading.Event()
        family = socket.AF_INET6 if ":" in spec.bind else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((spec.bind, 0))
        self.listener.listen(64)
        self.host = spec.bind
        self.port = self.listener.getsockname()[1]
        self.refusals = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, name="broken-accept", daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return  # stop() shut the listener down
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(10)
        try:
            if self.handshake is not None:
                self.handshake(raw, self.context, self)
                return
            try:
                conn = self.context.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                self.refused(exc)
                return
            with conn:
                read_head(conn)
                self.respond(conn, self.stopping)
        except OSError:
            pass  # the client went away
        finally:
            with contextlib.suppress(OSError):
                raw.close()

    def refused(self, exc: BaseException) -> None:
        with self.lock:
            self.refusals += 1

    def stop(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(5)


class BrokenTarget:
    name = "broken"
    adapters = ("builtin",)

    def unsupported(self, spec: ServerSpec) -> str | None:
        if spec.check_host:
            return "no host check"
        return None

    def provides(self, adapter: str, variable: str) -> bool:
        return False

    def versions(self) -> dict[str, str]:
        return {}

    def start(self, spec: ServerSpec) -> Any:
        return Server(spec)


# -- start and stop ---------------------------------------------------------------------

_never = threading.Event()  # never set


class NeverStarts(BrokenTarget):
    name = "broken:never-starts"

    def start(self, spec: ServerSpec) -> Any:
        _never.wait()  # forever: the harness must give up on it


class _HangingStop:
    def __init__(self, server: Server) -> None:
        self.server, self.host, self.port = server, server.host, server.port

    def stop(self) -> None:
        self.server.stop()
        _never.wait()  # never returns


class StopHangs(BrokenTarget):
    name = "broken:stop-hangs"

    def start(self, spec: ServerSpec) -> Any:
        return _HangingStop(Server(spec))


# -- responses that do not end --------------------------------------------------------


def _trickle(conn: ssl.SSLSocket, stopping: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n")
    for _ in range(64):
        conn.sendall(b" ")
        if stopping.wait(PACE_S):  # pace: one byte every 4 s, whatever the client's timeout
            return


def _endless_continue(conn: ssl.SSLSocket, stopping: threading.Event) -> None:
    for _ in range(10_000_000):  # bounded: the client gives up long before
        if stopping.is_set():
            return
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")


def _huge(conn: ssl.SSLSocket, stopping: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
    sent = 0
    while sent < HUGE and not stopping.is_set():
        conn.sendall(CHUNK)
        sent += len(CHUNK)


def _huge_length(conn: ssl.SSLSocket, stopping: threading.Event) -> None:
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {HUGE}\r\n\r\n".encode()
    )
    _huge_rest(conn, stopping)


def _huge_rest(conn: ssl.SSLSocket, stopping: threading.Event) -> None:
    sent = 0
    while sent < HUGE and not stopping.is_set():
        conn.sendall(CHUNK)
        sent += len(CHUNK)


class _Responding(BrokenTarget):
    respond: Callable[[ssl.SSLSocket, threading.Event], None]

    def start(self, spec: ServerSpec) -> Any:
        return Server(spec, type(self).respond)


class TricklesBody(_Responding):
    name = "broken:trickles-body"
    respond = staticmethod(_trickle)


class EndlessContinue(_Responding):
    name = "broken:endless-continue"
    respond = staticmethod(_endless_continue)


class HugeBody(_Responding):
    name = "broken:huge-body"
    respond = staticmethod(_huge)


class HugeLength(_Responding):
    name = "broken:huge-length"
    respond = staticmethod(_huge_length)


# -- processes that outlive stop() -----------------------------------------------------

PAUSE = "import signal; signal.pause()"  # waits for a signal, forever
ORPHAN = (
    "import subprocess, sys; "
    f"p = subprocess.Popen([sys.executable, '-c', {PAUSE!r}], start_new_session=True, "
    "stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
    "print(p.pid, flush=True)"
)


class LeavesChild(BrokenTarget):
    name = "broken:leaves-child"

    def start(self, spec: ServerSpec) -> Any:
        child = subprocess.Popen([sys.executable, "-c", PAUSE])
        _record_pid(child.pid)
        return Server(spec)  # its stop() never ends the child


class LeavesOrphan(BrokenTarget):
    name = "broken:leaves-orphan"

    def start(self, spec: ServerSpec) -> Any:
        out = subprocess.run(
            [sys.executable, "-c", ORPHAN], capture_output=True, text=True, timeout=30
        )
        _record_pid(int(out.stdout.split()[0]))
        return Server(spec)


class TricklesWithChild(TricklesBody):
    """Trickles its body and starts a child process its stop() never ends: for the
    interruption tests (a slow case to interrupt, a process that must not survive)."""

    name = "broken:trickles-with-child"

    def start(self, spec: ServerSpec) -> Any:
        child = subprocess.Popen([sys.executable, "-c", PAUSE])
        _record_pid(child.pid)
        return super().start(spec)


# -- logs ------------------------------------------------------------------------------


def _logs_and_answers(conn: ssl.SSLSocket, stopping: threading.Event) -> None:
    try:
        raise RuntimeError("the application failed")
    except RuntimeError:
        log.exception("request failed")
        import traceback

        traceback.print_exc(file=sys.stderr)  # a second traceback, as raw stderr text
    answer_json(conn)


class _LoggingServer(Server):
    def refused(self, exc: BaseException) -> None:
        super().refused(exc)
        log.error("handshake refused", exc_info=exc)


class LogsTracebacks(BrokenTarget):
    name = "broken:logs-tracebacks"

    def start(self, spec: ServerSpec) -> Any:
        return _LoggingServer(spec, _logs_and_answers)


# -- refusals that race ----------------------------------------------------------------


def _bio_handshake(
    raw: socket.socket, context: ssl.SSLContext, server: Server, send_alert: Callable[[], bool]
) -> None:
    """A handshake on memory BIOs: on a refusal, the alert OpenSSL prepared reaches the
    socket only if ``send_alert()`` says so; otherwise the connection is closed bare."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)
    for _ in range(64):  # a handshake takes a few flights
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            if outgoing.pending:
                raw.sendall(outgoing.read())
            data = raw.recv(65536)
            if not data:
                return
            incoming.write(data)
        except ssl.SSLError as exc:
            server.refused(exc)
            _refuse(raw, outgoing, send_alert())
            return
    else:
        return
    if outgoing.pending:
        raw.sendall(outgoing.read())
    head = b""
    for _ in range(64):
        try:
            head += tls.read(65536)
        except ssl.SSLWantReadError:
            data = raw.recv(65536)
            if not data:
                return
            incoming.write(data)
            continue
        except ssl.SSLError as exc:  # TLS 1.3: the client certificate judged after Finished
            server.refused(exc)
            _refuse(raw, outgoing, send_alert())
            return
        if b"\r\n\r\n" in head:
            break
    body = b"{}"
    tls.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    raw.sendall(outgoing.read())


def _refuse(raw: socket.socket, outgoing: ssl.MemoryBIO, alert: bool) -> None:
    """Send the prepared alert and close cleanly (FIN after the client's bytes were read,
    so no reset can overtake the alert), or close at once without it (_serve closes)."""
    if not alert or not outgoing.pending:
        return
    raw.sendall(outgoing.read())
    raw.shutdown(socket.SHUT_WR)
    raw.settimeout(2.0)
    for _ in range(64):  # what the client still sends (its request), until it closes
        if not raw.recv(65536):
            break


class _Racing(BrokenTarget):
    def send_alert(self, server: Server) -> bool:
        raise NotImplementedError

    def start(self, spec: ServerSpec) -> Any:
        target = self

        def handshake(raw: socket.socket, context: ssl.SSLContext, server: Server) -> None:
            _bio_handshake(raw, context, server, lambda: target.send_alert(server))

        return Server(spec, handshake=handshake)


class RacingRefusals(_Racing):
    name = "broken:racing-refusals"

    def send_alert(self, server: Server) -> bool:
        return random.random() < float(os.environ.get("BROKEN_ALERT_RATE", "0.7"))


class ClosesFirstThenAlerts(_Racing):
    name = "broken:closes-first-then-alerts"

    def send_alert(self, server: Server) -> bool:
        return server.refusals > 1


class AlwaysCloses(_Racing):
    name = "broken:always-closes"

    def send_alert(self, server: Server) -> bool:
        return False


def never_starts() -> NeverStarts:
    return NeverStarts()


def stop_hangs() -> StopHangs:
    return StopHangs()


def trickles_body() -> TricklesBody:
    return TricklesBody()


def endless_continue() -> EndlessContinue:
    return EndlessContinue()


def huge_body() -> HugeBody:
    return HugeBody()


def huge_length() -> HugeLength:
    return HugeLength()


def trickles_with_child() -> TricklesWithChild:
    return TricklesWithChild()


def leaves_child() -> LeavesChild:
    return LeavesChild()


def leaves_orphan() -> LeavesOrphan:
    return LeavesOrphan()


def logs_tracebacks() -> LogsTracebacks:
    return LogsTracebacks()


def racing_refusals() -> RacingRefusals:
    return RacingRefusals()


def closes_first_then_alerts() -> ClosesFirstThenAlerts:
    return ClosesFirstThenAlerts()


def always_closes() -> AlwaysCloses:
    return AlwaysCloses()


ROOT = Path(__file__).resolve().parents[1]
