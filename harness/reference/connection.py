"""The server side of one TLS connection, as Cheroot sees it.

Cheroot calls ``adapter.wrap()`` on its accept (selector) thread. Doing the
handshake there lets one silent client stall every other client (cheroot
#748), so ``wrap()`` only returns this object; the handshake runs on the first
read or write, i.e. on a worker thread, bounded by the handshake timeout.
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
import socket
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
        try:
            self._peer = sock.getpeername()
        except OSError:
            self._peer = ("unknown", 0)
        self.environ: dict[str, str] = adapter.get_environ()

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
        self._sock().close()

    def _decref_socketios(self) -> None:
        """socket.SocketIO calls this on close; we hold no per-file references."""

    # -- the handshake ------------------------------------------------------------
    def _sock(self) -> socket.socket:
        return self._session.sock if self._session is not None else self._raw

    def _established(self) -> Session:
        if self._refused is not None:
            raise FatalSSLAlert(self._refused)
        if self._ready:
            return self._session
        try:
            session = self._handshake()
        except Refused as exc:
            self._refused = str(exc)
            log.warning("TLS client %s refused: %s", _format_peer(self._peer), exc)
            raise FatalSSLAlert(self._refused) from None
        self._ready = True
        return session

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
            with contextlib.suppress(OSError):
                self._raw.sendall(_PLAIN_HTTP_ANSWER)
            raise Refused("spoke plain HTTP to the TLS port (answered 400)")
        raise Refused(f"sent bytes that are not TLS (starting {head[:4].hex()})")


def _format_peer(peer) -> str:
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
