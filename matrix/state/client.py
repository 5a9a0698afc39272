"""The connection-state client: one HTTPS request with a chosen SNI, Host, session and path.

``harness.client.TLSClient`` cannot send an SNI name it does not check the certificate for,
a Host header of its choosing next to it, or offer a TLS session: here the handshake is
Python's ``ssl`` (``SSLContext.wrap_socket(server_hostname=..., session=...)``, the
session from ``SSLSocket.session``) and the request and response are ``http.client``'s
(``HTTPResponse`` reads the answer from the TLS socket). An outcome is classified by
``harness.client.classify_exception``, exactly as the standard matrix's client does.

The server's certificate is verified against the trust root, but not its name: the
SNI names of the state grids are virtual host names that the server's certificate need
not carry, and the client's check of the server is the standard profile's question.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.client import (
    ERROR,
    OBSERVES_HANDSHAKE,
    OK,
    RESPONSE,
    SEND_REFUSED,
    TLS_VERSIONS,
    Attempt,
    _Observer,
    _Wire,
    classify_exception,
)

from .oracle import MISDIRECTED

MAX_BODY = 1 << 20  # the application's JSON answer is a few KiB


@dataclass
class StepAttempt:
    """One step as the client saw it: the ``Attempt`` plus the session it obtained
    (``ssl.SSLSession`` or None) and whether the server resumed the one offered."""

    attempt: Attempt
    session: Any = None
    offered: bool = False
    resumed: bool | None = None  # None: no handshake completed
    extra: dict[str, Any] = field(default_factory=dict)


class StepClient:
    """A client credential, trust root and TLS version; sessions it obtains can be
    offered again on any later connection of the same client (CPython requires the
    session's own context). ``session``: "id" disables the TLS 1.2 ticket extension
    (``OP_NO_TICKET``), so the server has only its session id cache to resume from."""

    def __init__(
        self,
        trust: str | Path,
        credential: str | Path | None,
        tls: str,
        session: str = "ticket",
        timeout: float = 5.0,
    ) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False  # see the module docstring
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(trust))
        context.minimum_version = context.maximum_version = TLS_VERSIONS[tls]
        if session == "id":
            context.options |= ssl.OP_NO_TICKET
        if credential is not None:
            context.load_cert_chain(str(credential))
        self._observer = _Observer()  # harness.client's: server hello version, CA names
        if OBSERVES_HANDSHAKE:
            context._msg_callback = self._observer.message
        self.context = context
        self.timeout = timeout

    def get(
        self,
        address: str,
        port: int,
        *,
        sni: str | None = None,
        host: str | None = None,
        session: Any = None,
        path: str = "/",
        headers: tuple[tuple[str, str], ...] = (),
        source: str | None = None,
    ) -> StepAttempt:
        """GET ``path`` from ``address``:``port`` over a fresh connection. ``host``: the
        Host header (default: ``sni``, else ``address``:``port``); ``source``: the local
        address to connect from (None: the system's choice)."""
        wire = self._observer.wire = _Wire()
        host_header = host or sni or (f"[{address}]" if ":" in address else address)
        if host is None and sni is None:
            host_header += f":{port}"
        raw = None
        tls = None
        try:
            raw = socket.create_connection(
                (address, port), self.timeout, source_address=(source, 0) if source else None
            )
            tls = self.context.wrap_socket(
                raw, server_hostname=sni, session=session, do_handshake_on_connect=True
            )
            wire.handshake_done = True
            wire.tls_version = tls.version() or wire.tls_version
            resumed = tls.session_reused
            request = [f"GET {path} HTTP/1.1", f"Host: {host_header}", "Connection: close"]
            request += [f"{name}: {value}" for name, value in headers]
            # Refused after the handshake (TLS 1.3): the alert waits to be read below.
            with contextlib.suppress(*SEND_REFUSED):
                tls.sendall(("\r\n".join(request) + "\r\n\r\n").encode("latin-1"))
            response = http.client.HTTPResponse(tls)
            response.begin()
            wire.response_started = True
            body = response.read(MAX_BODY)
            obtained = tls.session
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return StepAttempt(
                classify_exception(exc, wire),
                offered=session is not None,
                resumed=tls.session_reused if tls is not None and wire.handshake_done else None,
            )
        finally:
            for sock in (tls, raw):
                if sock is not None:
                    sock.close()
        seen = {"tls_version": wire.tls_version, "ca_names": wire.ca_names}
        offered = session is not None
        if response.status == 421:
            attempt = Attempt(MISDIRECTED, "HTTP 421", 421, stage=RESPONSE, **seen)
        elif response.status != 200:
            attempt = Attempt(
                ERROR, f"HTTP {response.status}", response.status, stage=RESPONSE, **seen
            )
        else:
            try:
                environ = json.loads(body)
            except ValueError:
                environ = None
            if not isinstance(environ, dict):
                attempt = Attempt(ERROR, "HTTP 200 without a JSON object", 200, **seen)
            else:
                attempt = Attempt(OK, "", 200, environ, **seen)
        return StepAttempt(attempt, obtained, offered, resumed)
