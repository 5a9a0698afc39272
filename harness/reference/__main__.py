"""``python -m harness.reference``: the reference server on the command line."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .errors import ConfigError
from .policy import CLIENT_CHECKS, DEFAULT_HANDSHAKE_TIMEOUT
from .server import ADAPTERS, ReferenceServer, StartError, make_adapter, parse_bind


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.reference",
        description="Serve HTTPS with client-certificate verification; the app returns the "
        "request's TLS environ as JSON.",
    )
    parser.add_argument("--adapter", required=True, choices=list(ADAPTERS))
    parser.add_argument("--cert", required=True, help="server certificate (PEM)")
    parser.add_argument("--key", required=True, help="server private key (PEM)")
    parser.add_argument("--chain", help="intermediates to send after the certificate (PEM)")
    parser.add_argument("--client-ca", help="CA file client certificates must chain to (PEM)")
    parser.add_argument("--client-check", required=True, choices=CLIENT_CHECKS)
    parser.add_argument(
        "--check-host", action="store_true", help="client certificate must name the peer address"
    )
    parser.add_argument(
        "--bind", required=True, help="HOST:PORT or [IPv6]:PORT; port 0 picks a free port"
    )
    parser.add_argument(
        "--handshake-timeout", type=float, default=DEFAULT_HANDSHAKE_TIMEOUT, metavar="SECONDS"
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
            client_check=args.client_check,
            client_check_host=args.check_host,
            handshake_timeout=args.handshake_timeout,
        )
        server = ReferenceServer(adapter, bind).start()
    except (ConfigError, StartError) as exc:
        print(f"harness.reference: error: {exc}", file=sys.stderr)
        return 2

    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(f"listening on {server.url}", flush=True)
    stopping.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
