"""The matrix's HTTPS client, and how one attempt is classified (SPEC sections 4 and 6).

A ``TLSClient`` builds its TLS context once per (trust root, client credential, TLS
version), so running hundreds of cases does not reload PEM files, and makes each
request with the standard library: ``http.client`` over a socket it connects and wraps
itself (``ssl.SSLContext.wrap_socket``). Classification looks only at exception types
and OpenSSL's reason codes (stable identifiers such as
``TLSV13_ALERT_CERTIFICATE_REQUIRED``), never at message text; the text is kept for
people to read.

Why not requests: the matrix's own traffic is one GET per fresh connection, with a
context of its own, so requests' session, adapter and urllib3's pool add cost and nothing
else. Measured 2026-12-03 (2-core machine loaded by other work; one process, 190
interleaved requests each, against the reference server): the least a request can do
(``python -m matrix.bench``'s floor) 6.25 ms, through requests 9.70 ms, this client
6.60 ms (median wall time; CPU 6.05 / 9.13 / 6.73 ms). What requests and urllib3 did
that matters is kept: the ALPN offer ``http/1.1``, TCP_NODELAY, a request whose send
fails with a broken pipe or a reset still reads the answer (the server's alert, for a
TLS 1.3 refusal), a body shorter than its Content-Length is an ``IncompleteRead``, and
an IP address is verified as an IP (and sent no SNI).

A refusal is described by where it came (``stage``) and how (``form``, and the
``alert`` when there was one), SPEC section 6. The client's connection notes whether
the handshake had finished when an error surfaced and whether the response's status
line was read, and the TLS context's message callback notes the version the
ServerHello chose and
the CA names of the server's CertificateRequest (RFC 5246 section 7.4.4,
RFC 8446 section 4.2.4). That callback is CPython's ``SSLContext._msg_callback``
(OpenSSL's SSL_CTX_set_msg_callback; present since 3.8, underscored because
CPython keeps it for its own tests). Without it, ``tls_version`` is known only
once a handshake completed, and ``ca_names`` stays None.

Bounds (SPEC section 10; docs/spec.md section 10): whatever the server does, one
``get`` ends within ``deadline`` seconds (the whole request: connect, handshake,
interim responses, headers, body; ``timeout`` still bounds each socket operation)
and holds at most ``MAX_BODY`` bytes of body in memory. The deadline is a timer
(``Deadlines``: one thread for all requests)
that shuts the connection's socket down (``socket.shutdown``), which ends any
read in progress however the server paces its bytes; the body is read in chunks
against a running total (``Accept-Encoding: identity``, so nothing is inflated),
and a ``Content-Length`` over the cap ends the request before any body byte is
read. More than ``MAX_INTERIM`` interim (1xx) responses before the final one end
it too. An attempt that hit a bound is an ``error`` with ``limit`` naming it
(``LIMITS``); the matrix makes that a problem of its own kind.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import itertools
import json
import math
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .tlsnames import certificate_request_ca_names

OK = "ok"
REJECTED = "rejected"
SERVER_CERT_REJECTED = "server-cert-rejected"
ERROR = "error"
SKIPPED = "skipped"

# Where a refusal surfaced (SPEC section 6).
HANDSHAKE = "handshake"  # before the client's handshake completed
FIRST_READ = "first-read"  # handshake complete, no byte of an HTTP response yet
RESPONSE = "response"  # after the response's status line and headers arrived
STAGES = (HANDSHAKE, FIRST_READ, RESPONSE)
# How it surfaced.
ALERT = "alert"  # a fatal TLS alert (``alert`` names it)
CLOSE = "close"  # the connection ended (FIN) without an alert
RESET = "reset"  # the connection was reset (RST)
FORMS = (ALERT, CLOSE, RESET)

# Whether this Python lets the client see ServerHello and CertificateRequest.
OBSERVES_HANDSHAKE = hasattr(ssl.SSLContext, "_msg_callback")

TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}

DEFAULT_TIMEOUT = 5.0  # seconds, each socket operation
DEADLINE_FACTOR = 2.0  # the whole request's deadline, by default, in per-operation timeouts
MAX_BODY = 1024 * 1024  # bytes: the application's JSON is a few KiB
MAX_INTERIM = 10  # interim (1xx) responses before the final one
_CHUNK = 64 * 1024

# The bounds one request can hit (Attempt.limit; the matrix's problem kinds of the same name).
RESPONSE_DEADLINE = "response-deadline"
RESPONSE_SIZE = "response-size"
INTERIM_RESPONSES = "interim-responses"
LIMITS = (RESPONSE_DEADLINE, RESPONSE_SIZE, INTERIM_RESPONSES)

_ALERT_PREFIXES = ("SSLV3_ALERT_", "TLSV1_ALERT_", "TLSV13_ALERT_")
# OpenSSL reason codes for alerts whose name lacks the ALERT_ infix.
_ALERT_REASONS = {
    "TLSV1_UNRECOGNIZED_NAME": "unrecognized_name",
    "TLSV1_BAD_CERTIFICATE_STATUS_RESPONSE": "bad_certificate_status_response",
    "TLSV1_BAD_CERTIFICATE_HASH_VALUE": "bad_certificate_hash_value",
    "TLSV1_CERTIFICATE_UNOBTAINABLE": "certificate_unobtainable",
}
_EOF_REASONS = {"UNEXPECTED_EOF_WHILE_READING", "EOF_OCCURRED_IN_VIOLATION_OF_PROTOCOL"}
# OpenSSL's msg_callback: record content type 22 (handshake), message types.
_HANDSHAKE, _SERVER_HELLO, _CERTIFICATE_REQUEST = 22, 2, 13
_WIRE_VERSIONS = {0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}


@dataclass(frozen=True)
class Attempt:
    """One GET, as the client saw it.

    ``tls_version`` is "TLSv1.2" / "TLSv1.3" once the server's ServerHello chose
    one (None if the server refused before that). For a refusal, ``stage`` is one
    of STAGES, ``form`` one of FORMS and ``alert`` the RFC 8446 section 6 name in
    snake_case (``certificate_required``), None unless ``form`` is "alert".
    ``ca_names`` are the distinguished names (RFC 4514 strings) the server's
    CertificateRequest listed, in its order; None when no CertificateRequest came
    (or the Python lacks the message callback). ``limit`` is the bound the request
    hit (one of LIMITS; the outcome is then ``error``), None when it hit none.
    """

    outcome: str
    detail: str = ""
    status: int | None = None
    environ: dict[str, Any] = field(default_factory=dict)
    tls_version: str | None = None
    stage: str | None = None
    form: str | None = None
    alert: str | None = None
    ca_names: tuple[str, ...] | None = None
    limit: str | None = None


class InterimLimitError(http.client.HTTPException):
    """More than MAX_INTERIM interim (1xx) responses came before a final one."""


@dataclass
class _Wire:
    """What one connection showed on the way, noted while it happens."""

    tls_version: str | None = None
    handshake_done: bool = False
    response_started: bool = False
    status: int | None = None  # the final response's status, once its status line was read
    ca_names: tuple[str, ...] | None = None
    interim: int = 0  # interim (1xx) status lines read
    expired: bool = False  # the whole-request deadline passed; the socket was shut down
    sockets: list[socket.socket] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, sock: socket.socket) -> None:
        """A socket this request opened. A duplicate of its descriptor is kept (the TLS
        layer detaches the original object): shutting it down ends the connection
        itself. Shut down at once if the deadline has passed already."""
        sock = sock.dup()
        with self.lock:
            self.sockets.append(sock)
            if not self.expired:
                return
        _shutdown(sock)

    def expire(self) -> None:
        """The deadline's timer: end every read of this request, however it is paced."""
        with self.lock:
            self.expired = True
            sockets = list(self.sockets)
        for sock in sockets:
            _shutdown(sock)

    @property
    def stage(self) -> str:
        if self.response_started:
            return RESPONSE
        return FIRST_READ if self.handshake_done else HANDSHAKE


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed or never connected
        sock.shutdown(socket.SHUT_RDWR)


