"""One HTTP/1.1 exchange over a raw TLS socket, for the request and per-path grids.

Written here rather than with ``requests``: these grids must send what no HTTP
library sends on purpose (an absolute-form request target such as ``OPTIONS
evil://x/``, request headers spelled ``SSL_CLIENT_VERIFY``, a Host header naming
another host), choose the client's source address (127.0.0.2: a peer that is not
a configured proxy), and offer or withhold TLS 1.3 post-handshake authentication
(``SSLContext.post_handshake_auth``) or TLS 1.2 renegotiation
(``ssl.OP_NO_RENEGOTIATION``). The TLS stack is the stdlib's; what it raises is
classified by ``harness.client.alert_name`` (OpenSSL reason codes, not message text).

Bounded: one deadline for the whole exchange and a cap on the response size.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.client import SEND_REFUSED, alert_name

DEADLINE = 10.0  # seconds for one whole exchange
MAX_RESPONSE = 1 << 20  # bytes; an environ with a certificate chain is a few KiB
TLS_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True)
class ClientSetup:
    """How the client connects: trust root, credential, TLS version, what it can answer."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None
    tls_version: str | None = None  # "TLSv1.2" | "TLSv1.3" | None (both)
    post_handshake_auth: bool = False  # offers TLS 1.3 post-handshake authentication
    renegotiation: bool = True  # accepts a TLS 1.2 renegotiation the server starts
    server_name: str = "localhost"
    source: str | None = None  # bind the client socket to this address (port 0)


@dataclass
class Exchange:
    """What came back: an HTTP status and the JSON body, or how the connection ended."""

    status: int | None = None
    body: bytes = b""
    tls_version: str | None = None
    alert: str | None = None  # the TLS alert received, RFC 8446 name
    ended: str | None = None  # "alert" | "close" | "reset" | "timeout" | "error: ..."
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None when it is not one."""
        try:
            value = json.loads(self.body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


def request_bytes(
    method: str, target: str, host: str, headers: tuple[tuple[str, str], ...] = ()
) -> bytes:
    """An HTTP/1.1 request head, exactly as given, with Connection: close."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def context(setup: ClientSetup) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(setup.ca))
    if setup.cert is not None:
        ctx.load_cert_chain(str(setup.cert), None if setup.key is None else str(setup.key))
    if setup.tls_version is not None:
        ctx.minimum_version = ctx.maximum_version = TLS_VERSIONS[setup.tls_version]
    ctx.post_handshake_auth = setup.post_handshake_auth
    if not setup.renegotiation:
        ctx.options |= ssl.OP_NO_RENEGOTIATION
    return ctx


def exchange(host: str, port: int, setup: ClientSetup, request: bytes) -> Exchange:
    """Connect, handshake, send ``request``, read the response until the server closes.

    Never raises for what the server does: a refusal is recorded in ``ended`` and
    ``alert``. Raises OSError only when the connection cannot be made at all
    (nothing listening, or the source address cannot be bound).
    """
    deadline = time.monotonic() + DEADLINE
    source = None if setup.source is None else (setup.source, 0)
    raw = socket.create_connection((host, port), timeout=DEADLINE, source_address=source)
    out = Exchange()
    data = bytearray()
    with contextlib.closing(raw):
        try:
            tls = context(setup).wrap_socket(raw, server_hostname=setup.server_name)
        except Exception as exc:
            _ended(out, exc)
            return out
        with contextlib.closing(tls):
            out.tls_version = tls.version()
            try:
                with contextlib.suppress(*SEND_REFUSED):  # the refusal may wait to be read
                    tls.sendall(request)
                while len(data) <= MAX_RESPONSE:  # bounded by the cap and the deadline
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        out.ended = "timeout"
                        break
                    tls.settimeout(remaining)
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except Exception as exc:
                _ended(out, exc)
    _parse(out, bytes(data))
    return out


def _ended(out: Exchange, exc: BaseException) -> None:
    if isinstance(exc, TimeoutError):
        out.ended = "timeout"
    elif isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        out.ended = "close"
    elif isinstance(exc, ssl.SSLError):
        out.alert = alert_name(exc.reason or "")
        out.ended = "alert" if out.alert else f"error: {exc.reason or type(exc).__name__}"
    elif isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        out.ended = "reset"
    else:
        out.ended = f"error: {type(exc).__name__}"


def _parse(out: Exchange, data: bytes) -> None:
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2) if lines and lines[0] else []
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return
    out.status = int(parts[1])
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        out.headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    body = body if sep else b""
    if "chunked" in out.headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    out.body = body


def _dechunk(data: bytes) -> bytes:
    """A chunked body (RFC 9112 section 7.1) decoded, as far as it is well formed."""
    out = bytearray()
    while data:  # each turn consumes one chunk or stops
        size_line, sep, rest = data.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip() or b"x", 16)
        except ValueError:
            break
        if not sep or size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)
