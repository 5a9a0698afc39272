"""Run the reference server in-process: start once, know the real port, stop promptly."""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from cheroot import server as cheroot_server
from cheroot import wsgi
from cheroot.workers.threadpool import ThreadPool, WorkerThread

from .adapters import ClientCertAdapter
from .app import tls_environ_app
from .builtin import BuiltinClientCertAdapter
from .connection import TLSConnection
from .errors import ConfigError
from .gate import FIRST, IDLE, MAX_HEAD, Gate
from .perpath import PathPolicyApp
from .policy import check_timeout
from .pyopenssl import PyOpenSSLClientCertAdapter

log = logging.getLogger("mtls_matrix.reference")

DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_MAX_REQUEST_BODY = 1024 * 1024  # the reference app reads no body at all
MAX_REQUEST_BODY_LIMIT = 1024**3
_ACCEPT_BACKOFF = 0.05  # seconds between accept() attempts while file descriptors run out
_PROMPT_STOP_WAIT = 5.0  # seconds stop() waits for the woken selector loop (then Cheroot polls)

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


class _Waker:
    """A socket pair whose readable end wakes Cheroot's selector (``_Server.stop``)."""

    last_used = float("inf")  # Cheroot's idle-connection expiry never closes it

    def __init__(self) -> None:
        self.reader, self.writer = socket.socketpair()

    def close(self) -> None:  # Cheroot closes what is still registered when it stops
        self.reader.close()
        self.writer.close()


class OriginRequest(cheroot_server.HTTPRequest):
    """Cheroot's request, always as an origin server: ``proxy_mode`` off, ``strict_mode`` on.

    Cheroot reads both from ``HTTPConnection.RequestHandlerClass``, a class attribute
    every Cheroot server in a process shares, and CherryPy's ``CPWSGIServer.__init__``
    (CherryPy 18.10) sets it to a request class with ``proxy_mode=True``. After any
    CherryPy server was built in the process, every Cheroot server then accepts an
    absolute-form target on any method (``GET http://x/`` is served, not 400) and takes
    the path from it, so ``GET //secure/`` is read as host ``secure``, path ``/``, past a
    per-path policy on ``/secure/`` (RFC 9112 section 3.2: an origin server gets
    origin-form; absolute-form is for proxies). Measured: the state grid's ``slashes``
    and ``absolute-get`` cases failed as ``security`` after tests/test_cherrypy.py ran
    in the same process.
    """

    def __init__(self, server: Any, conn: Any, proxy_mode: bool = False, strict_mode: bool = True):
        super().__init__(server, conn, proxy_mode=False, strict_mode=True)


class _Connection(cheroot_server.HTTPConnection):
    """Cheroot's connection with its request class pinned (``OriginRequest``), on the
    instance: a class attribute can be reassigned by any code in the process (a server
    class deriving from ours and CherryPy's does exactly that)."""

    RequestHandlerClass = OriginRequest

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.RequestHandlerClass = OriginRequest


