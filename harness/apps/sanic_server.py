"""Sanic with client verification on the context given as ``ssl``: one context, or a list.

    python -m harness.apps.sanic_server --cert F --key F [--client-ca F] \
        --client-check ignore|optional|required [--crl F] --bind HOST --port N \
        [--context-list]

``app.run(host, port, ssl=context)`` with the context built as Sanic's TLS guide and
``harness.apps.stdlib_tls`` say (``ssl.create_default_context(Purpose.CLIENT_AUTH)``,
the client CA, ``verify_mode``). ``--context-list`` is Sanic's other documented form,
a list (``ssl=[context, ...]``), which Sanic turns into its ``CertSelector``, an SNI
callback that switches each connection to the matching context (sanic
``http/tls/context.py``). The list's context is Sanic's own ``CertSimple(cert, key)``
(what the list's dict form builds; a plain ``SSLContext`` carries no names and the
selector refuses it), with the same client CA and ``verify_mode`` set on it.

The handler answers any path with ``request.scheme``, ``request.ip`` (the peer) and
the transport's ``ssl_object`` (``request.transport.get_extra_info("ssl_object")``;
Sanic's ``conn_info.cert`` is the *server's* certificate entry, not the client's).
An ``after_server_start`` listener prints ``listening on https://HOST:PORT`` once the
server listens. Sanic runs with ``single_process=True``: its default worker manager
cannot take a context at all (it pickles ``run()``'s arguments for the worker:
``TypeError: cannot pickle 'SSLContext' object``, measured on sanic 25.12.1).
"""

from __future__ import annotations

import sys

from sanic import Sanic
from sanic.response import raw

from harness.apps.stdlib_tls import body, listening_line, make_context, parser, tls_keys


def build(options) -> Sanic:
    app = Sanic("mtls_matrix")
    app.config.ACCESS_LOG = False

    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "HEAD"], name="any")
    @app.route("/", methods=["GET", "POST", "PUT", "HEAD"], name="root")
    async def answer(request, path=""):
        tls = request.transport.get_extra_info("ssl_object")
        keys = tls_keys(request.scheme, tls, request.remote_addr or request.ip)
        return raw(body(keys), content_type="application/json")

    @app.after_server_start
    async def ready(app):
        print(listening_line(options.bind, options.port), flush=True)

    return app


def context_list(options) -> list:
    from sanic.http.tls.context import CertSimple

    context = CertSimple(options.cert, options.key)
    if options.client_check != "ignore":
        from harness.apps.stdlib_tls import VERIFY_MODES

        if options.client_ca is not None:
            context.load_verify_locations(options.client_ca)
        if options.crl is not None:
            import ssl

            context.load_verify_locations(options.crl)
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        context.verify_mode = VERIFY_MODES[options.client_check]
    return [context]


def main(argv: list[str] | None = None) -> None:
    arguments = parser("python -m harness.apps.sanic_server")
    arguments.add_argument("--context-list", action="store_true")
    options = arguments.parse_args(argv)
    app = build(options)
    ssl_argument = context_list(options) if options.context_list else make_context(options)
    # single_process: Sanic's default worker manager pickles run()'s arguments for its
    # worker, and an SSLContext cannot be pickled (TypeError, measured on sanic 25.12.1)
    app.run(host=options.bind, port=options.port, ssl=ssl_argument, single_process=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
