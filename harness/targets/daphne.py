"""Daphne (Django Channels' ASGI server), TLS from a Twisted ``ssl:`` endpoint string.

    pytest matrix --target harness.targets.daphne:target

    python -m daphne -v 1 -e ssl:port=0:interface=HOST:privateKey=KEY:certKey=CERT
        [:extraCertChain=CHAIN] harness.apps.asgi:app

Daphne's only TLS configuration is a Twisted server endpoint string (``-e``;
``twisted.internet.endpoints.serverFromString``, pyOpenSSL underneath, so its cases are
the matrix's ``pyopenssl`` ones). The ``ssl:`` endpoint's options are ``port``,
``interface``, ``backlog``, ``privateKey``, ``certKey``, ``sslmethod``,
``extraCertChain`` and ``dhParameters`` (Twisted 26, ``endpoints._parseSSL``): nothing
asks for a client certificate, names a CA to verify one against, or a CRL
(twisted/twisted#6757, #7988 are the open requests). So ``ignore`` is the only policy
it can express; ``optional`` and ``required`` are unsupported with that reason. The
chain file is ``extraCertChain``. Daphne's ASGI scope has the scheme (``https`` when
the transport is secure) and no TLS extension, so the app shows ``HTTPS`` and
``wsgi.url_scheme`` only. Findings: docs/servers.md.
"""

from __future__ import annotations

from typing import ClassVar

from harness.target import ServerSpec

from .base import ALWAYS, ProcessTarget, checked

NO_CLIENT_CERTIFICATES = (
    "has no client-certificate option: its TLS is a Twisted ssl: endpoint string, whose "
    "options cannot ask for a client certificate or name a CA (twisted/twisted#6757, #7988)"
)


def endpoint_escape(value: str) -> str:
    """A value inside a Twisted endpoint string: ``\\`` and ``:`` escaped with ``\\``."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


class DaphneTarget(ProcessTarget):
    name = "daphne"
    package = "daphne"
    requires = ("daphne", "twisted", "OpenSSL")
    module = "daphne"
    adapters = ("pyopenssl",)
    tls_stack = "pyOpenSSL (a Twisted ssl: endpoint)"
    client_checks = ("ignore",)
    provided: ClassVar[dict[str, tuple[str, ...]]] = {"pyopenssl": ALWAYS}
    ready = r"Listening on TCP address \S+:(?P<port>\d+)"
    chain_unsupported = None
    crl_unsupported = "has no CRL option (a Twisted ssl: endpoint string has none)"

    def unsupported(self, spec: ServerSpec) -> str | None:
        why = super().unsupported(spec)
        if why and spec.client_check not in self.client_checks and not spec.check_host:
            return f"{self.name} {NO_CLIENT_CERTIFICATES}"
        return why

    def command(self, spec: ServerSpec) -> tuple[list[str], int | None]:
        endpoint = [
            "ssl",
            "port=0",
            f"interface={endpoint_escape(spec.bind)}",
            f"privateKey={endpoint_escape(str(spec.private_key))}",
            f"certKey={endpoint_escape(str(spec.certificate))}",
        ]
        if spec.certificate_chain is not None:
            endpoint.append(f"extraCertChain={endpoint_escape(str(spec.certificate_chain))}")
        return ["-v", "1", "-e", ":".join(endpoint), "harness.apps.asgi:app"], None

    def versions(self) -> dict[str, str]:
        out = super().versions()
        from importlib.metadata import version

        out["twisted"] = version("twisted")
        return out


def target() -> DaphneTarget:
    return checked(DaphneTarget())
