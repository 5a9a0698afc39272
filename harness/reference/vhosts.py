"""SNI virtual hosts (SPEC section 9): each connection verified by the named host's own
context, chosen before the TLS library reads the ClientHello.

``HostSelectingSession`` stands where a back-end session stands (connection.Session).
Its first handshake step peeks at the ClientHello (clienthello.py), picks the host the
SNI names (any other name, or none: the default host, the adapter itself) and wraps the
socket in that host's own back-end session, so the verify mode, the client CA, the
session cache and the ticket keys are all the host's: nothing crosses between hosts.
After the handshake the name OpenSSL read is compared with the one read here; a
disagreement refuses the connection (a fault of either parser never serves a client
under the wrong host).

A ClientHello not yet whole waits without spinning: the socket's SO_RCVLOWAT is set to
the bytes still missing, so the gate's selector (or the worker's, in plain Cheroot)
wakes only once they are there, or at end of stream. A wake with the ClientHello still
incomplete is therefore the client closing (or the kernel short of memory): refused.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from typing import TYPE_CHECKING, Any

from .clienthello import MAX_CLIENT_HELLO, NotClientHello, peek_server_name
from .connection import DEFAULT_HOST, Refused, Reset, Want

if TYPE_CHECKING:
    from .adapters import ClientCertAdapter
    from .policy import TLSSettings

_PEEK = MAX_CLIENT_HELLO + 1024


def normalise_name(name: str) -> str:
    """Compare host names as DNS does (RFC 4343: ASCII case-insensitive)."""
    return name.rstrip(".").lower()


class HostSelectingSession:
    """A back-end session that is chosen by the client's SNI on the first handshake step."""

    def __init__(self, adapter: ClientCertAdapter, sock: socket.socket) -> None:
        self._adapter = adapter
        self._raw = sock
        self._inner: Any = None
        self._waited = False
        self.server_name: str | None = None  # the SNI the client sent
        self.host_name = DEFAULT_HOST
        self.settings: TLSSettings = adapter.settings

    @property
    def sock(self) -> socket.socket:
        return self._inner.sock if self._inner is not None else self._raw

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("_inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    # -- choosing the host --------------------------------------------------------------
    def _choose(self) -> bool:
        """Wrap the socket in the named host's session once the ClientHello is whole;
        False while bytes are missing (SO_RCVLOWAT set to them)."""
        try:
            self._raw.setblocking(False)
            data = self._raw.recv(_PEEK, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            data = None
        except ConnectionResetError:
            raise Reset("reset the connection during the handshake") from None
        except OSError as exc:
            raise Refused(f"connection failed during the handshake: {exc.strerror}") from None
        if data == b"":
            raise Refused("closed the connection during the handshake")
        try:
            peeked = peek_server_name(data or b"")
        except NotClientHello:
            peeked = None  # the default host's back-end refuses it, in OpenSSL's words
        if peeked is not None and peeked.needed is not None:
            if self._waited and data is not None:
                raise Refused("closed the connection in the middle of its ClientHello")
            self._set_lowat(peeked.needed)
            self._waited = True
            return False
        self._set_lowat(1)
        self.server_name = None if peeked is None else peeked.name
        host = self._adapter.host_for(self.server_name)
        self.host_name = DEFAULT_HOST if host is self._adapter else host.host_name
        self.settings = host.settings
        self._inner = host.open_backend_session(self._raw)
        return True

    def _set_lowat(self, count: int) -> None:
        with contextlib.suppress(OSError):
            self._raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, max(1, count))

    def _check_name(self) -> None:
        """OpenSSL's reading of the SNI must select the same host as ours."""
        seen = self._inner.openssl_server_name()
        host = self._adapter.host_for(seen)
        chosen = self._adapter.host_for(self.server_name)
        if host is not chosen:
            raise Refused(
                f"SNI read as {self.server_name!r} before the handshake but {seen!r} by "
                "OpenSSL: refused rather than served by the wrong virtual host"
            )

    # -- the Session protocol's handshake ---------------------------------------------
    def handshake_step(self) -> None:
        if self._inner is None and not self._choose():
            raise Want(selectors.EVENT_READ)
        self._inner.handshake_step()
        self._check_name()

    def handshake(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self._raw, selectors.EVENT_READ)
            while not self._choose():  # each pass waits for more bytes, or ends
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    raise Refused(f"handshake timed out after {timeout:g}s")
        self._inner.handshake(max(deadline - time.monotonic(), 0.001))
        self._check_name()
