"""Twisted's web server (twisted.web) over Twisted's TLS, pyOpenSSL underneath.

    pytest matrix --target harness.targets.twisted:target
    pytest matrix --target harness.targets.twisted:sni_target

Each configuration runs ``python -m harness.apps.twisted_server`` (that module says
how: ``reactor.listenSSL`` with ``twisted.internet.ssl.CertificateOptions``). Twisted
terminates TLS with pyOpenSSL, so its cases are the matrix's ``pyopenssl`` ones. The
chain file is ``CertificateOptions(extraCertChain=...)``; there is no CRL option
(Twisted never sets ``VERIFY_CRL_CHECK_*``). The resource shows ``HTTPS``,
``wsgi.url_scheme``, ``SSL_PROTOCOL``, ``SSL_CIPHER``, ``SSL_CLIENT_VERIFY`` and
``SSL_CLIENT_CERT``.

``sni_target`` (``twisted-sni``) is the same options reached through Twisted's own
server-name indication (``contextForServerName``): a replay of the verify-mode loss
of pyca/pyopenssl#255, in the compat run as its own target. Findings: docs/servers.md.
"""

from __future__ import annotations

from typing import ClassVar

from harness.target import ServerSpec

from .base import ProcessTarget, app_arguments, checked, url_port
from .tornado import STDLIB_APP_KEYS


class TwistedTarget(ProcessTarget):
    name = "twisted"
    package = "twisted"
    requires = ("twisted", "OpenSSL")
    module = "harness.apps.twisted_server"
    adapters = ("pyopenssl",)
    tls_stack = "pyOpenSSL (twisted.internet.ssl)"
    provided: ClassVar[dict[str, tuple[str, ...]]] = {"pyopenssl": STDLIB_APP_KEYS}
    ready = url_port("listening on")
    chain_unsupported = None
    crl_unsupported = (
        "has no option to check a CRL (CertificateOptions never sets a CRL verify flag)"
    )
    extra: tuple[str, ...] = ()

    def command(self, spec: ServerSpec) -> tuple[list[str], int | None]:
        return [*app_arguments(spec, chain=True), *self.extra], None

    def versions(self) -> dict[str, str]:
        out = super().versions()
        out["pyopenssl"] = _version("pyOpenSSL")
        return out


class TwistedSNITarget(TwistedTarget):
    name = "twisted-sni"
    extra = ("--sni",)
    # Each SNI virtual host's own CertificateOptions, returned by contextForServerName:
    # the state profile's sni grid (docs/state.md) shows what the switch keeps.
    extra_features = frozenset({"sni-hosts"})

    def command(self, spec: ServerSpec) -> tuple[list[str], int | None]:
        args, port = super().command(spec)
        for host in spec.sni_hosts:
            ca = "-" if host.client_ca is None else str(host.client_ca)
            args += ["--sni-host", host.name, host.client_check, ca]
        return args, port


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def target() -> TwistedTarget:
    return checked(TwistedTarget())


def sni_target() -> TwistedSNITarget:
    return checked(TwistedSNITarget())
