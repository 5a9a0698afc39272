"""Werkzeug's development server with client verification set on its ``ssl_context``.

    python -m harness.apps.werkzeug_server --cert F --key F [--client-ca F] \
        --client-check ignore|optional|required --bind HOST

The way a Flask or Werkzeug user asks for client certificates: an
``ssl.SSLContext(PROTOCOL_TLS_SERVER)`` with the server's credential, its
``verify_mode`` set to ``CERT_OPTIONAL``/``CERT_REQUIRED`` and the client CA
loaded, passed as ``ssl_context`` to ``werkzeug.serving.make_server`` (what
``run_simple`` and ``flask run --cert`` use), threaded as ``flask run`` is.
Prints ``listening on https://HOST:PORT`` once the socket listens (port 0
picks a free one), then serves ``harness.apps.wsgi:app`` until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import ssl
import sys

from werkzeug.serving import make_server

from harness.apps.wsgi import app


def make_context(
    cert: str, key: str, client_ca: str | None, check: str, crl: str | None = None
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if check != "ignore":
        context.verify_mode = ssl.CERT_REQUIRED if check == "required" else ssl.CERT_OPTIONAL
        if client_ca is not None:
            context.load_verify_locations(client_ca)
        if crl is not None:
            context.load_verify_locations(crl)
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return context


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.apps.werkzeug_server")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca")
    parser.add_argument("--client-check", default="ignore")
    parser.add_argument("--crl", help="PEM CRL of the client CA, checked for the leaf")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args(argv)

    context = make_context(
        options.cert, options.key, options.client_ca, options.client_check, options.crl
    )
    server = make_server(options.bind, options.port, app, threaded=True, ssl_context=context)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    host = options.bind
    shown = f"[{host}]" if ":" in host else host
    print(f"listening on https://{shown}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
