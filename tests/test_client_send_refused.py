"""A server that refuses the client's certificate after a TLS 1.3 handshake sends its
alert and closes; when the close (a reset: the client's Finished is still unread)
reaches the client before its request, the request's send fails. The alert is still
there to read: the attempt is a refusal by that alert, not a bare close
(harness/client.py ``SEND_REFUSED``; found as a racing Werkzeug case whose verdict
flapped between runs).

Real sockets on loopback, a real stdlib-ssl server; the order is forced by readiness:
the client sends only once the server has closed.
"""

from __future__ import annotations

import ssl

import pytest

from harness.client import ALERT, REJECTED, TLSClient, _Connection
from tests.refusing_server import refusing_server as serve_refusing


@pytest.fixture
def refusing_server(certs):
    """(port, closed): a one-connection TLS 1.3 server that requires a client
    certificate; ``closed`` is set once it has refused and closed the connection."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(str(certs["server"].cert), str(certs["server"].key))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(str(certs["ca"].cert))
    with serve_refusing(context) as (port, closed):
        yield port, closed


def test_a_send_that_fails_after_the_refusal_still_reads_the_alert(certs, refusing_server):
    port, closed = refusing_server
    failures: list[BaseException] = []

    class SendAfterTheClose(_Connection):
        def connect(self) -> None:
            super().connect()  # the client's handshake is over (TLS 1.3)
            assert closed.wait(10)

        def send(self, data) -> None:
            try:
                super().send(data)
            except BaseException as exc:
                failures.append(exc)
                raise

    client = TLSClient(certs["ca"].cert, None, tls="1.3", timeout=5)
    client.connection_class = SendAfterTheClose
    attempt = client.get(f"https://127.0.0.1:{port}/")
    assert failures, "the send did not fail: the order this test forces did not hold"
    assert (attempt.outcome, attempt.form, attempt.alert) == (
        REJECTED,
        ALERT,
        "certificate_required",
    ), attempt.detail
