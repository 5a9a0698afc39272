"""Hypercorn with its own TLS options, serving an ASGI app.

    pytest matrix --target harness.targets.hypercorn:target

    python -m hypercorn --bind HOST:0 --workers 0 --certfile SERVER.pem
        --keyfile SERVER.key [--ca-certs CA.pem]
        --verify-mode CERT_NONE|CERT_OPTIONAL|CERT_REQUIRED harness.apps.asgi:app

``--workers 0`` serves in the process we start (Hypercorn's single-process
mode; the default spawns one worker process running the same code), so the
TLS path is Hypercorn's asyncio server with a stdlib ``ssl`` context. Its
ASGI scope carries no TLS extension: the app can show ``HTTPS`` and
``wsgi.url_scheme`` (from the scheme) and nothing else.

A CRL is expressed the one way Hypercorn allows: its ``verify_flags`` setting
(configuration only, no flag; ``-c python:harness.apps.hypercorn_crl`` sets
``VERIFY_CRL_CHECK_LEAF``) with the CRL inside the ``--ca-certs`` file, which
the stdlib's ``load_verify_locations`` reads for CRLs as well. There is no
chain file option.
"""

from __future__ import annotations

from typing import ClassVar

from harness.target import ServerSpec

from .base import ALWAYS, STDLIB_VERIFY_MODES, ProcessTarget, checked, host_port, url_port


class HypercornTarget(ProcessTarget):
    name = "hypercorn"
    package = "hypercorn"
    module = "hypercorn"
    provided: ClassVar[dict[str, tuple[str, ...]]] = {"builtin": ALWAYS}
    ready = url_port("Running on")
    crl_unsupported = None

    def command(self, spec: ServerSpec) -> tuple[list[str], int | None]:
        args = [
            "--bind", host_port(spec.bind, 0),
            "--workers", "0",
            "--certfile", str(spec.certificate),
            "--keyfile", str(spec.private_key),
            "--verify-mode", STDLIB_VERIFY_MODES[spec.client_check],
            "--graceful-timeout", "2",
        ]  # fmt: skip
        if spec.crl is not None:
            args += ["-c", "python:harness.apps.hypercorn_crl"]
        ca = spec.client_ca_with_crl if spec.crl is not None else spec.client_ca
        if spec.client_check != "ignore" and ca is not None:
            args += ["--ca-certs", str(ca)]
        return [*args, "harness.apps.asgi:app"], None


def target() -> HypercornTarget:
    return checked(HypercornTarget())
