"""What a TLS back-end provides to a connection, and the exceptions its steps raise.

``Session`` is the one narrow interface both back-ends (builtin.py: the stdlib's
``ssl``; pyopenssl.py) implement for the two drivers of a connection: the gate's
non-blocking ``*_step`` methods and a worker's blocking ones (connection.py).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .budget import PostHandshakeBudget


class Refused(Exception):
    """The connection must be dropped; the message says why, for the log."""


class Reset(Refused):
    """The client reset the connection (RST): nothing can be sent back."""


class CannotAsk(Exception):
    """A certificate cannot be asked for after the handshake on this connection (the
    back-end, the TLS version or the client cannot do it); the message says why."""


# The environ key under which a connection with per-path policies hands itself to
# perpath.PathPolicyApp (a WSGI server's environ is the only way from app to connection).
CONNECTION_KEY = "mtls_matrix.tls_connection"


class Want(Exception):
    """A non-blocking step must wait until the socket is ready for ``event``."""

    def __init__(self, event: int) -> None:
        super().__init__(event)
        self.event = event


class Session(Protocol):
    """What each back-end provides once it has wrapped the accepted socket.

    Blocking methods take a timeout (the worker's side); ``*_step`` methods never
    block and raise ``Want`` instead (the gate's side); both raise ``Refused``
    when the connection cannot go on.
    """

    sock: socket.socket
    budget: PostHandshakeBudget  # the client's post-handshake messages (budget.py)

    def handshake(self, timeout: float) -> None: ...
    def recv_into(self, buffer: memoryview, nbytes: int, timeout: float | None) -> int: ...
    def send(self, data: bytes, timeout: float | None) -> int: ...
    def handshake_step(self) -> None: ...
    def read_step(self, nbytes: int) -> bytes: ...  # b"" at end of stream
    def write_step(self, data: bytes) -> int: ...
    def close_notify(self) -> None: ...  # send a TLS close_notify, never waiting
    def peer_certificate(self) -> bytes | None: ...
    def ask_for_certificate(self, timeout: float, max_bytes: int) -> bytes: ...
    def peer_chain(self) -> list[bytes] | None: ...  # None: this back-end cannot see it
    def protocol(self) -> str: ...
    def openssl_server_name(self) -> str | None: ...  # the SNI sent, as OpenSSL read it
    def cipher(self) -> str: ...