class _Server(wsgi.Server):
    """Cheroot's WSGI server with the gate in front of its worker pool (gate.py)."""

    gate: Gate | None = None
    ConnectionClass = _Connection

    _fd_exhausted_at = 0.0

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
            # accept() failed for want of file descriptors (the connection stays in the
            # backlog): Cheroot would log a traceback and retry at once, in a busy loop.
            # One line a second at most, and a short back-off before the next accept().
            now = time.monotonic()
            if now - self._fd_exhausted_at >= 1.0:
                log.warning("cannot accept connections: %s; backing off", exc.strerror)
                self._fd_exhausted_at = now
            threading.Event().wait(_ACCEPT_BACKOFF)
            return
        log.log(level, "%s", msg, exc_info=traceback)

    def process_conn(self, conn: Any) -> None:
        """A new connection goes to the gate, not to a worker (called on Cheroot's
        selector thread, right after accept and wrap)."""
        if isinstance(conn, _Waker):  # stop()'s wake-up call, not a connection
            return
        tls = conn.socket
        if self.gate is not None and isinstance(tls, TLSConnection):
            if tls.peer[0] == "unknown" and conn.remote_addr:  # reset before wrap() asked
                tls.peer = (conn.remote_addr, conn.remote_port or 0)
            self.gate.submit(conn, tls, IDLE if tls.handshaken else FIRST)
            return
        super().process_conn(conn)

    def hand_off(self, conn: Any) -> None:
        """The gate's way to the worker queue, once a whole request head is buffered."""
        if self.ready:
            super().process_conn(conn)
        else:
            conn.socket.close_now()

    def put_conn(self, conn: Any) -> None:
        """A kept-alive connection waits for its next request in the gate, too.

        Bytes Cheroot's reader already buffered (a pipelined request) move back
        into the connection's own buffer, in front of anything read later.
        """
        tls = conn.socket
        if self.gate is None or not isinstance(tls, TLSConnection) or not self.ready:
            super().put_conn(conn)
            return
        rfile = conn.rfile
        if rfile.has_data():
            ahead = rfile.peek(0)  # only what is buffered: has_data() means no socket read
            tls.inbuf[:0] = rfile.read(len(ahead))
        tls.body_deadline = None
        self.gate.submit(conn, tls, IDLE)

    @property
    def can_add_keepalive_connection(self) -> bool:
        if self.gate is None:
            return super().can_add_keepalive_connection
        limit = self.keep_alive_conn_limit
        return self.ready and (limit is None or self.gate.census()[IDLE] < limit)

    serving_thread: threading.Thread | None = None  # the thread in serve() (ReferenceServer)

    def stop(self) -> None:
        waker = self._prompt_stop()
        try:
            if self.gate is not None:
                self.gate.stop()
            super().stop()
        finally:
            if waker is not None:
                waker.close()

    def _prompt_stop(self) -> _Waker | None:
        """Make Cheroot's selector loop end as soon as its ``stop()`` asks, without a poll.

        Cheroot's ``ConnectionManager.stop()`` sets ``_stop_requested`` and then polls
        (a 10 ms sleep at a time) until the selector loop has seen it, which it does only
        when its ``select()`` returns: after ``expiration_interval`` on an idle server.
        Here, for this one stop, that ``stop()`` is replaced on the instance by one that
        sets the flag, writes a byte to a socket pair registered in the selector (so the
        ``select()`` returns at once; ``process_conn`` drops the marker) and waits for
        the serving thread to end, then runs Cheroot's own (which finds the loop over).

        The flag is set only from there, after Cheroot's ``stop()`` has cleared
        ``ready``: set earlier, ``serve()``'s ``while self.ready`` loop re-enters the
        finished selector loop at once, a spin that held the GIL for a switch interval
        (5 ms) against every thread the stop waits for. Measured (50 stops of an idle
        server, CPython 3.11, median): 13.7 ms a stop before, 1.9 ms after.
        Without the attributes (another Cheroot) the stop is Cheroot's, unchanged.
        """
        connections = getattr(self, "_connections", None)
        selector = getattr(connections, "_selector", None)
        plain_stop = getattr(connections, "stop", None)
        if (
            not self.ready
            or selector is None
            or plain_stop is None
            or not hasattr(connections, "_stop_requested")
        ):
            return None
        waker = _Waker()
        try:
            selector.register(waker.reader, selectors.EVENT_READ, waker)
        except (OSError, ValueError, KeyError):  # the selector closed meanwhile
            waker.close()
            return None

        def stop_now() -> None:
            connections._stop_requested = True
            with contextlib.suppress(OSError):
                waker.writer.send(b"\0")
            thread = self.serving_thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(_PROMPT_STOP_WAIT)
            plain_stop()

        connections.stop = stop_now
        return waker