class _Response(http.client.HTTPResponse):
    """http.client's response, skipping every interim (1xx) response and counting them
    against MAX_INTERIM.

    http.client skips only ``100 Continue`` (in ``begin``, reading each status line
    through ``_read_status``) and takes any other 1xx for the final response: a server
    sending ``103 Early Hints`` (RFC 8297) first was an ``error`` on every case. RFC 9110
    section 15.2: a client must parse 1xx responses it did not expect. The others (but
    ``101 Switching Protocols``, which ends HTTP/1.1 on the connection) are skipped here,
    their header fields read and dropped."""

    def __init__(self, sock: socket.socket, *args: Any, wire: _Wire, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self._wire = wire

    def _read_status(self) -> tuple[str, int, str]:
        for _ in range(MAX_INTERIM + 1):  # bounded: the count raises past MAX_INTERIM
            version, status, reason = super()._read_status()
            if 100 <= status < 200:
                self._wire.interim += 1
                if self._wire.interim > MAX_INTERIM:
                    raise InterimLimitError(f"more than {MAX_INTERIM} interim responses")
            if status in (100, 101) or not 100 <= status < 200:
                return version, status, reason  # begin() skips a 100 itself
            http.client.parse_headers(self.fp)  # another 1xx: its header fields, dropped
        raise InterimLimitError(f"more than {MAX_INTERIM} interim responses")


class _Connection(http.client.HTTPSConnection):
    """http.client's HTTPS connection, connected and wrapped here so that the request
    reports its progress to ``wire`` (TCP socket, handshake finished, response started)
    and the name checked (and sent as SNI) may differ from the host connected to."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float,
        context: ssl.SSLContext,
        server_hostname: str | None,
        wire: _Wire,
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._tls_context = context
        self._server_hostname = server_hostname or host
        self._wire = wire
        self.response_class = functools.partial(_Response, wire=wire)  # type: ignore[assignment]

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self._wire.attach(raw)
        with contextlib.suppress(OSError):  # as http.client and urllib3 do
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:  # the whole TLS handshake; an IP address is checked as one, without SNI
            self.sock = self._tls_context.wrap_socket(raw, server_hostname=self._server_hostname)
        except BaseException:
            raw.close()
            raise
        self._wire.handshake_done = True
        self._wire.tls_version = self.sock.version() or self._wire.tls_version

    def getresponse(self) -> http.client.HTTPResponse:
        response = super().getresponse()
        self._wire.response_started = True
        self._wire.status = response.status
        return response


# A send that fails because the server has refused and closed already. Its alert (TLS
# 1.3 refuses a client certificate after the client's handshake is over) was sent
# before the close and is still waiting to be read, so the request goes on to read it.
# OpenSSL reports the failed write as EPIPE or ECONNRESET, or, when the server's reset
# arrived first, as an EOF (ssl.SSLEOFError); measured against Werkzeug 3 on
# CPython 3.11 / OpenSSL 3.0: 7 of 600 sends, each followed by a read that got the
# server's certificate_required alert. Taken for a bare close, such an attempt made the
# verdict of a racing case depend on the sample (docs/spec.md 10.1).
SEND_REFUSED = (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError)

DEADLINES_THREAD = "mtls-matrix-deadlines"  # the name of its one thread


class Deadlines:
    """Calls each registered function once its deadline has passed, unless cancelled first.

    One daemon thread serves every request of the process: ``threading.Timer`` starts a
    thread per request, and a thread's start waits until it runs (about 0.5 ms, several
    ms on a loaded host, for every one of a matrix run's ~600 requests). The thread
    sleeps until the earliest deadline, is woken only by a deadline earlier than that one
    (requests share one length, so hardly ever), and ends after ``idle`` seconds with
    nothing registered; the next ``add`` starts it again. A cancelled deadline is only
    forgotten: the thread may wake for it and find nothing to do.
    """

    def __init__(self, idle: float = 30.0) -> None:
        self.idle = idle
        self._cond = threading.Condition()
        self._due: dict[int, tuple[float, Callable[[], None]]] = {}
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None
        self._sleeping_until = math.inf

    def add(self, seconds: float, expire: Callable[[], None]) -> int:
        """Call ``expire`` (in the deadlines' thread) in ``seconds``; a key for ``cancel``."""
        due = time.monotonic() + seconds
        with self._cond:
            key = next(self._keys)
            self._due[key] = (due, expire)
            if self._thread is None or not self._thread.is_alive():  # (or after a fork)
                self._thread = threading.Thread(
                    target=self._run, name=DEADLINES_THREAD, daemon=True
                )
                self._thread.start()
            elif due < self._sleeping_until:
                self._cond.notify()
        return key

    def cancel(self, key: int) -> None:
        with self._cond:
            self._due.pop(key, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                passed = [key for key, (due, _) in self._due.items() if due <= now]
                expired = [self._due.pop(key)[1] for key in passed]
                if not expired:
                    if self._due:
                        self._sleeping_until = min(due for due, _ in self._due.values())
                        self._cond.wait(self._sleeping_until - now)
                        continue
                    self._sleeping_until = now + self.idle
                    self._cond.wait(self.idle)
                    if not self._due:  # nothing registered for ``idle`` seconds: end
                        self._thread = None
                        return
                    continue
            for expire in expired:
                expire()


DEADLINES = Deadlines()


class _Observer(threading.local):
    """The current request's ``_Wire``, per thread (the message callback runs in the
    thread doing the handshake)."""

    wire: _Wire

    def __init__(self) -> None:
        self.wire = _Wire()

    def message(
        self, conn: Any, direction: str, version: int, content_type: int, msg_type: int, data: bytes
    ) -> None:
        if direction != "read" or content_type != _HANDSHAKE:
            return
        if msg_type == _SERVER_HELLO:
            self.wire.tls_version = _WIRE_VERSIONS.get(int(version), self.wire.tls_version)
        elif msg_type == _CERTIFICATE_REQUEST:
            self.wire.ca_names = certificate_request_ca_names(bytes(data), self.wire.tls_version)


class TLSClient:
    """GET over a fresh TLS connection each time, with a fixed trust root and credential.

    ``tls`` pins the protocol version ("1.2" or "1.3"; None lets OpenSSL negotiate
    its best). ``timeout`` bounds each socket operation, ``deadline`` (seconds;
    default DEADLINE_FACTOR x ``timeout``) the whole request, ``max_body`` (bytes)
    the body read. Errors: ValueError for another ``tls`` value; ssl.SSLError or
    OSError from loading ``trust`` / ``credential``.
    """

    def __init__(
        self,
        trust: str | Path,
        credential: str | Path | None = None,
        *,
        server_hostname: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        tls: str | None = None,
        deadline: float | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        if tls is not None and tls not in TLS_VERSIONS:
            raise ValueError(f"tls must be one of {', '.join(TLS_VERSIONS)} or None, not {tls!r}")
        context = ssl.create_default_context(cafile=str(trust))
        if tls is not None:
            context.minimum_version = context.maximum_version = TLS_VERSIONS[tls]
        if credential is not None:
            context.load_cert_chain(str(credential))
        context.set_alpn_protocols(["http/1.1"])  # what urllib3 offered: the wire is the same
        self._observer = _Observer()
        if OBSERVES_HANDSHAKE:
            context._msg_callback = self._observer.message
        self._context = context
        self._server_hostname = server_hostname
        self.tls = tls
        self.timeout = timeout
        self.deadline = deadline if deadline is not None else DEADLINE_FACTOR * timeout
        self.max_body = max_body

    connection_class = _Connection  # http.client's connection, reporting to the wire

    def get(self, url: str) -> Attempt:
        """One GET of ``url``, within the deadline and the body cap (module docstring)."""
        wire = self._observer.wire = _Wire()
        deadline = DEADLINES.add(self.deadline, wire.expire)
        try:
            attempt = self._get(url, wire)
        finally:
            DEADLINES.cancel(deadline)
            with wire.lock:
                for sock in wire.sockets:  # the duplicates (the connection closes itself)
                    sock.close()
        if wire.expired:  # whatever surfaced, it surfaced because the deadline passed
            text = f"no complete response within {self.deadline:g} s ({attempt.detail})"
            return _limited(attempt, RESPONSE_DEADLINE, text)
        return attempt

    def _get(self, url: str, wire: _Wire) -> Attempt:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"not an https URL: {url!r}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = self.connection_class(
            parts.hostname,
            parts.port or 443,
            timeout=self.timeout,
            context=self._context,
            server_hostname=self._server_hostname,
            wire=wire,
        )
        try:
            return self._exchange(connection, path, wire)
        except InterimLimitError:
            return Attempt(
                ERROR,
                f"more than {MAX_INTERIM} interim (1xx) responses",
                stage=wire.stage,
                tls_version=wire.tls_version,
                ca_names=wire.ca_names,
                limit=INTERIM_RESPONSES,
            )
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return classify_exception(exc, wire)
        finally:
            connection.close()

    def _exchange(self, connection: _Connection, path: str, wire: _Wire) -> Attempt:
        connection.connect()
        headers = {"Connection": "close", "Accept-Encoding": "identity"}
        # A server that refused after the handshake (TLS 1.3) may have closed already:
        # the send fails, and the answer (its alert) is still there to read (SEND_REFUSED).
        with contextlib.suppress(*SEND_REFUSED):
            connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        seen = {"tls_version": wire.tls_version, "ca_names": wire.ca_names}
        status = response.status
        if status != 200:
            return Attempt(ERROR, f"HTTP {status}", status, stage=RESPONSE, **seen)
        body, too_large = self._read_body(response)
        if too_large:
            text = f"HTTP 200 with a body over {self.max_body} bytes"
            return Attempt(ERROR, text, 200, stage=RESPONSE, limit=RESPONSE_SIZE, **seen)
        try:
            parsed = json.loads(body)
        except ValueError:
            return Attempt(ERROR, "HTTP 200 with a body that is not JSON", 200, **seen)
        if not isinstance(parsed, dict):
            return Attempt(ERROR, "HTTP 200 with JSON that is not an object", 200, **seen)
        return Attempt(OK, "", 200, parsed, **seen)

    def _read_body(self, response: http.client.HTTPResponse) -> tuple[bytes, bool]:
        """(the body, False), or (b"", True) past the cap; never holds more than
        max_body + one chunk. A body that ends before its Content-Length raises
        ``http.client.IncompleteRead`` (``read(amt)`` itself only returns short)."""
        length = response.getheader("Content-Length", "")
        if length.strip().isdigit() and int(length) > self.max_body:
            return b"", True
        body = bytearray()
        while chunk := response.read(_CHUNK):
            body += chunk
            if len(body) > self.max_body:
                return b"", True
        if response.length:  # http.client counts down what Content-Length promised
            raise http.client.IncompleteRead(bytes(body), response.length)
        return bytes(body), False

    def close(self) -> None:
        """Nothing to release: each request's connection is closed when it ends."""


def _limited(attempt: Attempt, limit: str, text: str) -> Attempt:
    """``attempt`` as an error that hit ``limit`` (its stage, version and names kept)."""
    return Attempt(
        ERROR,
        text,
        attempt.status,
        stage=attempt.stage,
        tls_version=attempt.tls_version,
        ca_names=attempt.ca_names,
        limit=limit,
    )


def classify_exception(exc: BaseException, wire: _Wire | None = None) -> Attempt:
    """Map a failed request to an outcome (rejected / server-cert-rejected / error) and,
    for a refusal, its stage, form and alert. ``wire`` is what the connection noted
    on the way (without it, the stage is taken to be the handshake)."""
    wire = wire or _Wire()
    text = f"{type(exc).__name__}: {exc}"
    seen = {"tls_version": wire.tls_version, "ca_names": wire.ca_names}

    def refused(form: str, alert: str | None = None) -> Attempt:
        # SPEC section 4: a refusal comes before any HTTP response; after it started,
        # an alert, close or reset is an error (the form is still recorded, and the
        # status, so that a 2xx cut short still counts as served: matrix.runner.served).
        outcome = ERROR if wire.response_started else REJECTED
        return Attempt(outcome, text, wire.status, stage=wire.stage, form=form, alert=alert, **seen)

    chain = list(_causes(exc))
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
        return Attempt(SERVER_CERT_REJECTED, text, stage=wire.stage, **seen)
    if any(isinstance(e, TimeoutError) for e in chain):
        return Attempt(ERROR, text, stage=wire.stage, **seen)
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return Attempt(ERROR, text)  # nothing listening: not a verdict on the client
    for e in chain:
        if isinstance(e, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return refused(CLOSE)
        if isinstance(e, ssl.SSLError):
            reason = e.reason or ""
            alert = alert_name(reason)
            if alert:
                return refused(ALERT, alert)
            if reason in _EOF_REASONS:
                return refused(CLOSE)
            return Attempt(ERROR, text, stage=wire.stage, **seen)
    # http.client's RemoteDisconnected (an EOF before any response byte; with TLS, a
    # close with or without close_notify) subclasses ConnectionResetError: test it
    # first. IncompleteRead: the body ended early (an EOF after the response started).
    if any(
        isinstance(e, (http.client.RemoteDisconnected, http.client.IncompleteRead)) for e in chain
    ):
        return refused(CLOSE)
    if any(
        isinstance(e, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError))
        for e in chain
    ):
        return refused(RESET)
    return Attempt(ERROR, text, stage=wire.stage, **seen)


def alert_name(reason: str) -> str | None:
    """OpenSSL's reason code for a received alert -> the alert's RFC 8446 name.

    'TLSV13_ALERT_CERTIFICATE_REQUIRED' -> 'certificate_required',
    'SSLV3_ALERT_HANDSHAKE_FAILURE' -> 'handshake_failure'; None when ``reason``
    is not about a received alert. (OpenSSL: SSL_R_*ALERT* codes in ssl/ssl_err.c,
    which it raises as SSL_AD_REASON_OFFSET + the alert number.)
    """
    if reason in _ALERT_REASONS:
        return _ALERT_REASONS[reason]
    for prefix in _ALERT_PREFIXES:
        if reason.startswith(prefix):
            return reason[len(prefix) :].lower()
    return None


def _causes(exc: BaseException, limit: int = 32):
    """The exception, its causes/contexts and exceptions carried in args or .reason."""
    seen: set[int] = set()
    stack = [exc]
    while stack and len(seen) < limit:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        nested.extend(a for a in current.args if isinstance(a, BaseException))
        stack.extend(n for n in nested if isinstance(n, BaseException))
