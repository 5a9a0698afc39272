"""The server side of one TLS connection, as Cheroot sees it.

Cheroot calls ``adapter.wrap()`` on its accept (selector) thread. Doing the
handshake there lets one silent client stall every other client (cheroot
#748), so ``wrap()`` only returns this object, and no I/O happens until one of
two drivers takes it:

- In ``ReferenceServer``, the gate (gate.py) drives the handshake and reads the
  request head with non-blocking steps on its own selector thread, with
  deadlines; a worker gets the connection only with a whole request head
  buffered here (``feed``), served first by ``recv_into``.
- In a plain Cheroot server (``server.ssl_adapter = adapter``), the first read
  or write on a worker runs the handshake there, blocking but bounded by the
  handshake timeout: the older, weaker behaviour (a client that stalls holds a
  worker until then).

Either way, verification is OpenSSL's, and the checks after it (the client
host check, which may need DNS, and the SSL_* variables) run on the worker's
first read, before Cheroot parses the request: the application never runs on an
unverified connection. Every refused or failed connection is logged as one
WARNING line ``TLS client <peer> refused: <why>`` and surfaces to Cheroot as
``FatalSSLAlert``, which Cheroot answers by closing the connection silently.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import selectors
import socket
import time
from typing import TYPE_CHECKING

from cheroot.errors import FatalSSLAlert

from .budget import POST_HANDSHAKE_BUDGET, PostHandshakeBudget
from .certinfo import client_variables
from .firstbytes import (
    DRAIN_READS,
    LINGER_SECONDS,
    PLAIN_HTTP_ANSWER,
    TLS_HANDSHAKE_RECORD,
    classify_first_bytes,
    expect_tls_record,
    linger,
)
from .hostcheck import host_mismatch
from .session import (
    CONNECTION_KEY,
    CannotAsk,
    Refused,
    Reset,
    Session,
    Want,
)

DEFAULT_HOST = "_default_"  # MTLS_VIRTUAL_HOST of a server's default host (vhosts.py)

if TYPE_CHECKING:
    from .adapters import ClientCertAdapter
    from .gate import Gate

log = logging.getLogger("mtls_matrix.reference")

# The most one read asks of a back-end: pyOpenSSL overflows above 2 GiB, and nothing
# is gained by reading more at once than a few TLS records.
MAX_READ = 1 << 20
# A response the client does not read: up to this much waits in memory (the gate
# delivers it), so a worker never blocks on a slow or silent reader; past it, the
# worker waits at most SEND_BOUND seconds in all, then the connection is dropped.
PENDING_LIMIT = 256 * 1024
SEND_BOUND = 2.0


# Re-exported: the back-ends, vhosts.py and tests import these from here.
__all__ = [
    "CONNECTION_KEY",
    "DRAIN_READS",
    "LINGER_SECONDS",
    "PLAIN_HTTP_ANSWER",
    "POST_HANDSHAKE_BUDGET",
    "TLS_HANDSHAKE_RECORD",
    "CannotAsk",
    "PostHandshakeBudget",
    "Refused",
    "Reset",
    "Session",
    "TLSConnection",
    "Want",
    "linger",
]


class TLSConnection:
    """A socket-like object for Cheroot's makefile()."""

    def __init__(self, adapter: ClientCertAdapter, sock: socket.socket) -> None:
        self._adapter = adapter
        self._raw = sock
        self._fd = sock.fileno()
        self._timeout = sock.gettimeout()
        self.accepted_at = time.monotonic()
        self.session: Session | None = None
        self.handshaken = False  # the TLS handshake succeeded (verification included)
        self._checked = False  # host check done and environ filled
        self.refused: str | None = None  # why I/O on this connection must stop
        self._logged = False  # its one log line is written
        self.inbuf = bytearray()  # plaintext the gate read ahead of the worker
        self.body_deadline: float | None = None  # monotonic; reads after the head end by then
        self.request_timeout: float | None = None
        self.gate: Gate | None = None
        self.linger_wanted = False  # close() hands the socket to the gate to linger
        self.outbuf = bytearray()  # response bytes the client has not taken yet (gate mode)
        self._notified = False  # close_notify sent
        try:
            self.peer = sock.getpeername()
        except OSError:
            self.peer = ("unknown", 0)
        self.environ: dict[str, str] = adapter.get_environ()
        if adapter.settings.path_policies:
            self.environ[CONNECTION_KEY] = self  # type: ignore[assignment]

    @property
    def adapter(self) -> ClientCertAdapter:
        return self._adapter

    @property
    def handshake_timeout(self) -> float:
        return self._adapter.settings.handshake_timeout

    # -- what Cheroot and socket.SocketIO call ------------------------------------
    def fileno(self) -> int:
        return self._fd

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        return self._timeout

    def getpeername(self):
        return self.peer

    def getsockname(self):
        return self.sock.getsockname()

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        nbytes = min(nbytes or len(view), len(view), MAX_READ)
        session = self._established()
        if self.inbuf:
            count = min(nbytes, len(self.inbuf))
            view[:count] = self.inbuf[:count]
            del self.inbuf[:count]
            return count
        timeout = self._timeout
        if self.body_deadline is not None:
            remaining = self.body_deadline - time.monotonic()
            if remaining <= 0:
                self._body_too_slow()
                raise TimeoutError("timed out")  # Cheroot answers 408 if it still can
            timeout = remaining if timeout is None else min(timeout, remaining)
        try:
            return session.recv_into(view, nbytes, timeout)
        except TimeoutError:
            if self.body_deadline is not None and time.monotonic() >= self.body_deadline:
                self._body_too_slow()
            raise
        except Refused as exc:
            self._refuse_on_worker(str(exc), linger=False)
            raise FatalSSLAlert(str(exc)) from None

    def _body_too_slow(self) -> None:
        """Logged only: Cheroot may still send its 408 on this connection."""
        self.log_refusal(f"request body not complete within {self.request_timeout:g}s")

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        buf = bytearray(min(bufsize, MAX_READ))
        return bytes(buf[: self.recv_into(buf, len(buf))])

    def send(self, data, flags: int = 0) -> int:
        session = self._established()
        data = bytes(data[:MAX_READ])
        try:
            if self.gate is not None:
                return self._send_buffered(session, data)
            return session.send(data, self._timeout)
        except Refused as exc:
            self._refuse_on_worker(str(exc), linger=False)
            raise FatalSSLAlert(str(exc)) from None

    def _send_buffered(self, session: Session, data: bytes) -> int:
        """Send what the socket takes now; keep the rest for the gate to deliver.

        The worker never waits for the client to read, unless more than
        PENDING_LIMIT is waiting: then it waits at most SEND_BOUND seconds in all
        before the connection is dropped (one log line, no traceback).
        """
        if not self.outbuf:
            try:
                sent = session.write_step(data)
            except Want:
                sent = 0
            if sent == len(data):
                return sent
            self.outbuf += data[sent:]
        else:
            self.outbuf += data
        if len(self.outbuf) > PENDING_LIMIT:
            self._flush_on_worker(session)
        return len(data)

    def _flush_on_worker(self, session: Session) -> None:
        deadline = time.monotonic() + SEND_BOUND
        with selectors.DefaultSelector() as sel:
            sel.register(self._fd, selectors.EVENT_WRITE)
            while len(self.outbuf) > PENDING_LIMIT:  # each pass sends or waits, until the deadline
                try:
                    sent = session.write_step(bytes(self.outbuf[:MAX_READ]))
                    del self.outbuf[:sent]
                    continue
                except Want as want:
                    sel.modify(self._fd, want.event)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    why = (
                        f"did not read its response ({len(self.outbuf) // 1024} KiB waiting) "
                        f"within {SEND_BOUND:g}s; dropped"
                    )
                    self.outbuf.clear()
                    raise Refused(why)

    def sendall(self, data, flags: int = 0) -> None:
        view = memoryview(bytes(data))
        while view:  # each send moves at least one byte or raises
            view = view[self.send(view) :]

    def send_close_notify(self) -> None:
        """End the TLS session cleanly (RFC 8446 section 6.1), once, never waiting.

        Without it a client sees "unexpected eof", and OpenSSL drops a session
        whose connection was not shut down (SSL_free after no SSL_shutdown), so
        it could not be resumed by its session id.
        """
        if self._notified or not self.handshaken or self.refused is not None:
            return
        self._notified = True
        if self.session is not None:
            with contextlib.suppress(Exception):
                self.session.close_notify()

    def shutdown(self, how: int) -> None:
        if self.linger_wanted or self._gate_delivers():
            return  # the gate shuts down the write side when it lingers or has delivered
        self.send_close_notify()
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, how)

    def close(self) -> None:
        if self.linger_wanted:
            self.linger_wanted = False  # once: a second close() must not hand it over again
            if self.gate is not None and self.gate.linger(self):
                return  # the gate closes it after the linger
        elif self._gate_delivers():
            if self.gate.deliver(self):
                return  # the gate sends what is left, then ends the session
            self.outbuf.clear()
        self.close_now()

    def _gate_delivers(self) -> bool:
        return self.gate is not None and bool(self.outbuf) and self.refused is None

    def close_now(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _decref_socketios(self) -> None:
        """socket.SocketIO calls this on close; we hold no per-file references."""

    # -- the socket under the session -----------------------------------------------
    @property
    def sock(self) -> socket.socket:
        """The live socket: the back-end's wrapper once there is one (the stdlib's
        SSLSocket takes over the file descriptor of the socket it wraps)."""
        return self.session.sock if self.session is not None else self._raw

    def raw_recv(self, nbytes: int) -> bytes:
        """Bytes as they arrive, undecrypted (never blocks: raises BlockingIOError)."""
        sock = self.sock
        sock.setblocking(False)
        return socket.socket.recv(sock, nbytes)

    def raw_send(self, data: bytes) -> int:
        sock = self.sock
        sock.setblocking(False)
        return socket.socket.send(sock, data)

    def raw_shutdown_write(self) -> None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_WR)

    def log_refusal(self, why: str) -> None:
        """The one log line for a refused or failed connection (later calls log nothing)."""
        if not self._logged:
            self._logged = True
            log.warning("TLS client %s refused: %s", format_peer(self.peer), why)

    # -- what the gate calls ------------------------------------------------------------
    def classify_first_bytes(self, head: bytes) -> str:
        """'tls', 'http' or 'other' for the first bytes a client sent."""
        return classify_first_bytes(head)

    def open_session(self) -> Session:
        """Wrap the socket in the back-end's TLS object; Reset if the peer is gone already
        (the stdlib checks the peer address when it wraps)."""
        try:
            self.session = self._adapter.open_session(self._raw)
        except OSError as exc:  # ssl.SSLError included
            raise Reset(f"reset the connection before the handshake ({exc})") from None
        return self.session

    # -- on a worker ----------------------------------------------------------------------
    def _refuse_on_worker(self, why: str, *, linger: bool) -> None:
        """Log, and stop all further I/O (the TLS session is broken or must not serve)."""
        self.log_refusal(why)
        self.refused = why
        self.linger_wanted = linger and self.gate is not None

    def _established(self) -> Session:
        if self.refused is not None:
            raise FatalSSLAlert(self.refused)
        if not self.handshaken:
            self._blocking_handshake()
        if not self._checked:
            try:
                self._after_handshake()
            except Refused as exc:
                self._refuse_on_worker(str(exc), linger=True)
                if self.gate is None:
                    linger(self.sock)
                raise FatalSSLAlert(str(exc)) from None
            self._checked = True
        return self.session

    def _blocking_handshake(self) -> None:
        """The handshake on a worker, for adapters used in a plain Cheroot server."""
        try:
            expect_tls_record(self._raw, self.handshake_timeout)
            self.open_session().handshake(self.handshake_timeout)
        except Refused as exc:
            self.log_refusal(str(exc))
            self.refused = str(exc)
            linger(self.sock)
            raise FatalSSLAlert(str(exc)) from None
        self.handshaken = True

    def _after_handshake(self) -> None:
        """Host check and SSL_* variables, once per connection, before any request.
        The settings are the SNI virtual host's where one was chosen (vhosts.py)."""
        session = self.session
        settings = getattr(session, "settings", None) or self._adapter.settings
        if settings.path_policies and not self._adapter.path_policies_enforced:
            raise Refused(  # fail-safe: nothing would ask for the certificate /secure/ needs
                "path_policies are enforced by ReferenceServer or perpath.PathPolicyApp; "
                "this server uses neither"
            )
        leaf = session.peer_certificate()
        if leaf is None and settings.requires_certificate:
            raise Refused("no client certificate presented")  # back-end should have refused
        self._check_and_record(leaf, session)

    def _check_and_record(self, leaf: bytes | None, session: Session) -> None:
        """The host check of a verified certificate, then the SSL_* variables."""
        settings = self._adapter.settings
        if leaf is not None and settings.client_check_host:
            try:
                mismatch = host_mismatch(leaf, str(self.peer[0]))
            except Exception as exc:  # cryptography cannot parse it (ValueError), or worse
                why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise Refused(
                    f"host check failed: client certificate cannot be parsed ({why})"
                ) from None
            if mismatch is not None:
                raise Refused(f"host check failed: {mismatch}")
        env = {
            "SSL_PROTOCOL": session.protocol(),
            "SSL_CIPHER": session.cipher(),
            "SSL_CLIENT_VERIFY": "SUCCESS" if leaf is not None else "NONE",
            # SPEC section 9: the host whose policy verified the connection (docs/state.md)
            "MTLS_VIRTUAL_HOST": getattr(session, "host_name", None) or DEFAULT_HOST,
        }
        read_name = getattr(session, "openssl_server_name", None)  # a Session of old
        server_name = read_name() if read_name is not None else None
        if server_name:  # mod_ssl's SSL_TLS_SNI: set only when the client sent a name
            env["SSL_TLS_SNI"] = server_name
        if leaf is not None:
            env.update(self._client_variables(leaf, session))
        self.environ.update(env)

    def request_client_certificate(self) -> None:
        """Ask for a certificate after the handshake (SPEC section 9), on a worker.

        TLS 1.3 post-handshake authentication or TLS 1.2 renegotiation, whichever the
        back-end can (``Session.ask_for_certificate``), bounded by the handshake
        timeout; then the host check and the SSL_* variables, as after a handshake.
        Raises CannotAsk (nothing was sent; the connection can still answer 403) or
        Refused (the exchange failed; the connection is unusable, logged once).
        """
        session = self._established()
        try:
            with session.budget.paused():  # the answer asked for is not a flood
                extra = session.ask_for_certificate(self.handshake_timeout, MAX_READ)
        except Refused as exc:
            self._refuse_on_worker(str(exc), linger=True)
            raise
        self.inbuf += extra
        leaf = session.peer_certificate()
        if leaf is None:  # the back-end's required mode should have refused it already
            raise CannotAsk("no client certificate after the certificate request")
        try:
            self._check_and_record(leaf, session)
        except Refused as exc:
            self._refuse_on_worker(str(exc), linger=True)
            raise

    def _client_variables(self, leaf: bytes, session: Session) -> dict[str, str]:
        """SSL_CLIENT_*, or as many as can be read from a certificate cryptography cannot parse.

        OpenSSL verified the certificate; cryptography is stricter (it refuses, for
        instance, a T61String that is not valid text or a malformed AIA extension).
        Such a client is served, as mod_ssl would serve it: SSL_CLIENT_CERT (the
        DER as PEM, no parsing needed) and SSL_CLIENT_VERIFY are always set, the
        variables cryptography cannot produce are left out, and one WARNING line
        says so. With a host check the certificate is refused instead (above):
        identities that cannot be read cannot match.
        """
        try:
            chain = session.peer_chain()
        except Exception:  # the chain is optional (SSL_CLIENT_CERT_CHAIN_n)
            chain = None
        try:
            return client_variables(leaf, chain)
        except Exception as exc:  # ValueError from cryptography, mostly
            failure = exc
        env = {"SSL_CLIENT_CERT": der_to_pem(leaf)}
        left_out = "the SSL_CLIENT_* variables that need parsing"
        if chain:
            try:
                env = client_variables(leaf, None)
                left_out = "SSL_CLIENT_CERT_CHAIN_n (a chain certificate is unreadable)"
            except Exception:
                pass
        why = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
        log.warning(
            "TLS client %s: client certificate partly unreadable (%s); serving it without %s",
            format_peer(self.peer),
            why,
            left_out,
        )
        return env


def der_to_pem(der: bytes) -> str:
    body = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def format_peer(peer) -> str:
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
