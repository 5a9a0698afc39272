"""The server side of one TLS connection, as Cheroot sees it.

Cheroot calls ``adapter.wrap()`` on its accept (selector) thread. Doing the
handshake there lets one silent client stall every other client (cheroot
#748), so ``wrap()`` only returns this object; the handshake runs on the first
read or write, i.e. on a worker thread, bounded by the handshake timeout.
A worker is not handed a connection whose client has sent nothing yet either:
``park()`` leaves it in Cheroot's selector until bytes (or EOF) arrive, so
silent clients cannot occupy the pool; they are dropped after the handshake
timeout (see ``server._Server.process_conn``).
Only after it succeeded — and after the client host check — are the SSL_*
variables filled into the environ dict Cheroot already holds for the
connection, so the application never runs on an unverified connection.

Every refusal is logged as one line and surfaces to Cheroot as
``FatalSSLAlert``, which Cheroot answers by closing the connection silently.
"""

from __future__ import annotations

import contextlib
import logging
import re
import selectors
import socket
import time
from typing import TYPE_CHECKING, Protocol

from cheroot.errors import FatalSSLAlert

from .certinfo import client_variables
from .hostcheck import host_mismatch

if TYPE_CHECKING:
    from .adapters import ClientCertAdapter

log = logging.getLogger("mtls_matrix.reference")

TLS_HANDSHAKE_RECORD = 0x16
_HTTP_METHOD = re.compile(rb"^[A-Z]{3,10} ")
_PLAIN_HTTP_ANSWER = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: 40\r\n\r\nThis port speaks HTTPS, not plain HTTP.\n"
)


# How many non-blocking 64 KiB reads a plain-HTTP request may take before we answer.
_DRAIN_READS = 16
# How long a refused client gets to read our alert and close (see _linger).
_LINGER_SECONDS = 0.5
# Cheroot expires parked connections on its wall clock; we compare on the monotonic one.
_CLOCK_SLACK = 0.05


class Refused(Exception):
    """The connection must be dropped; the message says why, for the log."""


class Session(Protocol):
    """What each back-end provides once it has wrapped the accepted socket."""

    sock: socket.socket

    def handshake(self, timeout: float) -> None: ...  # raises Refused
    def recv_into(self, buffer: memoryview, nbytes: int, timeout: float | None) -> int: ...
    def send(self, data: bytes, timeout: float | None) -> int: ...
    def peer_certificate(self) -> bytes | None: ...
    def peer_chain(self) -> list[bytes] | None: ...  # None: this back-end cannot see it
    def protocol(self) -> str: ...
    def cipher(self) -> str: ...


