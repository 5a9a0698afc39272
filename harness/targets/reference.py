"""The reference server as a matrix target, in-process.

It expresses every configuration the matrix has: a client CA or none (it then
refuses to start, as SPEC section 8 allows), a certificate_chain file, a CRL
(``client_CRL``), SNI virtual hosts (``sni_hosts``), a reload in place, per-path
policies (``path_policies``: TLS 1.3 post-handshake authentication on ``builtin``, TLS
1.2 renegotiation on ``pyopenssl``; the other version on each is unsupported) and one
TLS version (``tls_version``).
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar

from harness.reference import ADAPTERS, ClientCertAdapter, ReferenceServer, make_adapter
from harness.reference.adapters import VirtualHost
from harness.target import ServerSpec


class ReferenceTarget:
    name = "reference"
    adapters = tuple(ADAPTERS)
    ca_names: ClassVar[dict[str, str]] = {
        "builtin": "none",
        "pyopenssl": "none",
    }  # docs/refusals.md
    features = frozenset(
        {
            "crl",
            "certificate-chain",
            "no-client-ca",
            "sni-hosts",
            "reload",
            "per-path",
            "tls-version",
        }
    )
    workers = 4  # requests served at once (numthreads below); the resilience battery reads it

    def unsupported(self, spec: ServerSpec) -> str | None:
        if spec.adapter not in ADAPTERS:
            return f"the reference server has no {spec.adapter!r} adapter"
        if spec.path_policies:
            # What each back-end can ask with after the handshake (docs/state-request.md).
            if spec.adapter == "builtin" and spec.tls_version == "TLSv1.2":
                return (
                    "Python's ssl module cannot renegotiate: "
                    "no certificate request after a TLS 1.2 handshake"
                )
            if spec.adapter == "pyopenssl" and spec.tls_version == "TLSv1.3":
                return (
                    "pyOpenSSL has no TLS 1.3 post-handshake authentication "
                    "(SSL_verify_client_post_handshake is not bound)"
                )
        return None

    def start(self, spec: ServerSpec) -> ReferenceHandle:
        server = ReferenceServer(self.adapter(spec), (spec.bind, 0), numthreads=4).start()
        return ReferenceHandle(server, self)

    def adapter(self, spec: ServerSpec) -> ClientCertAdapter:
        """The adapter for ``spec``: its default host and SNI virtual hosts."""
        return make_adapter(
            spec.adapter,
            certificate=str(spec.certificate),
            private_key=str(spec.private_key),
            client_CA=None if spec.client_ca is None else str(spec.client_ca),
            client_CRL=None if spec.crl is None else str(spec.crl),
            certificate_chain=None
            if spec.certificate_chain is None
            else str(spec.certificate_chain),
            client_check=spec.client_check,
            client_check_host=spec.check_host,
            handshake_timeout=5.0,
            path_policies=spec.path_policies,
            tls_version=spec.tls_version,
            sni_hosts=[
                VirtualHost(
                    h.name,
                    h.client_check,
                    h.check_host,
                    None if h.client_ca is None else str(h.client_ca),
                )
                for h in spec.sni_hosts
            ],
        )

    def provides(self, adapter: str, variable: str) -> bool:
        # The stdlib cannot show the client's chain before Python 3.13
        # (SSLSocket.get_unverified_chain); the variable is absent, never wrong.
        if adapter == "builtin" and variable.startswith("SSL_CLIENT_CERT_CHAIN_"):
            return sys.version_info >= (3, 13)
        return True

    def versions(self) -> dict[str, str]:
        out = {}
        for package in ("cheroot", "pyOpenSSL", "service_identity"):
            try:
                out[package] = version(package)
            except PackageNotFoundError:
                out[package] = "not installed"
        return out


class ReferenceHandle:
    """The running server (``host``, ``port``, ``stop()``, and the ReferenceServer's other
    attributes, which the resilience battery reads) with ``reload(spec)``: a new adapter
    for ``spec``, used by every connection accepted afterwards (SPEC section 9)."""

    def __init__(self, server: ReferenceServer, target: ReferenceTarget) -> None:
        self.server = server
        self._target = target

    def __getattr__(self, name: str) -> Any:
        if name == "server":
            raise AttributeError(name)
        return getattr(self.server, name)

    def reload(self, spec: ServerSpec) -> None:
        self.server.replace_adapter(self._target.adapter(spec))

    def stop(self) -> None:
        self.server.stop()


def target() -> ReferenceTarget:
    return ReferenceTarget()
