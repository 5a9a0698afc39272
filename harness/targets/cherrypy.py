"""A CherryPy 18 application as a target, client verification from its configuration keys.

    pytest matrix --target harness.targets.cherrypy:target

Each configuration runs ``python -m harness.apps.cherrypy_server`` (its own process):
a CherryPy application configured with ``server.ssl_module``,
``server.ssl_certificate``, ``server.ssl_private_key`` and the client keys
``server.ssl_client_CA``, ``server.ssl_client_check`` and
``server.ssl_client_check_host``, which ``harness.cherrypy_mtls`` turns into the
reference adapters. Every policy, host check included, is expressible on both
adapters, and the application sees what the reference server shows.
"""

from __future__ import annotations

import sys
from typing import ClassVar

from harness.target import ServerSpec

from .base import ProcessTarget, app_arguments, checked, url_port

# The reference adapters' variables; the stdlib cannot show the client's chain
# before Python 3.13 (SSLSocket.get_unverified_chain).
_CHAIN = ("SSL_CLIENT_CERT_CHAIN_*",) if sys.version_info >= (3, 13) else ()
_ALL_BUT_CHAIN = (
    "HTTPS",
    "wsgi.url_scheme",
    "SSL_PROTOCOL",
    "SSL_CIPHER",
    "SSL_VERSION_*",
    "SSL_CLIENT_VERIFY",
    "SSL_CLIENT_CERT",
    "SSL_CLIENT_S_DN*",
    "SSL_CLIENT_I_DN*",
    "SSL_CLIENT_M_*",
    "SSL_CLIENT_V_*",
    "SSL_CLIENT_A_*",
    "SSL_CLIENT_SAN_*",
)


class CherryPyTarget(ProcessTarget):
    name = "cherrypy"
    package = "CherryPy"
    requires = ("cherrypy",)
    module = "harness.apps.cherrypy_server"
    ca_names: ClassVar[dict[str, str]] = {
        "builtin": "none",
        "pyopenssl": "none",
    }  # docs/refusals.md
    adapters = ("builtin", "pyopenssl")
    tls_stack = "the reference adapters (Python's ssl module or pyOpenSSL)"
    chain_unsupported = None  # server.ssl_certificate_chain
    crl_unsupported = None  # server.ssl_client_CRL
    provided: ClassVar[dict[str, tuple[str, ...]]] = {
        "builtin": (*_ALL_BUT_CHAIN, *_CHAIN),
        "pyopenssl": (*_ALL_BUT_CHAIN, "SSL_CLIENT_CERT_CHAIN_*"),
    }
    ready = url_port("listening on")

    def unsupported(self, spec: ServerSpec) -> str | None:
        if spec.adapter not in self.adapters:
            return f"cherrypy has no {spec.adapter!r} adapter"
        return None  # every policy, host check, chain file and CRL included

    def command(self, spec: ServerSpec) -> tuple[list[str], int | None]:
        args = app_arguments(spec, adapter=True, chain=True, crl=True)
        if spec.check_host:
            args.append("--check-host")
        return args, None


def target() -> CherryPyTarget:
    return checked(CherryPyTarget())
