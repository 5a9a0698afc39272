"""Deliberately wrong servers for the request and per-path grids (SPEC section 9).

Each is the reference server with one mistake a server author could plausibly
make; ``test_state_request.py`` and ``test_state_perpath.py`` check that each
fails exactly its cases, as ``security`` where it admits or spoofs:

- ``TrustsForwardedHeaders``: a ProxyFix-style middleware applied to every peer,
  not just a configured proxy: ``X-Forwarded-Proto``/``-Ssl``, ``Forwarded``,
  ``X-Forwarded-For`` and ``X-SSL-Client-Verify``/``-S-DN`` overwrite the
  connection's scheme, address and client-certificate variables.
- ``UnpinnedScheme``: the adapters before the fix: ``wsgi.url_scheme`` left to
  Cheroot, which takes it from an absolute-form ``OPTIONS`` target.
- ``NaivePrefix``: per-path policies matched against the request target as sent, so
  ``/public/../secure/`` and ``//secure/`` (which an application, and Apache, resolve to
  ``/secure/``) are served without asking.
- ``PostHandshakeNeverAsks`` (python/cpython#81609): per-path policies configured
  on the TLS context (``CERT_REQUIRED`` with ``post_handshake_auth`` on the stdlib,
  as if that made OpenSSL ask) and nothing that asks after the handshake:
  ``/secure/`` is served to whoever connects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from harness.reference import ReferenceServer, make_adapter, tls_environ_app
from harness.reference.builtin import BuiltinClientCertAdapter
from harness.reference.perpath import PathPolicyApp
from harness.reference.pyopenssl import PyOpenSSLClientCertAdapter
from harness.target import ServerSpec
from harness.targets.reference import ReferenceTarget


def _settings(spec: ServerSpec) -> dict[str, Any]:
    return {
        "certificate": str(spec.certificate),
        "private_key": str(spec.private_key),
        "client_CA": str(spec.client_ca),
        "client_check": spec.client_check,
        "client_check_host": spec.check_host,
        "handshake_timeout": 5.0,
        "path_policies": spec.path_policies,
        "tls_version": spec.tls_version,
    }


def trusting_proxy_fix(app: Callable[..., Any]) -> Callable[..., Any]:
    """What a naive proxy middleware does, for any peer."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        proto = environ.get("HTTP_X_FORWARDED_PROTO")
        if proto:
            environ["wsgi.url_scheme"] = proto
        if environ.get("HTTP_X_FORWARDED_SSL") == "off":
            environ["wsgi.url_scheme"] = "http"
        forwarded_for = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded_for:
            environ["REMOTE_ADDR"] = forwarded_for.split(",")[0].strip()
        for part in environ.get("HTTP_FORWARDED", "").split(";"):
            name, _, value = part.partition("=")
            if name.strip().lower() == "proto":
                environ["wsgi.url_scheme"] = value.strip('"')
            elif name.strip().lower() == "for":
                environ["REMOTE_ADDR"] = value.strip('"')
        if environ.get("HTTP_X_SSL_CLIENT_VERIFY"):
            environ["SSL_CLIENT_VERIFY"] = environ["HTTP_X_SSL_CLIENT_VERIFY"]
        if environ.get("HTTP_X_SSL_CLIENT_S_DN"):
            environ["SSL_CLIENT_S_DN"] = environ["HTTP_X_SSL_CLIENT_S_DN"]
        return app(environ, start_response)

    return wrapped


class TrustsForwardedHeaders(ReferenceTarget):
    name = "wrong:trusts-forwarded-headers"

    def start(self, spec: ServerSpec) -> ReferenceServer:
        adapter = make_adapter(spec.adapter, **_settings(spec))
        app = trusting_proxy_fix(tls_environ_app)
        return ReferenceServer(adapter, (spec.bind, 0), app=app, numthreads=4).start()


def _unpinned(cls: type) -> type:
    class Unpinned(cls):
        def get_environ(self) -> dict[str, str]:
            env = super().get_environ()
            del env["wsgi.url_scheme"]
            return env

    return Unpinned


UNPINNED = {
    "builtin": _unpinned(BuiltinClientCertAdapter),
    "pyopenssl": _unpinned(PyOpenSSLClientCertAdapter),
}


class UnpinnedScheme(ReferenceTarget):
    name = "wrong:unpinned-scheme"

    def start(self, spec: ServerSpec) -> ReferenceServer:
        adapter = UNPINNED[spec.adapter](**_settings(spec))
        return ReferenceServer(adapter, (spec.bind, 0), numthreads=4).start()


class PostHandshakeNeverAsks(ReferenceTarget):
    name = "wrong:post-handshake-never-asks"

    def start(self, spec: ServerSpec) -> ReferenceServer:
        adapter = make_adapter(spec.adapter, **_settings(spec))
        server = ReferenceServer(adapter, (spec.bind, 0), numthreads=4)
        server._server.wsgi_app = tls_environ_app  # the per-path wrapper dropped
        return server.start()


class _RawPrefixApp(PathPolicyApp):
    def policy(self, path: str) -> str | None:
        hits = [(p, c) for p, c in self.adapter.settings.path_policies if path.startswith(p)]
        return max(hits, key=lambda hit: len(hit[0]))[1] if hits else None


class NaivePrefix(ReferenceTarget):
    name = "wrong:naive-prefix"

    def start(self, spec: ServerSpec) -> ReferenceServer:
        adapter = make_adapter(spec.adapter, **_settings(spec))
        server = ReferenceServer(adapter, (spec.bind, 0), numthreads=4)
        server._server.wsgi_app = _RawPrefixApp(tls_environ_app, adapter)
        return server.start()
