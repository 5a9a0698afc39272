"""Stopping the reference server: every thread it started ends, and Cheroot's selector
loop is not re-entered while the stop waits (a spin that held the GIL against the
threads being joined; harness/reference/server.py, ``_Server._prompt_stop``)."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading

import pytest

from harness.client import DEADLINES_THREAD
from harness.reference import ReferenceServer, make_adapter


def _server(certs, adapter: str) -> ReferenceServer:
    return ReferenceServer(
        make_adapter(
            adapter,
            certificate=str(certs["server"].cert),
            private_key=str(certs["server"].key),
            client_CA=str(certs["ca"].cert),
            client_check="required",
        ),
        ("127.0.0.1", 0),
    )


@pytest.mark.parametrize("adapter", ["builtin", "pyopenssl"])
def test_stop_ends_every_thread_without_reentering_the_selector_loop(certs, adapter):
    before = set(threading.enumerate())
    server = _server(certs, adapter).start()
    context = ssl.create_default_context(cafile=str(certs["ca"].cert))
    context.load_cert_chain(str(certs["localhost"].key_and_chain))
    # One kept-alive connection after a served request, one that never says hello.
    kept = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=5, context=context)
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        kept.request("GET", "/")
        response = kept.getresponse()
        assert response.status == 200
        response.read()

        connections = server._server._connections
        plain_run = connections.run
        entered_during_stop = []
        stopping = threading.Event()

        def counted_run(interval: float) -> None:
            if stopping.is_set():
                entered_during_stop.append(interval)
            plain_run(interval)

        connections.run = counted_run  # serve() calls it when the running loop returns
        stopping.set()
        server.stop()
    finally:
        kept.close()
        silent.close()
    # The running loop ends once and serve() sees ready False: never entered again.
    # The spin entered it thousands of times in a switch interval.
    assert entered_during_stop == []
    # Cheroot's unservicable-connections thread is told to end by its stop() but not
    # joined: each thread gets a deadline to end, none may outlive it.
    left = [t for t in set(threading.enumerate()) - before if t.name != DEADLINES_THREAD]
    for thread in left:
        thread.join(5)
    assert not [t.name for t in left if t.is_alive()]
