"""Granian (Rust, rustls) with its own TLS options, serving an ASGI app.

    pytest matrix --target harness.targets.granian:target

    python -m granian --interface asgi --host HOST --port PORT --workers 1
        --ssl-certificate SERVER.pem --ssl-keyfile SERVER.key
        --ssl-protocol-min tls1.2 [--ssl-ca CA.pem] [--ssl-client-verify]
        [--ssl-crl CA.crl.pem] harness.apps.asgi:app

Granian terminates TLS with rustls, so it reports under its own adapter name,
``rustls``; the matrix's ``builtin`` and ``pyopenssl`` cases are unsupported.
Policies: ignore = no ``--ssl-ca``; optional = ``--ssl-ca`` alone (rustls
verifies a certificate that is presented and lets a client without one in);
required = ``--ssl-ca --ssl-client-verify``. Granian prints the port it was
given, not the one it bound, so the port is picked here (``free_port``), and
it logs its last line just before its worker listens, so the target confirms
the port accepts connections (``confirm_listening``). ``--host`` takes an IP
address only: bind ``localhost`` is unsupported.
``--ssl-protocol-min tls1.2`` is given so that both TLS versions are served
(granian's default minimum is 1.3). A CRL is ``--ssl-crl``; there is no chain
file option. Its ASGI scope carries no TLS extension: the app can show ``HTTPS`` and
``wsgi.url_scheme`` (from the scheme) and nothing else.
"""

from __future__ import annotations

from typing import ClassVar

from harness.target import ServerSpec

from .base import ALWAYS, ProcessTarget, checked
from .process import ServerProcess, ServerStartError, free_port


class GranianTarget(ProcessTarget):
    name = "granian"
    package = "granian"
    module = "granian"
    adapters = ("rustls",)
    tls_stack = "rustls"
    provided: ClassVar[dict[str, tuple[str, ...]]] = {"rustls": ALWAYS}
    ready = r"Started worker-1\b"
    bad_binds: ClassVar[dict[str, str]] = {
        "localhost": "its --host takes an IP address only (ValueError: invalid IP address syntax)",
    }
    # Granian binds in the main process and calls listen() in the worker, right after
    # logging "Started worker-1"; nothing is logged once it listens.
    confirm_listening = True
    crl_unsupported = None

    @property
    def features(self) -> frozenset[str]:
        # granian 2.x added --ssl-ca, --ssl-client-verify and --ssl-crl; 1.x has none
        declared = super().features
        return declared if "--ssl-crl" in self.cli_options() else declared - {"crl"}

    def unsupported(self, spec: ServerSpec) -> str | None:
        if spec.client_check != "ignore" and "--ssl-ca" not in self.cli_options():
            release = self.versions().get(self.package, "?")
            return f"granian {release} has no option for client certificates (no --ssl-ca)"
        return super().unsupported(spec)

    def command(self, spec: ServerSpec) -> tuple[list[str], int | None]:
        port = free_port(spec.bind)
        args = [
            "--interface", "asgi",
            "--host", spec.bind,
            "--port", str(port),
            "--workers", "1",
            "--ssl-certificate", str(spec.certificate),
            "--ssl-keyfile", str(spec.private_key),
            "--log-level", "info",
        ]  # fmt: skip
        if "--ssl-protocol-min" in self.cli_options():  # absent before 2.6: TLS 1.3 only
            args += ["--ssl-protocol-min", "tls1.2"]
        if spec.client_check != "ignore" and spec.client_ca is not None:
            args += ["--ssl-ca", str(spec.client_ca)]
        if spec.client_check == "required" or (
            spec.client_check == "optional" and spec.client_ca is None
        ):
            # Without --ssl-ca, verification is asked for only by this flag.
            args += ["--ssl-client-verify"]
        if spec.crl is not None:
            args += ["--ssl-crl", str(spec.crl)]
        return [*args, "harness.apps.asgi:app"], port

    def start(self, spec: ServerSpec) -> ServerProcess:
        try:
            return super().start(spec)
        except ServerStartError as exc:
            if "in use" not in str(exc):  # the picked port was taken meanwhile: once more
                raise
            return super().start(spec)

    def versions(self) -> dict[str, str]:
        out = super().versions()
        out["tls"] = "rustls (built into granian)"
        return out


def target() -> GranianTarget:
    return checked(GranianTarget())
