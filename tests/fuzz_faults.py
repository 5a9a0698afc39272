"""Reference servers with one seeded fault each, for tests/test_fuzz.py.

Each is a real reference server (ReferenceTarget, cheroot, real handshakes) whose
application or TLS configuration is wrong in one way a careless server could be:

- ``dropped_uid``: the application never sees SSL_CLIENT_S_DN_UID (a DN attribute of
  mod_ssl's table dropped);
- ``rounded_remain``: SSL_CLIENT_V_REMAIN rounded to the nearest day instead of down;
- ``weak_keys``: OpenSSL security level 0, so an RSA 1024 client key is admitted (mod_ssl
  and the oracle refuse it at the default level 2).

``mtls-matrix fuzz --target tests.fuzz_faults:dropped_uid`` runs one by hand.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

from cryptography import x509

from harness.reference import ReferenceServer, make_adapter
from harness.reference.app import tls_environ_app
from harness.target import ServerSpec
from harness.targets.reference import ReferenceTarget


class _Faulty(ReferenceTarget):
    name = "faulty-reference"
    adapters = ("builtin",)
    ciphers: str | None = None

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        return tls_environ_app(environ, start_response)

    def start(self, spec: ServerSpec) -> ReferenceServer:
        settings: dict[str, Any] = {
            "certificate": str(spec.certificate),
            "private_key": str(spec.private_key),
            "client_CA": str(spec.client_ca),
            "client_check": spec.client_check,
            "handshake_timeout": 5.0,
        }
        if self.ciphers:
            settings["ciphers"] = self.ciphers
        adapter = make_adapter(spec.adapter, **settings)
        return ReferenceServer(adapter, (spec.bind, 0), self.app, numthreads=4).start()


class DroppedUid(_Faulty):
    def app(self, environ, start_response):
        environ.pop("SSL_CLIENT_S_DN_UID", None)
        return tls_environ_app(environ, start_response)


class RoundedRemain(_Faulty):
    def app(self, environ, start_response):
        pem = environ.get("SSL_CLIENT_CERT")
        if pem:
            cert = x509.load_pem_x509_certificate(pem.encode())
            left = cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)
            environ["SSL_CLIENT_V_REMAIN"] = str(
                max(0, math.floor(left / dt.timedelta(days=1) + 0.5))
            )
        return tls_environ_app(environ, start_response)


class WeakKeys(_Faulty):
    ciphers = "DEFAULT:@SECLEVEL=0"


dropped_uid, rounded_remain, weak_keys = DroppedUid, RoundedRemain, WeakKeys
