"""aiohttp's web server with an ``ssl.SSLContext`` as ``ssl_context``.

    pytest matrix --target harness.targets.aiohttp:target

Each configuration runs ``python -m harness.apps.aiohttp_server`` (that module says
how: ``web.TCPSite(runner, host, port, ssl_context=context)``, the context built as
aiohttp documents it, a CRL with ``VERIFY_CRL_CHECK_LEAF``). The handler shows
``wsgi.url_scheme``/``HTTPS`` from ``request.scheme`` and ``SSL_PROTOCOL``,
``SSL_CIPHER``, ``SSL_CLIENT_VERIFY`` and ``SSL_CLIENT_CERT`` from the transport's
``ssl_object``. No chain file option (``load_cert_chain`` takes one certificate file).

``report_7466_target`` (name ``aiohttp-7466``) replays aio-libs/aiohttp#7466: the
context as that report builds it (certificate and key only, ``verify_mode`` never
set), every other declaration the same. It is not in the compat run (a replay, not
a configuration to recommend). Findings: docs/servers.md.
"""

from __future__ import annotations

from typing import ClassVar

from harness.target import ServerSpec

from .base import ProcessTarget, app_arguments, checked, url_port
from .process import ServerProcess, ServerStartError, free_port
from .tornado import STDLIB_APP_KEYS


class AiohttpTarget(ProcessTarget):
    name = "aiohttp"
    package = "aiohttp"
    module = "harness.apps.aiohttp_server"
    provided: ClassVar[dict[str, tuple[str, ...]]] = {"builtin": STDLIB_APP_KEYS}
    ready = url_port("listening on")
    crl_unsupported = None

    def command(self, spec: ServerSpec) -> tuple[list[str], int | None]:
        return port_given(app_arguments(spec, crl=True), spec)

    def start(self, spec: ServerSpec) -> ServerProcess:
        return start_once_more_if_taken(super().start, spec)


def port_given(args: list[str], spec: ServerSpec) -> tuple[list[str], int]:
    """asyncio's ``create_server`` binds each address of a name (``localhost``) on its own
    port 0, so these servers are given one free port, as their users give one."""
    port = free_port(spec.bind)
    return [*args[: args.index("--port") + 1], str(port), *args[args.index("--port") + 2 :]], port


def start_once_more_if_taken(start, spec: ServerSpec) -> ServerProcess:
    """The picked port may be taken before the server binds it: one more try."""
    try:
        return start(spec)
    except ServerStartError as exc:
        if "in use" not in str(exc):
            raise
        return start(spec)


class AiohttpReport7466Target(AiohttpTarget):
    name = "aiohttp-7466"

    def command(self, spec: ServerSpec) -> tuple[list[str], int | None]:
        args, port = super().command(spec)
        return [*args, "--as-reported-7466"], port


def target() -> AiohttpTarget:
    return checked(AiohttpTarget())


def report_7466_target() -> AiohttpReport7466Target:
    return checked(AiohttpReport7466Target())
