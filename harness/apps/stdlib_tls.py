"""What the stdlib-``ssl`` servers' launchers share: the options, the context, the JSON keys.

Tornado, aiohttp and Sanic take a ready ``ssl.SSLContext`` from their users; each
one's documentation builds it the same way, so one builder serves the three:

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    context.load_verify_locations(cafile)
    context.verify_mode = ssl.CERT_REQUIRED  # or CERT_OPTIONAL

(tornado ``HTTPServerRequest.get_ssl_certificate``'s docstring, aiohttp's
"web_advanced" SSL section, Sanic's "TLS/SSL/HTTPS" guide). ``ignore`` leaves the
mode at ``CERT_NONE`` and loads no CA. A CRL is loaded into the same context
with ``VERIFY_CRL_CHECK_LEAF``, as a user of the ``ssl`` module does it.

``tls_keys`` turns what such a server hands its application (the URL scheme and the
connection's ``ssl.SSLSocket`` or ``ssl.SSLObject``) into the JSON the matrix reads;
nothing is invented: ``SSL_CLIENT_VERIFY`` is ``SUCCESS`` exactly when the object
holds a peer certificate, which under ``CERT_OPTIONAL``/``CERT_REQUIRED`` only a
verified one can be (an unverified one fails the handshake; ``ssl`` docs,
``SSLSocket.getpeercert``), and ``NONE`` otherwise.
"""

from __future__ import annotations

import argparse
import json
import ssl
from typing import Any

VERIFY_MODES = {"optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def parser(prog: str) -> argparse.ArgumentParser:
    """The launchers' options (``harness.targets.base.app_arguments`` writes them)."""
    out = argparse.ArgumentParser(prog=prog)
    out.add_argument("--cert", required=True)
    out.add_argument("--key", required=True)
    out.add_argument("--client-ca")
    out.add_argument("--client-check", default="ignore", choices=("ignore", *VERIFY_MODES))
    out.add_argument("--crl", help="PEM CRL of the client CA, checked for the leaf")
    out.add_argument("--bind", default="127.0.0.1")
    out.add_argument("--port", type=int, default=0)
    return out


def make_context(options: argparse.Namespace) -> ssl.SSLContext:
    """The context each of these servers' documentation tells its users to build."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(options.cert, options.key)
    if options.client_check != "ignore":
        if options.client_ca is not None:
            context.load_verify_locations(options.client_ca)
        if options.crl is not None:
            context.load_verify_locations(options.crl)
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        context.verify_mode = VERIFY_MODES[options.client_check]
    return context


def tls_keys(
    scheme: str, tls: ssl.SSLSocket | ssl.SSLObject | None, remote: str | None = None
) -> dict[str, str]:
    """HTTPS, wsgi.url_scheme, REMOTE_ADDR and the SSL_* keys this connection's TLS object
    supports. ``scheme`` and ``remote`` are what the framework tells its application (its
    request's scheme and client address: where it trusts forwarded headers, what they
    said; SPEC section 9)."""
    shown = {"wsgi.url_scheme": scheme}
    if remote:
        shown["REMOTE_ADDR"] = remote
    if scheme == "https":
        shown["HTTPS"] = "on"
    if tls is None:
        return shown
    version, cipher = tls.version(), tls.cipher()
    if version:
        shown["SSL_PROTOCOL"] = version
    if cipher:
        shown["SSL_CIPHER"] = cipher[0]
    der = tls.getpeercert(binary_form=True)
    shown["SSL_CLIENT_VERIFY"] = "SUCCESS" if der else "NONE"
    if der:
        shown["SSL_CLIENT_CERT"] = ssl.DER_cert_to_PEM_cert(der)
    return shown


def body(keys: dict[str, Any]) -> bytes:
    return json.dumps(keys, sort_keys=True, indent=1).encode()


def listening_line(host: str, port: int) -> str:
    """The line the targets wait for: ``listening on https://HOST:PORT``."""
    shown = f"[{host}]" if ":" in host else host
    return f"listening on https://{shown}:{port}"
