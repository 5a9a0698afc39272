"""Before TLS: what a connection's first bytes are, the answer to plain HTTP, the linger.

Used by both drivers of a connection (connection.py): the gate peeks at the first
bytes without blocking and answers and lingers on its own thread (gate_steps.py); a
worker in a plain Cheroot server does the same blocking, bounded by the handshake
timeout (``expect_tls_record``, ``linger``). A TLS record starts with its content type
(RFC 8446 section 5.1: 22 for a handshake); an HTTP/1.1 request with its method
(RFC 9112 section 3).
"""

from __future__ import annotations

import contextlib
import re
import selectors
import socket
import time

from .session import Refused

TLS_HANDSHAKE_RECORD = 0x16
_HTTP_METHOD = re.compile(rb"^[A-Z]{3,10} ")
PLAIN_HTTP_ANSWER = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: 40\r\n\r\nThis port speaks HTTPS, not plain HTTP.\n"
)

# How many non-blocking 64 KiB reads a plain-HTTP request may take before we answer.
DRAIN_READS = 16
# How long a refused client gets to read our alert and close (see linger()).
LINGER_SECONDS = 0.5


def classify_first_bytes(head: bytes) -> str:
    """'tls', 'http' or 'other' for the first bytes a client sent."""
    if head[:1] == bytes([TLS_HANDSHAKE_RECORD]):
        return "tls"
    if _HTTP_METHOD.match(head):
        return "http"
    return "other"


def expect_tls_record(raw: socket.socket, timeout: float) -> None:
    """Tell plain HTTP and garbage apart from TLS before a back-end sees them (blocking,
    on a worker); Refused (plain HTTP answered 400 first) unless a TLS record starts."""
    raw.settimeout(timeout)
    try:
        head = raw.recv(8, socket.MSG_PEEK)
    except TimeoutError:
        raise Refused(f"sent nothing within {timeout:g}s") from None
    except OSError as exc:
        raise Refused(f"connection failed before the handshake: {exc.strerror}") from None
    if not head:
        raise Refused("closed the connection before the handshake")
    kind = classify_first_bytes(head)
    if kind == "tls":
        return
    if kind == "http":
        answer_plain_http(raw, timeout)
        raise Refused("spoke plain HTTP to the TLS port (answered 400)")
    raise Refused(f"sent bytes that are not TLS (starting {head[:4].hex()})")


def answer_plain_http(raw: socket.socket, timeout: float) -> None:
    """Send the 400 so that the client can read it (blocking, on a worker).

    Closing a socket with unread input makes the kernel send RST, and a client
    that receives RST may discard the answer before reading it; so first read
    what the client has sent so far (never waiting), then answer and send FIN.
    """
    with contextlib.suppress(OSError):
        raw.setblocking(False)
        for _ in range(DRAIN_READS):
            if not raw.recv(65536):
                break
    with contextlib.suppress(OSError):
        raw.settimeout(timeout)
        raw.sendall(PLAIN_HTTP_ANSWER)
        raw.shutdown(socket.SHUT_WR)


def linger(sock: socket.socket, grace: float = LINGER_SECONDS) -> None:
    """Half-close and discard what the client still sends, briefly (blocking; the
    plain-Cheroot path — in ReferenceServer the gate does this on its own thread).

    Closing with unread input (under TLS 1.3 the client may already have sent
    its request) makes the kernel answer with RST, which can overtake the TLS
    alert: the client would see a reset instead of "unknown ca". Sending FIN
    and reading until the client closes (it does, on reading the alert) lets
    the alert arrive, whatever the timing. Bounded by ``grace`` seconds.
    """
    deadline = time.monotonic() + grace
    with contextlib.suppress(OSError), selectors.DefaultSelector() as sel:
        socket.socket.shutdown(sock, socket.SHUT_WR)
        sel.register(sock, selectors.EVENT_READ)
        for _ in range(DRAIN_READS):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                break
            # Raw bytes only: after a refusal nothing is decrypted any more.
            if not socket.socket.recv(sock, 65536):
                break
