"""Cheroot with its own SSL adapters, client verification configured the way users do today.

    python -m harness.apps.cheroot_server --adapter builtin|pyopenssl --cert F --key F \
        [--client-ca F] --client-check ignore|optional|required --bind HOST

Cheroot's adapters take no client CA or verification policy, so users reach
into the adapter's context after constructing it (CherryPy's docs and issues
show this pattern):

- ``BuiltinSSLAdapter``: ``adapter.context.verify_mode = ssl.CERT_OPTIONAL`` or
  ``CERT_REQUIRED`` and ``adapter.context.load_verify_locations(client_ca)``;
- ``pyOpenSSLAdapter``: ``adapter.context = adapter.get_context()``, then
  ``context.set_verify(VERIFY_PEER [| VERIFY_FAIL_IF_NO_PEER_CERT])`` and
  ``context.load_verify_locations(client_ca)``.

``ignore`` leaves the adapter as Cheroot makes it (no certificate requested).
Prints ``listening on https://HOST:PORT`` once the socket listens (port 0 picks
a free one), then serves ``harness.apps.wsgi:app`` until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import ssl
import sys

from cheroot import wsgi

from harness.apps.wsgi import app


def make_adapter(
    name: str, cert: str, key: str, client_ca: str | None, check: str, chain: str | None = None
):
    if name == "builtin":
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        adapter = BuiltinSSLAdapter(cert, key, chain)
        if check != "ignore":
            adapter.context.verify_mode = (
                ssl.CERT_REQUIRED if check == "required" else ssl.CERT_OPTIONAL
            )
            if client_ca is not None:
                adapter.context.load_verify_locations(client_ca)
        return adapter
    if name == "pyopenssl":
        from cheroot.ssl.pyopenssl import pyOpenSSLAdapter
        from OpenSSL import SSL

        adapter = pyOpenSSLAdapter(cert, key, chain)
        adapter.context = adapter.get_context()
        if check != "ignore":
            mode = SSL.VERIFY_PEER
            if check == "required":
                mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
            adapter.context.set_verify(mode)
            if client_ca is not None:
                adapter.context.load_verify_locations(client_ca)
        return adapter
    raise SystemExit(f"cheroot_server: unknown adapter {name!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.apps.cheroot_server")
    parser.add_argument("--adapter", required=True, choices=("builtin", "pyopenssl"))
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca")
    parser.add_argument("--client-check", default="ignore")
    parser.add_argument("--chain", help="Cheroot's certificate_chain argument")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--threads", type=int, default=10)
    options = parser.parse_args(argv)

    server = wsgi.Server((options.bind, options.port), app, numthreads=options.threads)
    server.ssl_adapter = make_adapter(
        options.adapter,
        options.cert,
        options.key,
        options.client_ca,
        options.client_check,
        options.chain,
    )

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        server.prepare()
        host, port = server.bind_addr[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"listening on https://{shown}:{port}", flush=True)
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
