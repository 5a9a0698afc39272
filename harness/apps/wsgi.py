"""The WSGI application for WSGI servers: whatever TLS keys the server put in the environ."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """200 and JSON of HTTPS, wsgi.url_scheme, REMOTE_ADDR and every SSL_* key the server
    set, as they are (REMOTE_ADDR and the scheme as the server gives them, so a server that
    takes them from X-Forwarded-* shows it: SPEC section 9)."""
    shown = {
        key: value
        for key, value in environ.items()
        if key in ("HTTPS", "wsgi.url_scheme", "REMOTE_ADDR") or key.startswith("SSL_")
    }
    # Values are shown as the server set them (an int stays an int); a value JSON
    # cannot carry (bytes, an object) is rendered with str() so the response stays JSON.
    body = json.dumps(shown, sort_keys=True, indent=1, default=str).encode()
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ],
    )
    return [body]