def listen_backlog() -> int:
    """The system's largest accept queue: Linux's net.core.somaxconn, else socket.SOMAXCONN.

    listen() silently caps a larger value at somaxconn, so asking for it is
    asking for the maximum; Cheroot's default (5) makes connects wait for a SYN
    retry (1 s) when a few arrive at once.
    """
    try:
        with open("/proc/sys/net/core/somaxconn", "rb") as fh:
            value = int(fh.read(32).strip())
    except (OSError, ValueError):
        return socket.SOMAXCONN
    return value if value > 0 else socket.SOMAXCONN


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
    """A Cheroot WSGI server with one of our adapters, serving on a background thread.

    Hostile clients (SPEC section 7) are held off the ``numthreads`` workers by
    the gate (gate.py): a connection reaches a worker only with a whole request
    head, which must arrive within ``request_timeout`` seconds of the handshake
    and be at most 64 KiB (else 408 or 431); its body must then arrive within
    another ``request_timeout`` and be at most ``max_request_body`` bytes (else
    413, before any of it is read). At most ``max_waiting`` connections wait in
    the gate (default: half the file-descriptor limit); beyond, the oldest one
    without a finished handshake is dropped. ``timeout`` is Cheroot's: per socket
    operation on a worker, and how long a kept-alive connection may stay idle.
    Raises ConfigError for values that cannot work.
    """

    def __init__(
        self,
        adapter: ClientCertAdapter,
        bind: tuple[str, int] = ("127.0.0.1", 0),
        app: Callable[..., Any] = tls_environ_app,
        *,
        numthreads: int = 8,
        timeout: float = 10.0,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_request_body: int = DEFAULT_MAX_REQUEST_BODY,
        max_waiting: int | None = None,
    ) -> None:
        check_timeout("request_timeout", request_timeout)
        check_timeout("timeout", timeout)
        if (
            isinstance(max_request_body, bool)
            or not isinstance(max_request_body, int)
            or not 1 <= max_request_body <= MAX_REQUEST_BODY_LIMIT
        ):
            raise ConfigError(
                f"max_request_body must be a number of bytes in [1, {MAX_REQUEST_BODY_LIMIT}], "
                f"not {max_request_body!r}"
            )
        if max_waiting is not None and (
            isinstance(max_waiting, bool) or not isinstance(max_waiting, int) or max_waiting < 1
        ):
            raise ConfigError(f"max_waiting must be a positive number, not {max_waiting!r}")
        self.adapter = adapter
        self._adapters = [adapter]  # closed at stop (ClientCertAdapter.close)
        self.requested_bind = bind
        if adapter.settings.path_policies:  # SPEC section 9: asked for by path
            app = PathPolicyApp(app, adapter)
        self._server = _Server(bind, app, numthreads=numthreads, timeout=timeout)
        self._server.ssl_adapter = adapter
        self._server.requests = _PromptThreadPool(self._server, min=numthreads, max=numthreads)
        self._server.expiration_interval = 0.1  # also bounds how long stop() waits
        self._server.request_queue_size = listen_backlog()
        self._server.max_request_header_size = MAX_HEAD
        self._server.max_request_body_size = max_request_body
        self.gate = Gate(
            self._server.hand_off,
            request_timeout=float(request_timeout),
            keepalive_timeout=float(timeout),
            max_body=max_request_body,
            max_waiting=max_waiting,
        )
        self._thread: threading.Thread | None = None

    @property
    def workers(self) -> ThreadPool:
        """Cheroot's worker pool (``idle``: workers with no connection)."""
        return self._server.requests

    def start(self) -> ReferenceServer:
        """Bind, listen and start serving; once this returns, connections are accepted."""
        try:
            self._server.prepare()
        except OSError as exc:
            host, port = self.requested_bind
            raise StartError(f"cannot listen on {host}:{port}: {exc}") from None
        self.gate.start()
        self._server.gate = self.gate
        self._thread = threading.Thread(
            target=self._server.serve, name=f"reference-server-{self.port}", daemon=True
        )
        self._server.serving_thread = self._thread
        self._thread.start()
        return self

    def replace_adapter(self, adapter: ClientCertAdapter) -> None:
        """Reload (SPEC section 9): connections accepted from now on use ``adapter``;
        those already open keep theirs. A new adapter has new contexts, so no session
        cache or ticket key of the old one comes along: no session resumes across it."""
        self.adapter = adapter
        self._adapters.append(adapter)
        self._server.ssl_adapter = adapter

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
        if self._server.gate is None:  # never started: the gate holds only its own sockets
            self.gate.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for adapter in self._adapters:  # a large CA file's directory (capath.py)
            adapter.close()

    def __enter__(self) -> ReferenceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
