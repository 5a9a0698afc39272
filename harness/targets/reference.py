"""The reference server as a matrix target, in-process.

It expresses every configuration the matrix has: a client CA or none (it then
refuses to start, as SPEC section 8 allows), a certificate_chain file, a CRL
(``client_CRL``).
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import ClassVar

from harness.reference import ADAPTERS, ReferenceServer, make_adapter
from harness.target import ServerSpec


class ReferenceTarget:
    name = "reference"
    adapters = tuple(ADAPTERS)
    ca_names: ClassVar[dict[str, str]] = {
        "builtin": "none",
        "pyopenssl": "none",
    }  # docs/refusals.md
    features = frozenset({"crl", "certificate-chain", "no-client-ca"})
    workers = 4  # requests served at once (numthreads below); the resilience battery reads it

    def unsupported(self, spec: ServerSpec) -> str | None:
        if spec.adapter not in ADAPTERS:
            return f"the reference server has no {spec.adapter!r} adapter"
        return None

    def start(self, spec: ServerSpec) -> ReferenceServer:
        adapter = make_adapter(
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
        )
        return ReferenceServer(adapter, (spec.bind, 0), numthreads=4).start()

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


def target() -> ReferenceTarget:
    return ReferenceTarget()
