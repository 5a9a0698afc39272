"""uvicorn with its own TLS options, serving an ASGI app.

    pytest matrix --target harness.targets.uvicorn:target

    python -m uvicorn --host HOST --port 0 --ssl-certfile SERVER.pem
        --ssl-keyfile SERVER.key [--ssl-ca-certs CA.pem] --ssl-cert-reqs 0|1|2
        --no-access-log --lifespan off harness.apps.asgi:app

uvicorn builds a stdlib ``ssl`` context; its ASGI scope carries the scheme
and no TLS extension, so the app can show ``HTTPS`` and ``wsgi.url_scheme``
(from the scheme) and nothing else. It has no chain file option and no way to
turn on CRL checking: those configurations are unsupported.
"""

from __future__ import annotations

from typing import ClassVar

from harness.target import ServerSpec

from .base import ALWAYS, STDLIB_CERT_REQS, ProcessTarget, checked


class UvicornTarget(ProcessTarget):
    name = "uvicorn"
    package = "uvicorn"
    module = "uvicorn"
    provided: ClassVar[dict[str, tuple[str, ...]]] = {"builtin": ALWAYS}
    ready = r"Uvicorn running on https://\S+:(?P<port>\d+)"
    crl_unsupported = (
        "has no option to check a CRL (no verify flags; a CRL in --ssl-ca-certs is never checked)"
    )

    def command(self, spec: ServerSpec) -> tuple[list[str], int | None]:
        args = [
            "--host", spec.bind,
            "--port", "0",
            "--ssl-certfile", str(spec.certificate),
            "--ssl-keyfile", str(spec.private_key),
            "--ssl-cert-reqs", str(STDLIB_CERT_REQS[spec.client_check]),
            "--no-access-log",
            "--lifespan", "off",
            "--log-level", "info",
        ]  # fmt: skip
        if spec.client_check != "ignore" and spec.client_ca is not None:
            args += ["--ssl-ca-certs", str(spec.client_ca)]
        return [*args, "harness.apps.asgi:app"], None


def target() -> UvicornTarget:
    return checked(UvicornTarget())
