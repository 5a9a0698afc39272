"""A one-connection TLS server that refuses the client's certificate and closes at once,
for tests that force a refusal to reach the client before its request does.

The server's ``wrap_socket`` fails on the client's certificate (it sends its alert);
closing with the client's data unread makes the kernel answer with a reset. ``closed``
is set once that has happened, so a client can wait for it (readiness, not timing).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def refusing_server(context: ssl.SSLContext) -> Iterator[tuple[int, threading.Event]]:
    """``(port, closed)`` of a server on 127.0.0.1 refusing with ``context`` (server side,
    a ``verify_mode`` that refuses the client to come); bounded: 10 s per socket step."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    closed = threading.Event()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.settimeout(10)
        try:
            with contextlib.suppress(ssl.SSLError, OSError):  # fails: the certificate
                context.wrap_socket(conn, server_side=True).recv(1024)
        finally:
            conn.close()  # the client's data unread: the kernel answers with a reset
            closed.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], closed
    finally:
        listener.close()
        thread.join(10)
