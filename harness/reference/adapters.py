"""Cheroot SSL adapters with client-certificate verification, one per TLS back-end.

They plug in where Cheroot's own adapters do (``server.ssl_adapter = ...``)
and add what those lack: a client CA, a verification policy, a client host
check, mod_ssl-style SSL_CLIENT_* variables, and a handshake that cannot hold
up the accept loop.
"""

from __future__ import annotations

import abc
import re
import socket
from collections.abc import Iterable
from typing import Any, NamedTuple

from cheroot.makefile import MakeFile
from cheroot.ssl import Adapter

from .connection import Session, TLSConnection
from .errors import ConfigError
from .policy import DEFAULT_HANDSHAKE_TIMEOUT, CAFile, TLSSettings, check_settings
from .vhosts import DEFAULT_HOST, HostSelectingSession, normalise_name

INTERFACE_VERSION = "mtls-matrix/0.1.0"
# An SNI host_name: ASCII letters, digits, hyphens and dots (RFC 6066 section 3: a DNS
# hostname in its A-label form, no trailing dot; RFC 1123 labels).
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


class VirtualHost(NamedTuple):
    """A name the server answers as its own host, with its own verification (SPEC
    section 9): a client sending ``name`` in its SNI is verified under these settings."""

    name: str
    client_check: str = "ignore"
    client_check_host: bool = False
    client_CA: str | None = None