class TLSConnection:
    """A socket-like object for Cheroot's makefile(); handshakes lazily."""

    def __init__(self, adapter: ClientCertAdapter, sock: socket.socket) -> None:
        self._adapter = adapter
        self._raw = sock
        self._fd = sock.fileno()
        self._timeout = sock.gettimeout()
        self._session: Session | None = None
        self._ready = False
        self._refused: str | None = None
        self._started = False  # a worker began the handshake (or its pre-check)
        self._parked_at: float | None = None  # monotonic time it was left to the selector
        self._park_limit = 0.0
        try:
            self._peer = sock.getpeername()
        except OSError:
            self._peer = ("unknown", 0)
        self.environ: dict[str, str] = adapter.get_environ()

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
        return self._peer

    def getsockname(self):
        return self._sock().getsockname()

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer)
        return self._established().recv_into(view, nbytes or len(view), self._timeout)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        buf = bytearray(bufsize)
        return bytes(buf[: self.recv_into(buf, bufsize)])

    def send(self, data, flags: int = 0) -> int:
        return self._established().send(bytes(data), self._timeout)

    def sendall(self, data, flags: int = 0) -> None:
        view = memoryview(bytes(data))
        while view:  # each send moves at least one byte or raises
            view = view[self.send(view) :]

    def shutdown(self, how: int) -> None:
        with contextlib.suppress(OSError):
            self._sock().shutdown(how)

    def close(self) -> None:
        if self._parked_at is not None and not self._started and self._refused is None:
            # Closed by Cheroot's selector without a worker ever seeing it: either the
            # park limit expired (a refusal, logged like the others) or the server stops.
            waited = time.monotonic() - self._parked_at
            if waited >= self._park_limit - _CLOCK_SLACK:
                self._refused = f"sent nothing within {self._park_limit:g}s"
                log.warning("TLS client %s refused: %s", _format_peer(self._peer), self._refused)
        self._sock().close()

    def _decref_socketios(self) -> None:
        """socket.SocketIO calls this on close; we hold no per-file references."""

    # -- before the first byte -----------------------------------------------------
    def park(self, limit: float) -> bool:
        """Whether Cheroot should keep this fresh connection in its selector, not a worker.

        True (once) when the client has sent nothing yet; the caller then makes the
        selector drop it after ``limit`` seconds. When the selector hands it back it
        is readable, and later calls say False.
        """
        if self._parked_at is not None or self._started or self._has_input():
            return False
        self._parked_at = time.monotonic()
        self._park_limit = limit
        return True

    def _has_input(self) -> bool:
        """Bytes or EOF are waiting (or an error a worker should report); never blocks."""
        previous = self._raw.gettimeout()
        try:
            self._raw.setblocking(False)
            self._raw.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        finally:
            with contextlib.suppress(OSError):
                self._raw.settimeout(previous)
        return True

    # -- the handshake ------------------------------------------------------------
    def _sock(self) -> socket.socket:
        return self._session.sock if self._session is not None else self._raw

    def _established(self) -> Session:
        if self._refused is not None:
            raise FatalSSLAlert(self._refused)
        if self._ready:
            return self._session
        self._started = True
        try:
            session = self._handshake()
        except Refused as exc:
            self._refused = str(exc)
            log.warning("TLS client %s refused: %s", _format_peer(self._peer), exc)
            self._linger()
            raise FatalSSLAlert(self._refused) from None
        self._ready = True
        return session

    def _linger(self, grace: float = _LINGER_SECONDS) -> None:
        """Half-close and discard what the client still sends, briefly, before closing.

        Closing with unread input (under TLS 1.3 the client may already have sent
        its request) makes the kernel answer with RST, which can overtake the TLS
        alert: the client would see a reset instead of "unknown ca". Sending FIN
        and reading until the client closes (it does, on reading the alert) lets
        the alert arrive, whatever the timing. Bounded by ``grace`` seconds.
        """
        sock = self._sock()
        deadline = time.monotonic() + grace
        with contextlib.suppress(OSError), selectors.DefaultSelector() as sel:
            sock.shutdown(socket.SHUT_WR)
            sel.register(sock, selectors.EVENT_READ)
            for _ in range(_DRAIN_READS):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    break
                # Raw bytes only: after a refusal nothing is decrypted any more.
                if not socket.socket.recv(sock, 65536):
                    break

    def _handshake(self) -> Session:
        settings = self._adapter.settings
        self._expect_tls_record(settings.handshake_timeout)
        self._session = session = self._adapter.open_session(self._raw)
        session.handshake(settings.handshake_timeout)
        leaf = session.peer_certificate()
        if leaf is None and settings.requires_certificate:
            raise Refused("no client certificate presented")  # back-end should have refused
        if leaf is not None and settings.client_check_host:
            mismatch = host_mismatch(leaf, str(self._peer[0]))
            if mismatch is not None:
                raise Refused(f"host check failed: {mismatch}")
        env = {
            "SSL_PROTOCOL": session.protocol(),
            "SSL_CIPHER": session.cipher(),
            "SSL_CLIENT_VERIFY": "SUCCESS" if leaf is not None else "NONE",
        }
        if leaf is not None:
            env.update(client_variables(leaf, session.peer_chain()))
        self.environ.update(env)
        return session

    def _expect_tls_record(self, timeout: float) -> None:
        """Tell plain HTTP and garbage apart from TLS before a back-end sees them."""
        self._raw.settimeout(timeout)
        try:
            head = self._raw.recv(8, socket.MSG_PEEK)
        except TimeoutError:
            raise Refused(f"sent nothing within {timeout:g}s") from None
        except OSError as exc:
            raise Refused(f"connection failed before the handshake: {exc.strerror}") from None
        if not head:
            raise Refused("closed the connection before the handshake")
        if head[0] == TLS_HANDSHAKE_RECORD:
            return
        if _HTTP_METHOD.match(head):
            self._answer_plain_http()
            raise Refused("spoke plain HTTP to the TLS port (answered 400)")
        raise Refused(f"sent bytes that are not TLS (starting {head[:4].hex()})")

    def _answer_plain_http(self) -> None:
        """Send the 400 so that the client can read it.

        Closing a socket with unread input makes the kernel send RST, and a client
        that receives RST may discard the answer before reading it; so first read
        what the client has sent so far (never waiting), then answer and send FIN.
        """
        with contextlib.suppress(OSError):
            self._raw.setblocking(False)
            for _ in range(_DRAIN_READS):
                if not self._raw.recv(65536):
                    break
        with contextlib.suppress(OSError):
            self._raw.settimeout(self._adapter.settings.handshake_timeout)
            self._raw.sendall(_PLAIN_HTTP_ANSWER)
            self._raw.shutdown(socket.SHUT_WR)


def _format_peer(peer) -> str:
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
