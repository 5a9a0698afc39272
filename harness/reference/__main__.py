"""``python -m harness.reference``: the reference server on the command line."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from harness.usage import OneLineParser

from .errors import ConfigError
from .policy import CLIENT_CHECKS, DEFAULT_HANDSHAKE_TIMEOUT, TLS_VERSIONS
from .server import (
    ADAPTERS,
    DEFAULT_MAX_REQUEST_BODY,
    DEFAULT_REQUEST_TIMEOUT,
    ReferenceServer,
    StartError,
    make_adapter,
    parse_bind,
)

PROG = "harness.reference"


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """``prog``: the command's name in usage and error lines (default: the module's)."""
    name = prog or PROG
    parser = OneLineParser(
        prog=prog or "python -m harness.reference",
        description="Serve HTTPS with client-certificate verification; the app returns the "
        "request's TLS environ as JSON.",
    )
    parser.name = name
    parser.add_argument("--adapter", required=True, choices=list(ADAPTERS))
    parser.add_argument("--cert", required=True, help="server certificate (PEM)")
    parser.add_argument("--key", required=True, help="server private key (PEM)")
    parser.add_argument("--chain", help="intermediates to send after the certificate (PEM)")
    parser.add_argument("--client-ca", help="CA file client certificates must chain to (PEM)")
    parser.add_argument("--client-crl", help="CRL(s) of the client CA, checked for the leaf (PEM)")
    parser.add_argument("--client-check", required=True, choices=CLIENT_CHECKS)
    parser.add_argument(
        "--check-host", action="store_true", help="client certificate must name the peer address"
    )
    parser.add_argument(
        "--bind", required=True, help="HOST:PORT or [IPv6]:PORT; port 0 picks a free port"
    )
    parser.add_argument(
        "--require-path",
        action="append",
        default=[],
        metavar="PREFIX",
        help="paths under PREFIX are served only to a client verified after the handshake "
        "(TLS 1.3 post-handshake authentication on builtin, TLS 1.2 renegotiation on "
        "pyopenssl); repeatable",
    )
    parser.add_argument("--tls-version", choices=TLS_VERSIONS, help="offer only this version")
    parser.add_argument(
        "--handshake-timeout",
        type=float,
        default=DEFAULT_HANDSHAKE_TIMEOUT,
        metavar="SECONDS",
        help="a client that has not sent its first bytes, or not finished the handshake, "
        f"within this time is dropped (default {DEFAULT_HANDSHAKE_TIMEOUT:g})",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULT_REQUEST_TIMEOUT,
        metavar="SECONDS",
        help="after the handshake, the whole request head must arrive within this time "
        "(else 408), and then its body within as long again "
        f"(default {DEFAULT_REQUEST_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-request-body",
        type=int,
        default=DEFAULT_MAX_REQUEST_BODY,
        metavar="BYTES",
        help="a larger Content-Length is answered 413 before the body is read "
        f"(default {DEFAULT_MAX_REQUEST_BODY})",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        bind = parse_bind(args.bind)
        adapter = make_adapter(
            args.adapter,
            certificate=args.cert,
            private_key=args.key,
            certificate_chain=args.chain,
            client_CA=args.client_ca,
            client_CRL=args.client_crl,
            client_check=args.client_check,
            client_check_host=args.check_host,
            handshake_timeout=args.handshake_timeout,
            path_policies=tuple((prefix, "required") for prefix in args.require_path),
            tls_version=args.tls_version,
        )
        server = ReferenceServer(
            adapter,
            bind,
            request_timeout=args.request_timeout,
            max_request_body=args.max_request_body,
        )
    except ConfigError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2

    # Handlers go in before the server starts: a signal that arrives while it
    # starts must still end in a clean stop, not a KeyboardInterrupt traceback.
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        server.start()
    except StartError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    print(f"listening on {server.url}", flush=True)
    stopping.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