class ClientCertAdapter(Adapter, abc.ABC):
    """Shared by both back-ends: configuration, wrap() and the environ skeleton."""

    backend: str = ""

    def __init__(
        self,
        certificate: str,
        private_key: str,
        certificate_chain: str | None = None,
        ciphers: str | None = None,
        *,
        private_key_password: Any = None,
        client_CA: str | None = None,
        client_CRL: str | None = None,
        client_check: str = "ignore",
        client_check_host: bool = False,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        path_policies: Any = (),
        tls_version: str | None = None,
        sni_hosts: Iterable[VirtualHost | tuple] = (),
    ) -> None:
        if private_key_password is not None:
            raise ConfigError("encrypted private keys are not supported; pass an unencrypted key")
        # The client CA file as checked: a back-end may load those blocks rather than
        # read the file again (builtin.py, capath.py); dropped once the context is built.
        self.checked_client_CA: CAFile | None
        self.settings, self.checked_client_CA = check_settings(
            TLSSettings(
                certificate=certificate,
                private_key=private_key,
                certificate_chain=certificate_chain,
                client_CA=client_CA,
                client_CRL=client_CRL,
                client_check=client_check,
                client_check_host=client_check_host,
                handshake_timeout=handshake_timeout,
                path_policies=path_policies,
                tls_version=tls_version,
            )
        )
        # Set by perpath.PathPolicyApp when it wraps the application: a connection on an
        # adapter with path policies is served only then (fail-safe: a plain Cheroot
        # server given this adapter would otherwise serve /secure/ to anyone).
        self.path_policies_enforced = False
        super().__init__(certificate, private_key, certificate_chain, ciphers)
        try:
            self.context = self.build_context()
        except Exception as exc:
            # validate() checks what it can first; if OpenSSL still says no (a cipher
            # string it does not know, say), that is a configuration error, in one line.
            if not isinstance(exc, (OSError, ValueError, TypeError)) and not type(
                exc
            ).__module__.startswith("OpenSSL"):
                raise
            raise ConfigError(f"the TLS library refused this configuration: {_why(exc)}") from None
        finally:
            self.checked_client_CA = None
        self.host_name = DEFAULT_HOST
        self.hosts: dict[str, ClientCertAdapter] = {}
        for given in sni_hosts:
            vhost = VirtualHost(*given)
            if not isinstance(vhost.name, str) or not _HOST_NAME.match(vhost.name):
                raise ConfigError(f"SNI host name {vhost.name!r} is not a DNS host name")
            key = normalise_name(vhost.name)
            if key in self.hosts:
                raise ConfigError(f"SNI host name {vhost.name!r} is given twice")
            # Each host a whole adapter of this back-end: its own context, so its own
            # verify mode, CA, session cache and ticket keys (vhosts.py says why).
            host = type(self)(
                certificate,
                private_key,
                certificate_chain,
                ciphers,
                client_CA=vhost.client_CA,
                client_check=vhost.client_check,
                client_check_host=vhost.client_check_host,
                handshake_timeout=handshake_timeout,
            )
            host.host_name = vhost.name
            self.hosts[key] = host

    def close(self) -> None:
        """Remove what start-up made on disk (a large client CA file's hashed directory,
        capath.py), this host's and every virtual host's. A closed adapter's context
        finds no CA it has not looked up yet: it refuses, it never admits."""
        for adapter in (self, *self.hosts.values()):
            directory = getattr(adapter.context, "_mtls_capath", None)
            if directory is not None:
                directory.cleanup()

    def host_for(self, server_name: str | None) -> ClientCertAdapter:
        """The adapter (host) a client sending ``server_name`` gets: the named virtual
        host, else this one, the default host."""
        if not server_name or not self.hosts:
            return self
        return self.hosts.get(normalise_name(server_name), self)

    def open_session(self, sock: socket.socket) -> Session:
        """Wrap an accepted socket; no I/O happens here. With SNI hosts the back-end
        session is chosen on the first handshake step (vhosts.py)."""
        if self.hosts:
            return HostSelectingSession(self, sock)
        return self.open_backend_session(sock)

    @abc.abstractmethod
    def build_context(self) -> Any:
        """The back-end's context, configured once for every connection."""

    @abc.abstractmethod
    def open_backend_session(self, sock: socket.socket) -> Session:
        """Wrap an accepted socket in this back-end's session; no I/O happens here."""

    @abc.abstractmethod
    def library_version(self) -> str:
        """'OpenSSL/3.0.13', as mod_ssl's SSL_VERSION_LIBRARY shows it."""

    def bind(self, sock: socket.socket) -> socket.socket:
        return sock

    def wrap(self, sock: socket.socket) -> tuple[TLSConnection, dict[str, str]]:
        conn = TLSConnection(self, sock)
        return conn, conn.environ

    def get_environ(self) -> dict[str, str]:
        """The connection's own keys; Cheroot merges them over the request's (last).

        ``wsgi.url_scheme`` is pinned here: Cheroot takes the scheme from an
        absolute-form request target (``OPTIONS http://x/ HTTP/1.1`` made it ``http``,
        ``evil://x/`` made it ``evil``, next to ``HTTPS=on``), and SPEC section 5 says
        ``https`` always. Cheroot's ``Gateway_10.get_environ`` applies ``ssl_env``
        after every other key, request headers included (those only ever become
        ``HTTP_*``), so nothing a client writes can change a key set here.
        """
        return {
            "HTTPS": "on",
            "wsgi.url_scheme": "https",
            "SSL_VERSION_INTERFACE": INTERFACE_VERSION,
            "SSL_VERSION_LIBRARY": self.library_version(),
        }

    def makefile(self, sock: TLSConnection, mode: str = "r", bufsize: int = -1):
        return MakeFile(sock, mode, bufsize if bufsize > 0 else 8192)


def _why(exc: Exception) -> str:
    """The reason in an ssl.SSLError, a pyOpenSSL error queue or any other error, one line."""
    parts: list[str] = []
    for arg in exc.args:
        if isinstance(arg, str):
            parts.append(arg)
        elif isinstance(arg, list):  # pyOpenSSL: [(lib, func, reason), ...]
            parts += [str(entry[-1]) for entry in arg if entry]
    text = "; ".join(p for p in parts if p) or type(exc).__name__
    return " ".join(text.split())


def openssl_version_string(banner: str) -> str:
    """'OpenSSL 3.0.13 30 Jan 2024' -> 'OpenSSL/3.0.13'."""
    parts = banner.split()
    return f"{parts[0]}/{parts[1]}" if len(parts) >= 2 else banner
