"""A connection waiting in the gate: its states, its record, and the gate's own answers.

Shared by the gate's scheduling (gate.py) and its per-connection steps
(gate_steps.py); the states are public (tests and monitoring read ``Gate.census()``).
"""

from __future__ import annotations

import selectors
from dataclasses import dataclass, field
from typing import Any

from .connection import TLSConnection
from .framing import ChunkedScanner

MAX_HEAD = 64 * 1024  # SPEC section 7: request line and headers together

# States a connection can be in while it is in the gate.
FIRST = "first-bytes"  # accepted, nothing received yet
HANDSHAKE = "handshake"
HEAD = "request-head"  # handshake done, reading a request head
BODY = "request-body"  # a whole head, reading its (Content-Length, bounded) body
IDLE = "keep-alive"  # between two requests on a kept-alive connection
ANSWER = "answer"  # writing a 400/408/413/431 before lingering
DELIVER = "deliver"  # writing the rest of a response a worker left (then keep-alive or close)
LINGER = "linger"  # refused: FIN sent, discarding input until the client closes


def _response(status: str, text: str) -> bytes:
    body = text.encode() + b"\n"
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


ANSWER_408 = _response("408 Request Timeout", "The request head did not arrive in time.")
ANSWER_400_CHUNKED = _response("400 Bad Request", "The chunked request body is malformed.")
ANSWER_413 = _response(
    "413 Request Entity Too Large", "The request body is larger than this server accepts."
)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
ANSWER_431 = _response(
    "431 Request Header Fields Too Large", "The request head is larger than 64 KiB."
)


@dataclass(eq=False)
class Entry:
    """One connection in the gate: where it is, until when, and what it still has to write."""

    conn: Any  # cheroot.server.HTTPConnection, or None for a socket that only lingers
    tls: TLSConnection
    state: str
    deadline: float = 0.0
    event: int = selectors.EVENT_READ
    out: bytes = b""
    out_tls: bool = True
    scan_from: int = 0
    need: int = 0  # BODY, Content-Length: the buffer length that holds head and body
    chunks: ChunkedScanner | None = None  # BODY, chunked: where the body ends
    fd: int = field(default=-1)


def head_end(buf: bytes | bytearray, start: int = 0) -> int:
    """Index just past the request head in ``buf``, or -1 while it is incomplete.

    The head ends at the first empty line (CRLF CRLF, RFC 9112 section 2.1). A
    bare LF ends it early: Cheroot answers such a line with 400 without reading
    further, so the worker never waits. ``start`` skips what an earlier call
    already scanned.
    """
    i = buf.find(b"\n", max(start - 3, 0))
    while i != -1:
        if i == 0 or buf[i - 1] != 0x0D:
            return i + 1
        if i >= 3 and buf[i - 3 : i + 1] == b"\r\n\r\n":
            return i + 1
        i = buf.find(b"\n", i + 1)
    return -1
