"""A CherryPy 18 application whose client verification comes from configuration keys.

    python -m harness.apps.cherrypy_server --adapter builtin|pyopenssl --cert F --key F \
        [--client-ca F] --client-check ignore|optional|required [--check-host] --bind HOST

The command line only fills in CherryPy's configuration: ``server.ssl_module``,
``server.ssl_certificate``, ``server.ssl_private_key`` and the client keys
``server.ssl_client_CA``, ``server.ssl_client_check``,
``server.ssl_client_check_host``, turned into verification by
``harness.cherrypy_mtls.install()``. The application is a CherryPy handler (not a
grafted WSGI callable) answering any path with the TLS environ CherryPy received,
as JSON. Prints ``listening on https://HOST:PORT`` once the engine has started
(port 0 picks a free one), and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import sys

import cherrypy

from harness import cherrypy_mtls
from harness.reference import ConfigError


class Root:
    @cherrypy.expose
    def default(self, *args: str, **kwargs: str) -> bytes:
        environ = cherrypy.request.wsgi_environ
        shown = {
            key: value
            for key, value in environ.items()
            if key in ("HTTPS", "wsgi.url_scheme", "REMOTE_ADDR") or key.startswith("SSL_")
        }
        cherrypy.response.headers["Content-Type"] = "application/json"
        cherrypy.response.headers["Connection"] = "close"
        return json.dumps(shown, sort_keys=True, default=str).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.apps.cherrypy_server")
    parser.add_argument("--adapter", required=True, choices=("builtin", "pyopenssl"))
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca")
    parser.add_argument("--chain", help="intermediates sent after the certificate")
    parser.add_argument("--crl", help="CRL the client certificates are checked against")
    parser.add_argument("--client-check", default="ignore")
    parser.add_argument("--check-host", action="store_true")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args(argv)

    config = {
        "server.socket_host": options.bind,
        "server.socket_port": options.port,
        "server.ssl_module": options.adapter,
        "server.ssl_certificate": options.cert,
        "server.ssl_private_key": options.key,
        "server.ssl_client_check": options.client_check,
        "server.ssl_client_check_host": options.check_host,
        "engine.autoreload.on": False,
        "checker.on": False,
        "log.screen": False,
        "tools.encode.on": False,
    }
    optional = {
        "server.ssl_client_CA": options.client_ca,
        "server.ssl_certificate_chain": options.chain,
        "server.ssl_client_CRL": options.crl,
    }
    config.update({key: value for key, value in optional.items() if value})
    cherrypy_mtls.install()
    cherrypy.config.update(config)
    cherrypy.tree.mount(Root(), "/")
    try:  # built here, not inside engine.start(), which hides the error and exits 70
        cherrypy.server.httpserver, cherrypy.server.bind_addr = (
            cherrypy.server.httpserver_from_self()
        )
    except (ConfigError, OSError) as exc:
        print(f"cherrypy_server: {exc}", file=sys.stderr)
        return 2
    cherrypy.engine.signals.subscribe()  # SIGTERM, SIGHUP: stop the engine
    cherrypy.engine.start()
    if cherrypy.engine.state != cherrypy.engine.states.STARTED:
        return 1
    host, port = cherrypy.server.bound_addr[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"listening on https://{shown}:{port}", flush=True)
    cherrypy.engine.block()
    return 0


if __name__ == "__main__":
    sys.exit(main())
