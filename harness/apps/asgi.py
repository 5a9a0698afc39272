"""The ASGI application for ASGI servers: what the scope really says about TLS.

An ASGI server has no environ, so the keys are built from the scope, never
invented: ``HTTPS=on`` and ``wsgi.url_scheme=https`` when the scope's scheme is
``https``, and ``SSL_*`` only from the ASGI TLS extension
(``scope["extensions"]["tls"]``, https://asgi.readthedocs.io/en/latest/specs/tls.html)
when the server provides it:

- ``tls_version`` (0x0303, 0x0304) -> ``SSL_PROTOCOL`` (TLSv1.2, TLSv1.3);
- ``client_cert_chain`` (PEM strings, leaf first) -> ``SSL_CLIENT_CERT`` and
  ``SSL_CLIENT_CERT_CHAIN_n`` (the certificates after the leaf);
- ``client_cert_name`` (RFC 4514) -> ``SSL_CLIENT_S_DN``;
- ``SSL_CLIENT_VERIFY``: ``SUCCESS`` when a chain is present and
  ``client_cert_error`` is None, ``NONE`` when no chain is present; a
  certificate that failed verification shows ``FAILED:<error>`` (mod_ssl's form).

The cipher suite is an IANA number in the extension, not OpenSSL's name, so
``SSL_CIPHER`` is not derived. ``REMOTE_ADDR`` is ``scope["client"]``'s host (uvicorn
puts ``X-Forwarded-For`` there when it trusts the peer: SPEC section 9).
``scope["scheme"]``, ``scope["client"]``, the extension and nothing else: what is
absent stays absent.
"""

from __future__ import annotations

import json
from typing import Any

TLS_VERSIONS = {0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}


def tls_keys(scope: dict[str, Any]) -> dict[str, str]:
    """The environ-style keys this scope supports, and only those."""
    shown: dict[str, str] = {}
    scheme = scope.get("scheme")
    if scheme in ("https", "wss"):
        shown["HTTPS"] = "on"
        shown["wsgi.url_scheme"] = "https"
    elif scheme in ("http", "ws"):
        shown["wsgi.url_scheme"] = "http"
    elif scheme:
        shown["wsgi.url_scheme"] = str(scheme)  # as the server gave it
    client = scope.get("client")
    if isinstance(client, (list, tuple)) and client:
        shown["REMOTE_ADDR"] = str(client[0])  # the peer, or what the server took for it
    tls = (scope.get("extensions") or {}).get("tls")
    if not isinstance(tls, dict):
        return shown
    version = tls.get("tls_version")
    if version in TLS_VERSIONS:
        shown["SSL_PROTOCOL"] = TLS_VERSIONS[version]
    chain = tls.get("client_cert_chain")
    if isinstance(chain, (list, tuple)):
        error = tls.get("client_cert_error")
        if not chain:
            shown["SSL_CLIENT_VERIFY"] = "NONE"
        elif error:
            shown["SSL_CLIENT_VERIFY"] = f"FAILED:{error}"
        else:
            shown["SSL_CLIENT_VERIFY"] = "SUCCESS"
        if chain:
            shown["SSL_CLIENT_CERT"] = chain[0]
            for n, pem in enumerate(chain[1:]):
                shown[f"SSL_CLIENT_CERT_CHAIN_{n}"] = pem
    name = tls.get("client_cert_name")
    if isinstance(name, str) and name:
        shown["SSL_CLIENT_S_DN"] = name
    return shown


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = json.dumps(tls_keys(scope), sort_keys=True, indent=1).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
