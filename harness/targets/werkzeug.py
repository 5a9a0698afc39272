"""Werkzeug's development server with client verification on its ``ssl_context``.

    pytest matrix --target harness.targets.werkzeug:target

Each configuration runs ``python -m harness.apps.werkzeug_server``:
``werkzeug.serving.make_server(host, 0, app, threaded=True, ssl_context=ctx)``
where ``ctx`` is an ``ssl.SSLContext(PROTOCOL_TLS_SERVER)`` with the server's
credential, ``verify_mode`` CERT_NONE/CERT_OPTIONAL/CERT_REQUIRED and the
client CA loaded (see that module). Werkzeug shows ``wsgi.url_scheme`` and,
when the client sent a certificate, ``SSL_CLIENT_CERT`` (PEM). A CRL goes
where a user of the ``ssl`` module puts it: loaded into the same context with
``VERIFY_CRL_CHECK_LEAF`` set. ``load_cert_chain`` takes one certificate file,
so there is no chain file option.
"""

from __future__ import annotations

from typing import ClassVar

from harness.target import ServerSpec

from .base import ProcessTarget, app_arguments, checked, url_port


class WerkzeugTarget(ProcessTarget):
    name = "werkzeug"
    package = "werkzeug"
    requires = ("werkzeug",)
    module = "harness.apps.werkzeug_server"
    provided: ClassVar[dict[str, tuple[str, ...]]] = {
        "builtin": ("wsgi.url_scheme", "SSL_CLIENT_CERT")
    }
    ready = url_port("listening on")
    crl_unsupported = None

    def command(self, spec: ServerSpec) -> tuple[list[str], int | None]:
        return app_arguments(spec, crl=True), None


def target() -> WerkzeugTarget:
    return checked(WerkzeugTarget())
