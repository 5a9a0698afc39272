"""A certificate asked for by path (SPEC section 9): Apache's per-directory SSLVerifyClient.

``PathPolicyApp`` wraps a WSGI application. A request under a path prefix of the
adapter's ``path_policies`` (all ``required``) is passed on only once the
connection has a verified client certificate: when the handshake gave none, the
server asks after it (``TLSConnection.request_client_certificate``: TLS 1.3
post-handshake authentication on the stdlib, TLS 1.2 renegotiation on pyOpenSSL).

How a client that does not end up verified is refused follows Apache httpd
2.4.71 with OpenSSL 3.0.22, measured (docs/state-request.md):

- the server cannot ask (the client did not offer post-handshake authentication,
  or, under ``optional``, the handshake asked already): ``403 Forbidden``
  (mod_ssl: AH10158 "cannot perform post-handshake authentication");
- the client answers without a certificate or with one that fails: the TLS
  stack's alert (``certificate_required`` in TLS 1.3, ``handshake_failure`` in
  TLS 1.2, ``unknown_ca``...) and the connection ends, as mod_ssl's does
  (AH02261 "Re-negotiation handshake failed").

The ``ReferenceServer`` applies it whenever its adapter has path policies; a
plain Cheroot server must wrap its application itself (the adapter refuses every
connection until something does: fail-safe).
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from .adapters import ClientCertAdapter
from .connection import CONNECTION_KEY, CannotAsk, Refused, format_peer

log = logging.getLogger("mtls_matrix.reference")

FORBIDDEN = b"A verified client certificate is required for this path.\n"


def policy_for(path: str, path_policies: tuple[tuple[str, str], ...]) -> str | None:
    """The client_check of the longest prefix of ``path`` in ``path_policies``, or None.

    A plain string prefix, as Apache's ``<Location "/secure/">`` matches: ``/secure/``
    covers ``/secure/`` and ``/secure/x``, not ``/secure``. It is matched against the
    path as given and as an application might resolve it (``match_forms``): Apache
    matches ``<Location>`` after merging slashes and removing dot segments, and an
    application that resolves ``/public/../secure/x`` must not be handed it unasked.
    """
    best: tuple[int, str] | None = None
    for form in match_forms(path):
        for prefix, check in path_policies:
            if form.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), check)
    return None if best is None else best[1]


def match_forms(path: str) -> tuple[str, ...]:
    """``path`` as given, and percent-decoded once more (Cheroot leaves ``%2F`` in
    PATH_INFO), repeated slashes merged and dot segments removed (RFC 3986 section
    5.2.4), a trailing slash kept."""
    resolved = re.sub(r"/{2,}", "/", unquote(path))
    trailing = resolved.endswith(("/", "/.", "/..")) or resolved in (".", "..")
    resolved = posixpath.normpath("/" + resolved.lstrip("/"))
    if trailing and not resolved.endswith("/"):
        resolved += "/"
    return (path, resolved) if resolved != path else (path,)


class PathPolicyApp:
    """WSGI middleware: the path's policy enforced on the connection before ``app`` runs."""

    def __init__(self, app: Callable[..., Any], adapter: ClientCertAdapter) -> None:
        self.app = app
        self.adapter = adapter
        adapter.path_policies_enforced = True

    def policy(self, path: str) -> str | None:
        """The client_check for ``path`` (``policy_for`` over the adapter's policies)."""
        return policy_for(path, self.adapter.settings.path_policies)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if self.policy(path) != "required" or environ.get("SSL_CLIENT_VERIFY") == "SUCCESS":
            return self.app(environ, start_response)
        conn = environ.get(CONNECTION_KEY)
        if conn is None:  # not one of our connections: nothing can ask, nothing is served
            return _forbidden(start_response)
        try:
            conn.request_client_certificate()
        except CannotAsk as exc:
            log.warning("TLS client %s refused %s: %s", format_peer(conn.peer), path, exc)
            return _forbidden(start_response)
        except Refused:
            return _forbidden(start_response)  # logged; the write fails, the alert is sent
        environ.update({k: v for k, v in conn.environ.items() if k.startswith("SSL_")})
        return self.app(environ, start_response)


def _forbidden(start_response: Callable[..., Any]) -> list[bytes]:
    start_response(
        "403 Forbidden",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(FORBIDDEN)))],
    )
    return [FORBIDDEN]
