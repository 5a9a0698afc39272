"""The application the matrix talks to: it shows what the server told it about TLS."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any


def tls_environ_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """200 and a JSON object of HTTPS, wsgi.url_scheme, REMOTE_ADDR and every SSL_* key,
    for any path (REMOTE_ADDR: the peer address, which no request header may change,
    SPEC section 9)."""
    shown = {
        key: value
        for key, value in environ.items()
        if key in ("HTTPS", "wsgi.url_scheme", "REMOTE_ADDR") or key.startswith("SSL_")
    }
    body = json.dumps(shown, sort_keys=True, indent=1).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
