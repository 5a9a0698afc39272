"""Tornado's HTTPServer with an ``ssl.SSLContext`` as ``ssl_options``.

    pytest matrix --target harness.targets.tornado:target

Each configuration runs ``python -m harness.apps.tornado_server`` (that module says
how the context is built: ``ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)``,
the client CA, ``verify_mode`` CERT_OPTIONAL/CERT_REQUIRED, as tornado documents it).
The handler shows ``wsgi.url_scheme``/``HTTPS`` from ``request.protocol`` and, from
the connection's ``SSLSocket``, ``SSL_PROTOCOL``, ``SSL_CIPHER``,
``SSL_CLIENT_VERIFY`` and ``SSL_CLIENT_CERT`` (PEM of the DER
``get_ssl_certificate(binary_form=True)`` returns). A CRL is loaded into the same
context with ``VERIFY_CRL_CHECK_LEAF``; ``load_cert_chain`` takes one certificate
file, so there is no chain file option. Findings: docs/servers.md.
"""

from __future__ import annotations

from typing import ClassVar

from harness.target import ServerSpec

from .base import ProcessTarget, app_arguments, checked, url_port

STDLIB_APP_KEYS = (
    "HTTPS",
    "wsgi.url_scheme",
    "SSL_PROTOCOL",
    "SSL_CIPHER",
    "SSL_CLIENT_VERIFY",
    "SSL_CLIENT_CERT",
    "REMOTE_ADDR",
)


class TornadoTarget(ProcessTarget):
    name = "tornado"
    package = "tornado"
    module = "harness.apps.tornado_server"
    provided: ClassVar[dict[str, tuple[str, ...]]] = {"builtin": STDLIB_APP_KEYS}
    ready = url_port("listening on")
    crl_unsupported = None

    def command(self, spec: ServerSpec) -> tuple[list[str], int | None]:
        return app_arguments(spec, crl=True), None


def target() -> TornadoTarget:
    return checked(TornadoTarget())
