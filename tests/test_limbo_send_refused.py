"""The limbo client reads the server's refusal even when its request's send failed.

A server that refuses the client's certificate after a TLS 1.3 handshake sends its alert
and closes; when the close (a reset: the client's data is still unread) reaches the client
before its request, the request's send fails. With the socket under OpenSSL, OpenSSL 3.2
and later then fail every read, and the attempt was a "reset" though ``unknown_ca`` was
waiting to be read: 192 of 300 attempts against this very server (matrix/limbo/handshake.py
``_Link``). The client now keeps the socket to itself and reads on.

Real sockets on loopback, a real stdlib-ssl server, the client's real pyOpenSSL; the
order is forced by readiness: the client sends its request only once the server has
refused and closed.
"""

from __future__ import annotations

import ssl

import pytest
import trustme

from matrix.limbo import handshake
from matrix.limbo.corpus import LimboCase
from matrix.limbo.handshake import REFUSED, attempt
from tests.refusing_server import refusing_server as serve_refusing


@pytest.fixture
def refusing_server():
    """(port, closed, case): a one-connection TLS 1.3 server that requires a client
    certificate from its CA; ``case`` presents one from another CA; ``closed`` is set once
    the server has refused it and closed the connection."""
    ca, other = trustme.CA(), trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    ca.issue_cert("localhost").configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    client = other.issue_cert("client.test")
    case = LimboCase(
        "send-refused",
        (),
        "CLIENT",
        (),
        (),
        client.cert_chain_pems[0].bytes().decode(),
        client.private_key_pem.bytes().decode(),
        None,
        "FAILURE",
        None,
        (),
        None,
        (),
    )
    with serve_refusing(context) as (port, closed):
        yield port, closed, case


def test_a_request_sent_after_the_refusal_still_reads_the_alert(refusing_server, monkeypatch):
    port, closed, case = refusing_server
    links: list[handshake._Link] = []

    class SendAfterTheClose(handshake._Link):
        def request(self, data: bytes) -> None:
            links.append(self)
            assert closed.wait(10)  # the client's handshake is over (TLS 1.3)
            super().request(data)

    monkeypatch.setattr(handshake, "_Link", SendAfterTheClose)
    seen = attempt(case, "1.3", "127.0.0.1", port, 10.0)
    assert links and links[0].refused is not None, "the send did not fail: order not forced"
    assert (seen.outcome, seen.stage, seen.form, seen.alert) == (
        REFUSED,
        "first-read",
        "alert",
        "unknown_ca",
    ), seen.detail
