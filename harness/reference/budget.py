"""The post-handshake budget: a client's KeyUpdate or renegotiation flood is cut inside OpenSSL.

A client may send handshake messages once the handshake is done (TLS 1.3 KeyUpdate,
RFC 8446 section 4.6.3; TLS 1.2 renegotiation ClientHellos, RFC 5246 section 7.4.1.2;
a post-handshake Certificate). A few are normal; a stream is an attack on the gate's
one thread: OpenSSL processes such records inside one ``SSL_read`` for as long as the
client keeps them coming (the stdlib sets ``SSL_MODE_AUTO_RETRY`` and cannot clear it;
without it OpenSSL 3/4 still loops while its record layer has input pending), and
returns no application data meanwhile.

The back-ends' callbacks (the stdlib's ``SSLContext._msg_callback``, pyOpenSSL's info
callback) call :meth:`PostHandshakeBudget.seen` from inside that read. Past
``POST_HANDSHAKE_BUDGET`` messages the TCP connection is aborted under OpenSSL's feet
(:func:`abort_connection`), so that OpenSSL's next read of the socket fails at once and
the read returns; the session then raises ``refusal()``, one log line.

Why the connection is aborted rather than shut for reading: on Linux ``shutdown(SHUT_RD)``
does not stop reads — queued input and input that arrives later are still returned
(measured on Linux 6.18: 1,000 bytes sent after ``SHUT_RD`` were read) — so a client
that keeps streaming kept OpenSSL, and the gate thread, busy for seconds (64 KeyUpdate
floods: single gate steps of 1 to 5 s). Closing the descriptor is no way either: OpenSSL
is still reading it, and the accept thread may reuse its number at once for another
client. ``connect()`` with an ``AF_UNSPEC`` address (POSIX: "dissolve the association";
Linux ``tcp_disconnect``) resets the connection, drops its queued input and keeps the
descriptor, whose reads then fail (``ECONNRESET``, then ``ENOTCONN``). No Python API
makes that call (``socket.connect`` takes only the socket's own family), so it goes
through ``ctypes`` to the C library; where that is not available, ``SHUT_RD`` is the
fallback (it stops a flood once the client pauses).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import socket
from collections.abc import Callable, Iterator
from typing import TypeVar

from .session import Refused

T = TypeVar("T")

POST_HANDSHAKE_BUDGET = 32


class _SockaddrUnspec(ctypes.Structure):
    """``struct sockaddr`` with ``sa_family = AF_UNSPEC`` (Linux layout: a 16-bit family)."""

    _fields_ = (("sa_family", ctypes.c_ushort), ("sa_data", ctypes.c_char * 14))


@functools.cache
def _libc_connect() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        connect = libc.connect
    except (OSError, AttributeError):
        return None
    connect.restype = ctypes.c_int
    connect.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint)
    return connect


def abort_connection(sock: socket.socket) -> bool:
    """Reset ``sock``'s TCP connection and drop its unread input, keeping the descriptor.

    True when the connection was dissolved (``connect(fd, {AF_UNSPEC})`` returned 0;
    the peer gets an RST, later reads fail); False when only ``shutdown(SHUT_RD)``
    could be done (no C library reachable, or it refused).
    """
    connect = _libc_connect()
    fd = sock.fileno()
    if connect is not None and fd >= 0 and socket.AF_UNSPEC == 0:
        address = _SockaddrUnspec(socket.AF_UNSPEC)
        if connect(fd, ctypes.byref(address), ctypes.sizeof(address)) == 0:
            return True
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RD)
    return False


class PostHandshakeBudget:
    """Counts a client's post-handshake messages; past the budget, cuts the connection.

    ``armed`` is set once the handshake is done (and cleared while the server itself
    asks for a certificate: the answer it asked for is not the client's flood).
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.armed = False
        self.count = 0

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Not counting for the block: the server's own certificate request, whose
        answer is messages the server asked for, not the client's flood."""
        self.armed = False
        try:
            yield
        finally:
            self.armed = True

    def seen(self) -> None:
        """One post-handshake message (called from inside OpenSSL's read)."""
        if not self.armed:
            return
        self.count += 1
        if self.count == POST_HANDSHAKE_BUDGET + 1:
            abort_connection(self._sock)

    @property
    def exceeded(self) -> bool:
        return self.count > POST_HANDSHAKE_BUDGET

    def refusal(self) -> Refused:
        return Refused(
            f"sent over {POST_HANDSHAKE_BUDGET} post-handshake TLS messages "
            "(a KeyUpdate or renegotiation flood); dropped"
        )

    def checked(self, read: Callable[[], T]) -> T:
        """``read()``, unless the budget is spent: then ``refusal()`` instead of what the
        read says (end-of-file, a reset, an error, or "would block": after a refused
        TLS 1.2 renegotiation whose alert could not be sent, the stdlib's ``SSL_read``
        says want-read on the reset socket, which polls readable, so the gate would
        step it again and again)."""
        try:
            result = read()
        except Exception:
            if self.exceeded:
                raise self.refusal() from None
            raise
        if self.exceeded:
            raise self.refusal()
        return result
