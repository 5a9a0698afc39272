"""aiohttp's web server with the ``ssl_context`` its documentation shows.

    python -m harness.apps.aiohttp_server --cert F --key F [--client-ca F] \
        --client-check ignore|optional|required [--crl F] --bind HOST [--port 0] \
        [--as-reported-7466]

``web.AppRunner(app)`` and ``web.TCPSite(runner, host, port, ssl_context=context)``
(what ``web.run_app(app, ssl_context=...)`` runs, with the bound port readable),
``context`` built as aiohttp's "Advanced usage" SSL section and
``harness.apps.stdlib_tls`` say. The handler answers any path with the keys a
handler can see: ``request.scheme``, ``request.remote`` (the peer address) and the
transport's ``ssl_object``
(``request.transport.get_extra_info("ssl_object")``, asyncio's documented extra).

``--as-reported-7466`` builds the context as aio-libs/aiohttp#7466 does
(``ssl.SSLContext(PROTOCOL_TLS_SERVER)`` and ``load_cert_chain``, nothing else: the
client CA and the policy are not applied, ``verify_mode`` stays ``CERT_NONE``), to
replay that report.

Prints ``listening on https://HOST:PORT`` once the site listens, then serves until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import signal
import ssl

from aiohttp import web

from harness.apps.stdlib_tls import body, listening_line, make_context, parser, tls_keys


async def answer(request: web.Request) -> web.Response:
    transport = request.transport
    tls = transport.get_extra_info("ssl_object") if transport is not None else None
    keys = tls_keys(request.scheme, tls, request.remote)
    return web.Response(body=body(keys), content_type="application/json")


def report_7466_context(options) -> ssl.SSLContext:
    """aio-libs/aiohttp#7466's server context: a certificate and key, nothing else."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile=options.cert, keyfile=options.key)
    return context


async def serve(options) -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    context = report_7466_context(options) if options.as_reported_7466 else make_context(options)
    site = web.TCPSite(runner, options.bind, options.port, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(listening_line(options.bind, port), flush=True)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    options = parser("python -m harness.apps.aiohttp_server")
    options.add_argument("--as-reported-7466", action="store_true")
    asyncio.run(serve(options.parse_args(argv)))


if __name__ == "__main__":
    main()
