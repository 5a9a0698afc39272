"""gunicorn (sync worker) with its own TLS options.

    pytest matrix --target harness.targets.gunicorn:target

    python -m gunicorn --bind HOST:0 --worker-class sync --workers 1
        --certfile SERVER.pem --keyfile SERVER.key [--ca-certs CA.pem] --cert-reqs 0|1|2
        --no-control-socket --graceful-timeout 2 harness.apps.wsgi:app

``--cert-reqs`` is ``ssl.CERT_NONE``/``CERT_OPTIONAL``/``CERT_REQUIRED`` for
ignore/optional/required; ``--ca-certs`` is given for optional and required.
The sync worker is gunicorn's default; it wraps each accepted socket with the
stdlib ``ssl`` module (the handshake runs on the first read, in the worker).
gunicorn puts nothing about TLS in the environ beyond ``wsgi.url_scheme``.
It has no chain file option and nothing that turns on CRL checking (its
context never sets ``VERIFY_CRL_CHECK_*``; a CRL inside ``--ca-certs`` is
loaded and ignored): those configurations are unsupported.

``gthread_target`` is the same server with the threaded worker
(``--worker-class gthread --threads 4``): one worker process whose main thread
accepts and whose pool of 4 threads runs each connection, the TLS handshake
included (gunicorn 27, ``workers/gthread.py``: ``TConn.init`` wraps the socket
on a pool thread). It is its own target, ``gunicorn-gthread``.
"""

from __future__ import annotations

from typing import ClassVar

from harness.target import ServerSpec

from .base import STDLIB_CERT_REQS, ProcessTarget, checked, host_port


class GunicornTarget(ProcessTarget):
    name = "gunicorn"
    package = "gunicorn"
    module = "gunicorn"
    provided: ClassVar[dict[str, tuple[str, ...]]] = {"builtin": ("wsgi.url_scheme",)}
    # "Listening at: http://[::1]:PORT": gunicorn names an IPv6 socket http:// even with TLS
    port_from = r"Listening at:\s*https?://\S+:(?P<port>\d+)"
    ready = r"Booting worker with pid"
    crl_unsupported = (
        "has no option to check a CRL (no verify flags; a CRL in --ca-certs is never checked)"
    )
    restart_pattern = r"Booting worker with pid"  # the arbiter's line for every (re)started worker
    worker_class = "sync"
    threads = 1
    workers = 1  # requests served at once: one sync worker process

    def command(self, spec: ServerSpec) -> tuple[list[str], int | None]:
        args = [
            "--bind", host_port(spec.bind, 0),
            "--worker-class", self.worker_class,
            "--workers", "1",
            "--threads", str(self.threads),
            "--certfile", str(spec.certificate),
            "--keyfile", str(spec.private_key),
            "--cert-reqs", str(STDLIB_CERT_REQS[spec.client_check]),
            "--graceful-timeout", "2",
            "--log-level", "info",
        ]  # fmt: skip
        if self.release() >= (25, 1):  # 25.1 added a control socket (in $HOME) by default
            args.append("--no-control-socket")
        if spec.client_check != "ignore" and spec.client_ca is not None:
            args += ["--ca-certs", str(spec.client_ca)]
        return [*args, "harness.apps.wsgi:app"], None


class GunicornThreadTarget(GunicornTarget):
    name = "gunicorn-gthread"
    worker_class = "gthread"
    threads = 4
    workers = 4  # requests served at once: 4 threads in one worker process


def target() -> GunicornTarget:
    return checked(GunicornTarget())


def gthread_target() -> GunicornThreadTarget:
    return checked(GunicornThreadTarget())
