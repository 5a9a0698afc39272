"""The reference server is an origin server whatever else runs in its process.

CherryPy's ``CPWSGIServer`` switches every Cheroot server in the process to proxy mode
(it sets the shared ``HTTPConnection.RequestHandlerClass``). The reference pins its own
request class; these tests build a real CherryPy server first, then talk to the
reference over TLS on loopback.
"""

from __future__ import annotations

import pytest
from cheroot import server as cheroot_server

from harness.reference import ReferenceServer, make_adapter
from matrix.state.wire import ClientSetup, exchange, request_bytes

cherrypy_wsgi = pytest.importorskip("cherrypy._cpwsgi_server")


@pytest.fixture
def cherrypy_built_in_process():
    """CherryPy servers built (not started) in this process, as a CherryPy app would:
    CherryPy's own, and ours (harness.cherrypy_mtls), which derives from the reference's."""
    from harness import cherrypy_mtls

    shared = cheroot_server.HTTPConnection.RequestHandlerClass
    cherrypy_wsgi.CPWSGIServer()
    cherrypy_mtls.ClientCertWSGIServer()
    try:
        assert cheroot_server.HTTPConnection.RequestHandlerClass is not shared  # proxy mode
        yield
    finally:
        cheroot_server.HTTPConnection.RequestHandlerClass = shared


@pytest.mark.parametrize("adapter", ["builtin", "pyopenssl"])
@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("http://x/", 400),  # absolute-form on GET: for proxies only (RFC 9112 section 3.2.2)
        ("//secure/", 400),  # a path cannot start with "//": read as an authority
        ("/secure/", 200),
    ],
)
def test_absolute_form_is_refused_after_cherrypy_switched_cheroot_to_proxy_mode(
    certs, cherrypy_built_in_process, adapter, target, expected
):
    ref = ReferenceServer(
        make_adapter(
            adapter,
            certificate=str(certs["server"].cert),
            private_key=str(certs["server"].key),
            client_CA=str(certs["ca"].cert),
            client_check="required",
        )
    ).start()
    try:
        setup = ClientSetup(certs["ca"].cert, certs["localhost"].cert, certs["localhost"].key)
        seen = exchange("127.0.0.1", ref.port, setup, request_bytes("GET", target, "x"))
    finally:
        ref.stop()
    assert seen.status == expected
    if expected == 200:
        assert seen.json()["wsgi.url_scheme"] == "https"
