"""Twisted's web server over its own TLS (pyOpenSSL), client verification from CertificateOptions.

    python -m harness.apps.twisted_server --cert F --key F [--client-ca F] \
        --client-check ignore|optional|required [--chain F] --bind HOST [--port 0] [--sni]

``reactor.listenSSL(port, Site(resource), options, interface=host)`` with
``options = twisted.internet.ssl.CertificateOptions(privateKey, certificate,
extraCertChain=[...], verify=True, caCerts=[CA], requireCertificate=...)``: what
``PrivateCertificate.options(authority)`` builds in Twisted's "Using SSL in Twisted"
client-authentication example (``requireCertificate=False`` is ``optional``;
``ignore`` is ``verify=False``, Twisted's default).

``--sni`` uses Twisted's own server-name indication instead
(``CertificateOptions(contextForServerName=callback)``, Twisted 26): the listening
options carry no certificate and no verification and only dispatch, and the callback
returns, for every name (none included), the context of the options above (or, for a
name given with ``--sni-host NAME CHECK CA``, that virtual host's own options);
Twisted then calls ``connection.set_context(context)`` (``_sslverify.py``), which
switches certificate and trust store but not the verify mode, which the connection
took from the listening context (OpenSSL ``SSL_set_SSL_CTX``; pyca/pyopenssl#255,
glyph/txsni#2). That loss is what this configuration measures.

The resource answers any path with ``request.isSecure()``, ``request.getClientAddress()``
(the peer) and what the TLS transport
gives (``ISSLTransport.getPeerCertificate()``; ``getHandle()``, the
``OpenSSL.SSL.Connection``, for the protocol and cipher names). Prints ``listening
on https://HOST:PORT`` once the port listens; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json

from OpenSSL import crypto
from twisted.internet import reactor, ssl
from twisted.internet.interfaces import ISSLTransport
from twisted.web.resource import Resource
from twisted.web.server import Site

from harness.apps.stdlib_tls import listening_line


def tls_transport(request):
    """The request's ``ISSLTransport``: the channel's transport over HTTP/1.1, one level
    further over HTTP/2 (an ``H2Stream``'s transport is its ``H2Connection``)."""
    layer = request.channel
    for _ in range(4):
        layer = getattr(layer, "transport", None)
        if layer is None or ISSLTransport.providedBy(layer):
            return layer
    return None


class TLSResource(Resource):
    isLeaf = True

    def render(self, request) -> bytes:
        secure = request.isSecure()
        keys = {"wsgi.url_scheme": "https" if secure else "http"}
        peer = request.getClientAddress()
        if getattr(peer, "host", None):
            keys["REMOTE_ADDR"] = peer.host
        transport = tls_transport(request) if secure else None
        if secure:
            keys["HTTPS"] = "on"
        if transport is not None:
            handle = transport.getHandle()
            version, cipher = handle.get_protocol_version_name(), handle.get_cipher_name()
            if version:
                keys["SSL_PROTOCOL"] = version
            if cipher:
                keys["SSL_CIPHER"] = cipher
            certificate = transport.getPeerCertificate()
            keys["SSL_CLIENT_VERIFY"] = "SUCCESS" if certificate is not None else "NONE"
            if certificate is not None:
                pem = crypto.dump_certificate(crypto.FILETYPE_PEM, certificate)
                keys["SSL_CLIENT_CERT"] = pem.decode()
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"connection", b"close")
        return json.dumps(keys, sort_keys=True, indent=1).encode()


def pem_certificates(path: str) -> list[crypto.X509]:
    """Every certificate of a PEM file (``Certificate.loadPEM`` reads the first only)."""
    end = b"-----END CERTIFICATE-----"
    with open(path, "rb") as f:
        blocks = f.read().split(end)[:-1]
    return [ssl.Certificate.loadPEM(block + end + b"\n").original for block in blocks]


def certificate_options(
    options: argparse.Namespace, client_check: str | None = None, client_ca: str | None = None
) -> ssl.CertificateOptions:
    """The options for the command line's policy, or for ``client_check``/``client_ca``
    (an ``--sni-host``'s)."""
    if client_check is None:
        client_check, client_ca = options.client_check, options.client_ca
    with open(options.cert, "rb") as f:
        certificate = ssl.Certificate.loadPEM(f.read())
    with open(options.key, "rb") as f:
        key = ssl.KeyPair.load(f.read(), crypto.FILETYPE_PEM)
    chain = pem_certificates(options.chain) if options.chain is not None else []
    verify = client_check != "ignore"  # no --client-ca: an empty trust store
    authorities = []
    if verify and client_ca is not None:
        authorities = pem_certificates(client_ca)
    return ssl.CertificateOptions(
        privateKey=key.original,
        certificate=certificate.original,
        extraCertChain=chain,
        verify=verify,
        caCerts=authorities,
        requireCertificate=client_check == "required",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.apps.twisted_server")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca")
    parser.add_argument(
        "--client-check", default="ignore", choices=("ignore", "optional", "required")
    )
    parser.add_argument("--chain", help="intermediates sent after the certificate")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--sni", action="store_true", help="Twisted's contextForServerName")
    parser.add_argument(
        "--sni-host",
        action="append",
        nargs=3,
        default=[],
        metavar=("NAME", "CHECK", "CA"),
        help="with --sni: a virtual host's own policy and client CA file ('-': none)",
    )
    options = parser.parse_args(argv)
    tls = certificate_options(options)
    if options.sni:
        default = tls.getContext()
        named = {
            name.lower(): certificate_options(options, check, None if ca == "-" else ca)
            for name, check, ca in options.sni_host
        }
        contexts = {name: o.getContext() for name, o in named.items()}

        def context_for(name: bytes | str | None):
            if isinstance(name, bytes):
                name = name.decode("ascii", "replace")
            return contexts.get((name or "").lower(), default)

        tls = ssl.CertificateOptions(contextForServerName=context_for)
    port = reactor.listenSSL(options.port, Site(TLSResource()), tls, interface=options.bind)
    reactor.callWhenRunning(
        lambda: print(listening_line(options.bind, port.getHost().port), flush=True)
    )
    reactor.run()  # installs its SIGTERM/SIGINT handlers: a clean stop


if __name__ == "__main__":
    main()
