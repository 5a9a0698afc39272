"""Tornado's HTTPServer with the ``ssl_options`` context its documentation shows.

    python -m harness.apps.tornado_server --cert F --key F [--client-ca F] \
        --client-check ignore|optional|required [--crl F] --bind HOST [--port 0]

``HTTPServer(app, ssl_options=context)``, ``context`` built as
``HTTPServerRequest.get_ssl_certificate``'s docstring says (``harness.apps.stdlib_tls``),
then ``server.listen(port, address)``. The handler answers any path with the keys
tornado lets a handler see: ``request.protocol``, ``request.remote_ip`` (the peer:
``xheaders`` is off, as by default) and the connection's ``SSLSocket``
(``request.connection.stream.socket``, the object tornado's own
``get_ssl_certificate`` reads). Prints ``listening on https://HOST:PORT`` once the
sockets listen (port 0: the one the first socket got; tornado binds every address
of a name on that same port), then serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import signal

import tornado.web
from tornado.httpserver import HTTPServer

from harness.apps.stdlib_tls import body, listening_line, make_context, parser, tls_keys


class TLSHandler(tornado.web.RequestHandler):
    def _answer(self) -> None:
        stream = getattr(self.request.connection, "stream", None)
        tls = getattr(stream, "socket", None)
        self.set_header("Content-Type", "application/json")
        self.set_header("Connection", "close")
        self.finish(body(tls_keys(self.request.protocol, tls, self.request.remote_ip)))

    get = post = put = head = _answer


async def serve(options) -> None:
    app = tornado.web.Application([(r".*", TLSHandler)])
    server = HTTPServer(app, ssl_options=make_context(options))
    server.listen(options.port, options.bind)
    port = next(iter(server._sockets.values())).getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(listening_line(options.bind, port), flush=True)
    await stop.wait()
    server.stop()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parser("python -m harness.apps.tornado_server").parse_args(argv)))


if __name__ == "__main__":
    main()
