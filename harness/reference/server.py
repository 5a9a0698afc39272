"""Run the reference server in-process: start once, know the real port, stop promptly."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from cheroot import wsgi
from cheroot.workers.threadpool import ThreadPool, WorkerThread

from .adapters import ClientCertAdapter
from .app import tls_environ_app
from .builtin import BuiltinClientCertAdapter
from .connection import TLSConnection
from .errors import ConfigError
from .pyopenssl import PyOpenSSLClientCertAdapter

log = logging.getLogger("mtls_matrix.reference")

ADAPTERS: dict[str, type[ClientCertAdapter]] = {
    "builtin": BuiltinClientCertAdapter,
    "pyopenssl": PyOpenSSLClientCertAdapter,
}


class StartError(RuntimeError):
    """The server could not bind or start; the message says where and why."""


def make_adapter(name: str, **settings: Any) -> ClientCertAdapter:
    try:
        cls = ADAPTERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown adapter {name!r} (choose from: {', '.join(ADAPTERS)})"
        ) from None
    return cls(**settings)


_CHERRYPY_KEYS = {
    "server.ssl_certificate": "certificate",
    "server.ssl_private_key": "private_key",
    "server.ssl_certificate_chain": "certificate_chain",
    "server.ssl_ciphers": "ciphers",
    "server.ssl_client_CA": "client_CA",
    "server.ssl_client_CRL": "client_CRL",
    "server.ssl_client_check": "client_check",
    "server.ssl_client_check_host": "client_check_host",
}
_OTHER_SSL_KEYS = ("server.ssl_module", "server.ssl_handshake_timeout")


def adapter_from_config(config: Mapping[str, Any]) -> ClientCertAdapter:
    """Build an adapter from CherryPy-style keys (``server.ssl_module`` and friends).

    Other ``server.*`` keys are left alone, but an unknown ``server.ssl_*`` key is
    an error: a misspelt ``server.ssl_client_check_host`` must not silently turn
    the host check off.
    """
    unknown = sorted(
        key
        for key in config
        if str(key).startswith("server.ssl_")
        and config[key] is not None
        and key not in _CHERRYPY_KEYS
        and key not in _OTHER_SSL_KEYS
    )
    if unknown:
        known = ", ".join([*_CHERRYPY_KEYS, *_OTHER_SSL_KEYS])
        raise ConfigError(f"unknown configuration key {unknown[0]!r} (known: {known})")
    settings: dict[str, Any] = {}
    for key, name in _CHERRYPY_KEYS.items():
        if config.get(key) is not None:
            settings[name] = config[key]
    if "client_check_host" in settings:
        settings["client_check_host"] = _as_bool(settings["client_check_host"])
    if config.get("server.ssl_handshake_timeout") is not None:
        value = config["server.ssl_handshake_timeout"]
        try:
            settings["handshake_timeout"] = float(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"server.ssl_handshake_timeout must be a number of seconds, not {value!r}"
            ) from None
    for required in ("certificate", "private_key"):
        if required not in settings:
            raise ConfigError(f"server.ssl_{required} is required")
    return make_adapter(str(config.get("server.ssl_module") or "builtin"), **settings)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"server.ssl_client_check_host must be true or false, not {value!r}")


_BIND = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.%a-zA-Z]+)\]|(?P<host>[^\[\]:]+)):(?P<port>\d{1,5})$")


def parse_bind(text: str) -> tuple[str, int]:
    """'HOST:PORT' or '[V6]:PORT' -> (host, port); port 0 picks a free one."""
    match = _BIND.match(text.strip())
    port = int(match["port"]) if match else -1
    if not match or not 0 <= port <= 65535:
        raise ConfigError(
            f"malformed bind address {text!r} (expected HOST:PORT or [IPv6]:PORT, port 0-65535)"
        )
    return (match["v6"] or match["host"], port)


class _Server(wsgi.Server):
    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        log.log(level, "%s", msg, exc_info=traceback)

    def process_conn(self, conn: Any) -> None:
        """Give a connection to a worker only once its client has sent something.

        Cheroot queues every new connection for a worker at once, and the worker
        then waits for the ClientHello; a handful of clients that connect and send
        nothing would hold the whole pool. A fresh connection with no input waits
        in the selector instead (called on the selector thread, as is Cheroot's
        expiry), which hands it back when it is readable or drops it after the
        handshake timeout instead of Cheroot's longer idle timeout.
        """
        tls = conn.socket
        if isinstance(tls, TLSConnection):
            limit = min(tls.handshake_timeout, self.timeout)
            if tls.park(limit):
                self._connections.put(conn)
                conn.last_used -= self.timeout - limit  # due for expiry after ``limit``
                return
        super().process_conn(conn)


class _PromptThreadPool(ThreadPool):
    """Cheroot's pool polls every 0.1 s until each new worker reports ready.

    Nothing depends on that wait (connections queue until a worker takes
    them), and with a server started per configuration it would dominate a
    matrix run, so workers are started without it.
    """

    def grow(self, amount: int) -> None:
        budget = max(self.max - len(self._threads), 0)
        self._threads.extend(self._spawn_worker() for _ in range(min(amount, budget)))

    def _spawn_worker(self) -> Any:
        """Daemon workers: an in-process server must never keep its host process alive
        (a test run that dies before stopping it would otherwise hang at exit)."""
        worker = WorkerThread(self.server)
        worker.name = f"CP Server {worker.name!s}"
        worker.daemon = True
        worker.start()
        return worker


class ReferenceServer:
    """A Cheroot WSGI server with one of our adapters, serving on a background thread."""

    def __init__(
        self,
        adapter: ClientCertAdapter,
        bind: tuple[str, int] = ("127.0.0.1", 0),
        app: Callable[..., Any] = tls_environ_app,
        *,
        numthreads: int = 8,
        timeout: float = 10.0,
    ) -> None:
        self.adapter = adapter
        self.requested_bind = bind
        self._server = _Server(bind, app, numthreads=numthreads, timeout=timeout)
        self._server.ssl_adapter = adapter
        self._server.requests = _PromptThreadPool(self._server, min=numthreads, max=numthreads)
        self._server.expiration_interval = 0.1  # also bounds how long stop() waits
        self._thread: threading.Thread | None = None

    def start(self) -> ReferenceServer:
        """Bind, listen and start serving; once this returns, connections are accepted."""
        try:
            self._server.prepare()
        except OSError as exc:
            host, port = self.requested_bind
            raise StartError(f"cannot listen on {host}:{port}: {exc}") from None
        self._thread = threading.Thread(
            target=self._server.serve, name=f"reference-server-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    @property
    def host(self) -> str:
        return self.requested_bind[0]

    @property
    def port(self) -> int:
        return int(self._server.bind_addr[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def stop(self) -> None:
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ReferenceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
