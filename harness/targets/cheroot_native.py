"""Cheroot's own SSL adapters, with client verification configured the way users do it today.

    pytest matrix --target harness.targets.cheroot_native:target

Each configuration runs ``python -m harness.apps.cheroot_server`` (its own
process): a ``cheroot.wsgi.Server`` with ``BuiltinSSLAdapter`` or
``pyOpenSSLAdapter``, on which the client CA and verification mode are set by
reaching into the adapter's context after constructing it (see that module).
Cheroot has no check of the client's host name and no CRL option. A
certificate_chain file is passed as Cheroot's own ``certificate_chain``
argument (what ``server.ssl_certificate_chain`` sets in CherryPy).
"""

from __future__ import annotations

from typing import ClassVar

from harness.target import ServerSpec

from .base import ALWAYS, ProcessTarget, app_arguments, checked, url_port

# Cheroot's BuiltinSSLAdapter.get_environ: connection keys, SSL_CLIENT_VERIFY, and
# for a verified certificate what ssl.getpeercert() parses (no A_SIG/A_KEY, no chain).
BUILTIN_VARIABLES = (
    *ALWAYS,
    "SSL_PROTOCOL",
    "SSL_CIPHER",
    "SSL_VERSION_INTERFACE",
    "SSL_VERSION_LIBRARY",
    "SSL_CLIENT_VERIFY",
    "SSL_CLIENT_CERT",
    "SSL_CLIENT_S_DN",
    "SSL_CLIENT_S_DN_*",
    "SSL_CLIENT_I_DN",
    "SSL_CLIENT_I_DN_*",
    "SSL_CLIENT_M_VERSION",
    "SSL_CLIENT_M_SERIAL",
    "SSL_CLIENT_V_START",
    "SSL_CLIENT_V_END",
    "SSL_CLIENT_V_REMAIN",
    "SSL_CLIENT_SAN_DNS_*",
    "SSL_CLIENT_SAN_Email_*",
)
# Cheroot's pyOpenSSLAdapter.get_environ is computed once, before any handshake:
# only the library and interface versions, nothing about the connection or the client.
PYOPENSSL_VARIABLES = (*ALWAYS, "SSL_VERSION_INTERFACE", "SSL_VERSION_LIBRARY")


class CherootNativeTarget(ProcessTarget):
    name = "cheroot_native"
    workers = 10  # cheroot's worker threads (harness.apps.cheroot_server's default --threads)
    package = "cheroot"
    requires = ("cheroot",)
    module = "harness.apps.cheroot_server"
    adapters = ("builtin", "pyopenssl")
    tls_stack = "Python's ssl module or pyOpenSSL"
    provided: ClassVar[dict[str, tuple[str, ...]]] = {
        "builtin": BUILTIN_VARIABLES,
        "pyopenssl": PYOPENSSL_VARIABLES,
    }
    ready = url_port("listening on")
    chain_unsupported = None
    crl_unsupported = "has no CRL option (neither adapter takes one)"
    host_check_reason = (
        "has no check of the client's host name (its adapters take no client CA or "
        "policy at all; users set the context's verify mode and trust store)"
    )

    def command(self, spec: ServerSpec) -> tuple[list[str], int | None]:
        return app_arguments(spec, adapter=True, chain=True), None

    def versions(self) -> dict[str, str]:
        """Cheroot's version, and the OpenSSL inside pyOpenSSL's wheel (not the stdlib's)."""
        out = super().versions()
        try:
            from OpenSSL import SSL

            out["pyopenssl-openssl"] = SSL.SSLeay_version(SSL.SSLEAY_VERSION).decode()
        except ImportError:
            out["pyopenssl-openssl"] = "pyOpenSSL not installed"
        return out


def target() -> CherootNativeTarget:
    return checked(CherootNativeTarget())
