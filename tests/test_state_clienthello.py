"""The SNI read ahead of the handshake (harness/reference/clienthello.py, vhosts.py).

ClientHellos are real ones, made by Python's ssl module through a MemoryBIO; the
socket is a real socket pair, written to in pieces to show a ClientHello that arrives
in parts waits for the rest (SO_RCVLOWAT) instead of being guessed at.
"""

from __future__ import annotations

import socket
import ssl

import pytest

import certs_gen
from harness.reference import make_adapter
from harness.reference.clienthello import NotClientHello, peek_server_name
from harness.reference.connection import Refused, Want


def client_hello(name: str | None, tls: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.maximum_version = tls
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize("tls", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
@pytest.mark.parametrize("name", ["b.test", "B.Test", None])
def test_the_name_is_read_from_a_whole_client_hello(name, tls):
    data = client_hello(name, tls)
    assert peek_server_name(data).name == name
    assert peek_server_name(data).needed is None


def test_a_partial_client_hello_says_how_many_bytes_it_needs():
    data = client_hello("b.test")
    assert peek_server_name(data[:3]).needed == 5
    assert peek_server_name(data[:100]).needed == len(data)


def test_a_client_hello_split_over_two_records_is_reassembled():
    data = client_hello("b.test")
    body = data[5:]
    first, second = body[:50], body[50:]
    split = b"".join(
        bytes([22, 3, 1]) + len(part).to_bytes(2, "big") + part for part in (first, second)
    )
    assert peek_server_name(split).name == "b.test"
    assert peek_server_name(split[:60]).needed == 5 + 50 + 5 + len(second)


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",  # not TLS
        bytes([22, 3, 1, 0, 4, 2, 0, 0, 0]),  # a ServerHello, not a ClientHello
        bytes([22, 3, 1, 0, 5, 1, 0, 0, 1, 3]),  # a ClientHello too short for its fields
        bytes([22, 3, 1, 0xFF, 0xFF]),  # a record longer than TLS allows
    ],
)
def test_what_is_not_a_client_hello_is_said_to_be_so(data):
    with pytest.raises(NotClientHello):
        peek_server_name(data)


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    certs = certs_gen.generate(tmp_path_factory.mktemp("certs"))
    common = {"certificate": str(certs["server"].cert), "private_key": str(certs["server"].key)}
    hosts = [("b.test", "required", False, str(certs["ca"].cert))]
    return {a: make_adapter(a, **common, sni_hosts=hosts) for a in ("builtin", "pyopenssl")}


@pytest.mark.parametrize("backend", ["builtin", "pyopenssl"])
def test_a_client_hello_in_pieces_waits_for_the_rest(adapters, backend):
    adapter = adapters[backend]
    server, client = socket.socketpair()
    with server, client:
        session = adapter.open_session(server)
        data = client_hello("b.test")
        client.sendall(data[:40])
        with pytest.raises(Want):
            session.handshake_step()
        # the selector wakes only once the missing bytes are there
        assert server.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT) == len(data)
        client.sendall(data[40:])
        with pytest.raises(Want):  # chosen now: the named host's back-end handshakes
            session.handshake_step()
        assert session.host_name == "b.test"
        assert session.settings.client_check == "required"
        assert session.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT) == 1


@pytest.mark.parametrize("backend", ["builtin", "pyopenssl"])
def test_a_client_that_closes_in_the_middle_of_its_client_hello_is_refused(adapters, backend):
    server, client = socket.socketpair()
    with server:
        session = adapters[backend].open_session(server)
        client.sendall(client_hello("b.test")[:40])
        with pytest.raises(Want):
            session.handshake_step()
        client.close()
        with pytest.raises(Refused):
            session.handshake_step()


@pytest.mark.parametrize("backend", ["builtin", "pyopenssl"])
def test_an_unknown_name_gets_the_default_host(adapters, backend):
    server, client = socket.socketpair()
    with server, client:
        session = adapters[backend].open_session(server)
        client.sendall(client_hello("unknown.test"))
        with pytest.raises(Want):
            session.handshake_step()
        assert session.host_name == "_default_"
        assert session.settings.client_check == "ignore"
