"""The reference server: Cheroot with client-certificate verification on both TLS back-ends.

    adapter = make_adapter("pyopenssl", certificate="server.pem", private_key="server.key",
                           client_CA="ca.pem", client_check="required", client_check_host=True)
    with ReferenceServer(adapter, ("127.0.0.1", 0)) as server:
        print(server.url)

or, for an existing Cheroot/CherryPy server, ``server.ssl_adapter = adapter``.
There the handshake still runs on a worker, bounded by the handshake timeout, so
a client that stalls it holds that worker until then. ReferenceServer puts the
gate (gate.py) in front of the worker pool: handshake, request head and a
bounded body are read there, off the workers (SPEC section 7).
"""

from .adapters import ClientCertAdapter
from .app import tls_environ_app
from .builtin import BuiltinClientCertAdapter
from .errors import ConfigError, ConfigFileError
from .pyopenssl import PyOpenSSLClientCertAdapter
from .server import (
    ADAPTERS,
    ReferenceServer,
    StartError,
    adapter_from_config,
    make_adapter,
    parse_bind,
)

__all__ = [
    "ADAPTERS",
    "BuiltinClientCertAdapter",
    "ClientCertAdapter",
    "ConfigError",
    "ConfigFileError",
    "PyOpenSSLClientCertAdapter",
    "ReferenceServer",
    "StartError",
    "adapter_from_config",
    "make_adapter",
    "parse_bind",
    "tls_environ_app",
]
