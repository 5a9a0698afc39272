"""CherryPy 18: client-certificate verification from CherryPy's configuration keys alone.

CherryPy builds its HTTPS server from ``server.ssl_module``, ``server.ssl_certificate``
and ``server.ssl_private_key`` with Cheroot's own adapters, which take no client CA and
no verification policy (cheroot #748 and the CherryPy issues about client certificates
show users reaching into the adapter's context instead). This module lets the keys the
seed maps onto the reference adapters (SPEC section 2) do it:

    import cherrypy
    from harness import cherrypy_mtls

    cherrypy_mtls.install()                     # once, before the engine starts
    cherrypy.config.update({
        "server.ssl_module": "builtin",         # or "pyopenssl"
        "server.ssl_certificate": "server.pem",
        "server.ssl_private_key": "server.key",
        "server.ssl_client_CA": "ca.pem",       # the only trust store for clients
        "server.ssl_client_check": "required",  # "ignore" | "optional" | "required"
        "server.ssl_client_check_host": True,   # the certificate must name the client
    })

or, with no code at all, the configuration key
``server.instance = "harness.cherrypy_mtls.ClientCertWSGIServer"``. When any of
``server.ssl_client_CA``, ``server.ssl_client_check`` or
``server.ssl_client_check_host`` is set, the server's TLS adapter is the reference
adapter for ``server.ssl_module`` (``harness.reference.adapter_from_config``, which
also reads ``server.ssl_certificate_chain``, ``server.ssl_ciphers``,
``server.ssl_client_CRL`` and ``server.ssl_handshake_timeout``); otherwise CherryPy's
own is kept. The
application then sees the mod_ssl-style variables (``SSL_CLIENT_VERIFY``,
``SSL_CLIENT_S_DN``, ...) in ``cherrypy.request.wsgi_environ``. A configuration
that cannot work (a host check with ``ignore``, ``required`` without a CA, a
misspelt ``server.ssl_*`` key) raises ``harness.reference.ConfigError`` (one line)
when the server is built, before it listens.

Written here rather than taken from a library: no maintained package adds client
verification to CherryPy's configuration.
"""

from __future__ import annotations

from typing import Any

import cherrypy
from cheroot.server import HTTPConnection
from cherrypy._cpwsgi_server import CPWSGIServer

from harness.reference import adapter_from_config
from harness.reference.gate import MAX_HEAD, Gate
from harness.reference.server import (
    DEFAULT_MAX_REQUEST_BODY,
    DEFAULT_REQUEST_TIMEOUT,
    listen_backlog,
)
from harness.reference.server import _Server as GatedServer

CLIENT_KEYS = ("ssl_client_CA", "ssl_client_CRL", "ssl_client_check", "ssl_client_check_host")
SSL_KEYS = (
    "ssl_module",
    "ssl_certificate",
    "ssl_private_key",
    "ssl_certificate_chain",
    "ssl_ciphers",
    "ssl_handshake_timeout",
    *CLIENT_KEYS,
)
INSTANCE = f"{__name__}.ClientCertWSGIServer"


def server_config(server: Any) -> dict[str, Any]:
    """The ``server.ssl_*`` keys set on a CherryPy server object, as configuration keys."""
    return {
        f"server.{key}": getattr(server, key)
        for key in SSL_KEYS
        if getattr(server, key, None) is not None
    }


class _CherryPyConnection(HTTPConnection):
    """Where ``CPWSGIServer.__init__`` installs CherryPy's request class (proxy mode,
    CherryPy's own choice): on a class of this server's own, not on the reference
    server's connection class, which pins an origin server's request."""


class ClientCertWSGIServer(GatedServer, CPWSGIServer):
    """CherryPy's WSGI server, with the reference adapter when client keys are set.

    With the reference adapter it also gets the reference server's gate
    (``harness.reference.gate``): a connection reaches one of CherryPy's threads only
    once its handshake is done and its request head (at most 64 KiB, within 10 s) is
    buffered, so clients that stall a handshake or trickle a request hold no thread
    (SPEC section 7). Bodies up to 1 MiB (or CherryPy's ``max_request_body_size`` if
    smaller) are read in the gate too; larger ones go to a thread as CherryPy reads
    them, within its own limits. The listen backlog is the system's maximum.
    """

    ConnectionClass = _CherryPyConnection

    def __init__(self, server_adapter: Any = cherrypy.server) -> None:
        super().__init__(server_adapter)  # CherryPy's: GatedServer adds no __init__
        config = server_config(server_adapter)
        if any(f"server.{key}" in config for key in CLIENT_KEYS):
            self.ssl_adapter = adapter_from_config(config)
            self.request_queue_size = listen_backlog()
            self.max_request_header_size = MAX_HEAD
            limit = self.max_request_body_size or DEFAULT_MAX_REQUEST_BODY
            self.gate = Gate(
                self.hand_off,
                request_timeout=DEFAULT_REQUEST_TIMEOUT,
                keepalive_timeout=float(self.timeout),
                max_body=min(limit, DEFAULT_MAX_REQUEST_BODY),
            )

    def prepare(self) -> None:
        super().prepare()
        if self.gate is not None:
            self.gate.start()


def install(server: Any = None) -> None:
    """Have ``server`` (default ``cherrypy.server``) build a ``ClientCertWSGIServer``."""
    (server or cherrypy.server).instance = INSTANCE
