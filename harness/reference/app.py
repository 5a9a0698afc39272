"""The application the matrix talks to: it shows what the server told it about TLS."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

SHOWN = ("HTTPS", "wsgi.url_scheme", "REMOTE_ADDR", "MTLS_VIRTUAL_HOST")


def tls_environ_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """200 and a JSON object of HTTPS, wsgi.url_scheme, every SSL_* key and the connection
    facts of SPEC section 9 (REMOTE_ADDR, MTLS_VIRTUAL_HOST: docs/state.md), for any path."""
    shown = {key: value for key, value in environ.items() if key in SHOWN or key.startswith("SSL_")}
    body = json.dumps(shown, sort_keys=True, indent=1).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
