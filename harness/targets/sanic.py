"""Sanic with an ``ssl.SSLContext`` as ``ssl``, and with a list of contexts.

    pytest matrix --target harness.targets.sanic:target
    pytest matrix --target harness.targets.sanic:multi_target

Each configuration runs ``python -m harness.apps.sanic_server`` (that module says
how). ``target`` (``sanic``) passes one context; ``multi_target`` (``sanic-multi``)
passes a list, Sanic's certificate selector, the context configured the same way.
The handler shows what ``request.scheme`` and the transport's ``ssl_object`` say:
the same keys as the tornado and aiohttp apps. A CRL is loaded with
``VERIFY_CRL_CHECK_LEAF``; no chain file option. Sanic prints the port it was given,
so a free one is picked here. Findings: docs/servers.md.
"""

from __future__ import annotations

from typing import ClassVar

from harness.target import ServerSpec

from .aiohttp import port_given, start_once_more_if_taken
from .base import ProcessTarget, app_arguments, checked, url_port
from .process import ServerProcess
from .tornado import STDLIB_APP_KEYS


class SanicTarget(ProcessTarget):
    name = "sanic"
    package = "sanic"
    module = "harness.apps.sanic_server"
    provided: ClassVar[dict[str, tuple[str, ...]]] = {"builtin": STDLIB_APP_KEYS}
    ready = url_port("listening on")
    crl_unsupported = None
    extra: tuple[str, ...] = ()

    def command(self, spec: ServerSpec) -> tuple[list[str], int | None]:
        args, port = port_given(app_arguments(spec, crl=True), spec)
        return [*args, *self.extra], port

    def start(self, spec: ServerSpec) -> ServerProcess:
        return start_once_more_if_taken(super().start, spec)


class SanicMultiTarget(SanicTarget):
    name = "sanic-multi"
    extra = ("--context-list",)


def target() -> SanicTarget:
    return checked(SanicTarget())


def multi_target() -> SanicMultiTarget:
    return checked(SanicMultiTarget())
