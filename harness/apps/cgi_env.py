"""The CGI application for Apache httpd: the environment mod_ssl set, as JSON.

Run by mod_cgid as a script (the apache target copies this file into its
ServerRoot behind a ``#!`` line for the running interpreter). It shows what
``harness.apps.wsgi.app`` shows, read from the CGI environment (RFC 3875):
``HTTPS`` and every ``SSL_*`` variable as mod_ssl exported them
(``SSLOptions +StdEnvVars +ExportCertData``), and ``wsgi.url_scheme`` taken
from ``REQUEST_SCHEME``, the CGI variable httpd sets to the scheme the request
came in on (``https`` behind mod_ssl).

It imports nothing from the project: the CGI process runs as httpd's ``User``,
which may not be able to read the project's files.
"""

from __future__ import annotations

import json
import os
import sys


def variables(environ: dict[str, str]) -> dict[str, str]:
    """HTTPS, wsgi.url_scheme (from REQUEST_SCHEME), the SSL_* variables, and the
    connection facts of SPEC section 9 (REMOTE_ADDR; MTLS_VIRTUAL_HOST, which the apache
    target sets per virtual host with SetEnv), values unchanged."""
    shown = {
        k: v
        for k, v in environ.items()
        if k in ("HTTPS", "REMOTE_ADDR", "MTLS_VIRTUAL_HOST") or k.startswith("SSL_")
    }
    if "REQUEST_SCHEME" in environ:
        shown["wsgi.url_scheme"] = environ["REQUEST_SCHEME"]
    return shown


def main() -> None:
    # Values are bytes from httpd; os.environ decoded them as UTF-8 with surrogateescape, and
    # a value that is not UTF-8 goes out as its escape sequence rather than failing.
    environ = {
        k: v.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        for k, v in os.environ.items()
    }
    body = json.dumps(variables(environ), sort_keys=True, indent=1).encode()
    head = (
        f"Status: 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sys.stdout.buffer.write(head.encode("ascii") + body)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
