"""Hostile clients (SPEC section 7) against the reference server: what the server does.

Each test opens real attackers on loopback and asserts on the server's state and
output, not on timing: where a connection waits (``server.gate.census()``, the
gate's count by state), how many workers are idle (``server.workers.idle``),
the status line it answers, and its log (one WARNING line per refused
connection, never a traceback). Latency under attack is measured by the
resilience battery (``python -m matrix.resilience``), not here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import logging
import re
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import pytest
from cheroot import wsgi as cheroot_wsgi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtensionOID, NameOID

from harness import hostile
from harness.client import TLSClient
from harness.reference import ReferenceServer, make_adapter, tls_environ_app
from harness.reference.gate import BODY, FIRST, HANDSHAKE, HEAD, IDLE, LINGER
from tests.polling import IO_TIMEOUT, wait_for

ADAPTERS = ("builtin", "pyopenssl")
LOGGER = "mtls_matrix.reference"
WORKERS = 4
ATTACKERS = WORKERS + 4  # more than the pool: each one on a worker would starve it
SHORT = 0.5  # request timeout of the server that must answer 408 / end a body


def client_hello(**context_options) -> bytes:
    """A genuine ClientHello from the stdlib client (options: minimum/maximum_version)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for name, value in context_options.items():
        setattr(ctx, name, value)
    if ctx.maximum_version < ssl.TLSVersion.TLSv1_2:
        ctx.set_ciphers("ALL:@SECLEVEL=0")  # old versions need old ciphers
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert hello[0] == 0x16 and len(hello) > 100
    return hello


HELLO = client_hello()


# -- servers, clients, logs --------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(certs) -> Iterator[Callable[..., ReferenceServer]]:
    """server(adapter, **options) -> a running `required` server with 4 workers,
    one per distinct arguments per module."""
    started: dict[tuple, ReferenceServer] = {}

    def get(
        adapter: str, request_timeout: float = 10.0, app=tls_environ_app, **settings
    ) -> ReferenceServer:
        key = (adapter, request_timeout, app, tuple(sorted(settings.items())))
        if key not in started:
            options = {
                "certificate": str(certs["server"].cert),
                "private_key": str(certs["server"].key),
                "client_CA": str(certs["ca"].cert),
                "client_check": "required",
                "handshake_timeout": 10.0,
                **settings,
            }
            started[key] = ReferenceServer(
                make_adapter(adapter, **options),
                ("127.0.0.1", 0),
                app,
                numthreads=WORKERS,
                request_timeout=request_timeout,
            ).start()
        return started[key]

    yield get
    for server in started.values():
        server.stop()


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    return caplog


def good_request(certs, server: ReferenceServer, credential: str = "localhost"):
    client = TLSClient(certs["ca"].cert, certs[credential].key_and_chain, timeout=IO_TIMEOUT)
    try:
        return client.get(server.url)
    finally:
        client.close()


def assert_served(certs, server: ReferenceServer) -> None:
    attempt = good_request(certs, server)
    assert attempt.outcome == "ok" and attempt.status == 200, attempt.detail


def connect(server: ReferenceServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT)


def tls_connect(certs, server: ReferenceServer, credential: str | None = "localhost"):
    ctx = ssl.create_default_context(cafile=str(certs["ca"].cert))
    if credential is not None:
        ctx.load_cert_chain(str(certs[credential].key_and_chain))
    return ctx.wrap_socket(connect(server), server_hostname="127.0.0.1")


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (EOF, reset or a TLS alert)."""
    sock.settimeout(IO_TIMEOUT)
    data = b""
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER on, zero seconds)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def lines_for(caplog, port: int) -> list[logging.LogRecord]:
    pattern = re.compile(rf":{port}\b")
    return [r for r in caplog.records if r.name == LOGGER and pattern.search(r.getMessage())]


def logged_once(caplog, port: int, fragment: str) -> str:
    assert wait_for(lambda: lines_for(caplog, port)), f"nothing logged for port {port}"
    records = lines_for(caplog, port)
    assert len(records) == 1, [r.getMessage() for r in records]
    message = records[0].getMessage()
    assert fragment in message, message
    assert "\n" not in message and records[0].exc_info is None
    assert records[0].levelno == logging.WARNING
    return message


def no_tracebacks(caplog) -> None:
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert not [r for r in caplog.records if "Traceback" in r.getMessage()]


# -- attackers: each leaves its connection open in the state named ------------------------


def silent(certs, server):
    return connect(server)


def one_byte(certs, server):
    sock = connect(server)
    sock.sendall(b"\x16")
    return sock


def record_header(certs, server):
    sock = connect(server)
    sock.sendall(HELLO[:5])
    return sock


def half_hello(certs, server):
    sock = connect(server)
    sock.sendall(HELLO[: len(HELLO) // 2])
    return sock


def whole_hello(certs, server):
    sock = connect(server)
    sock.sendall(HELLO)
    return sock


def trickled_hello(certs, server):
    sock = connect(server)
    for byte in HELLO[:12]:
        sock.sendall(bytes([byte]))
        time.sleep(0.01)  # pace: one byte at a time, as a trickling attacker sends
    return sock


def handshake_then_silent(certs, server):
    return tls_connect(certs, server)


def trickled_head(certs, server):
    tls = tls_connect(certs, server)
    for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-A: ":
        tls.sendall(bytes([byte]))
    return tls


ATTACKS = {
    "silent": (silent, FIRST),
    "one-byte": (one_byte, HANDSHAKE),
    "record-header": (record_header, HANDSHAKE),
    "half-hello": (half_hello, HANDSHAKE),
    "whole-hello": (whole_hello, HANDSHAKE),
    "trickled-hello": (trickled_hello, HANDSHAKE),
    "handshake-then-silent": (handshake_then_silent, HEAD),
    "trickled-head": (trickled_head, HEAD),
}


@pytest.mark.parametrize("kind", list(ATTACKS))
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_attackers_wait_in_the_gate_not_on_workers(certs, servers, log, adapter, kind):
    """More attackers than workers: all of them wait in the gate, every worker stays
    idle, and a good client is served while they are connected."""
    server = servers(adapter)
    attack, state = ATTACKS[kind]
    attackers = [attack(certs, server) for _ in range(ATTACKERS)]
    try:
        assert wait_for(lambda: server.gate.census()[state] >= ATTACKERS), server.gate.census()
        assert wait_for(lambda: server.workers.idle == WORKERS)
        assert_served(certs, server)
        assert server.gate.census()[state] >= ATTACKERS  # still there: not dropped to cope
    finally:
        for sock in attackers:
            sock.close()
    assert wait_for(lambda: server.gate.census()[state] == 0), server.gate.census()
    no_tracebacks(log)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_refused_clients_that_hold_their_socket_linger_in_the_gate(certs, servers, log, adapter):
    """Clients refused for a wrong CA that keep their sockets open: the linger runs
    in the gate, then the server closes them; no worker is involved."""
    server = servers(adapter)
    holders = []
    for _ in range(ATTACKERS):
        sock = connect(server)
        sock.sendall(client_hello())  # no certificate will come: refused
        holders.append(sock)
    try:
        ctx = ssl.create_default_context(cafile=str(certs["ca"].cert))
        ctx.load_cert_chain(str(certs["wrong-ca"].key_and_chain))
        refused = [ctx.wrap_socket(connect(server), server_hostname="127.0.0.1")]
        refused += [ctx.wrap_socket(connect(server), server_hostname="127.0.0.1")]
        # TLS 1.3: the refusal comes after the client's handshake finished.
        assert wait_for(lambda: server.gate.census()[LINGER] >= 1), server.gate.census()
        assert wait_for(lambda: server.workers.idle == WORKERS)
        assert_served(certs, server)
        for sock in refused:
            assert read_all(sock) == b""  # the alert, then the close
            sock.close()
    finally:
        for sock in holders:
            sock.close()
    assert wait_for(lambda: server.gate.census()[LINGER] == 0), server.gate.census()
    no_tracebacks(log)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_waiting_connections_are_capped(certs, log, adapter):
    """At the cap, a new connection gets in and the oldest one still without a
    handshake is dropped, with one line: a flood cannot exhaust file descriptors,
    and cannot keep a good client out either."""
    adapter_ = make_adapter(
        adapter,
        certificate=str(certs["server"].cert),
        private_key=str(certs["server"].key),
        client_CA=str(certs["ca"].cert),
        client_check="required",
    )
    server = ReferenceServer(adapter_, numthreads=WORKERS, max_waiting=ATTACKERS).start()
    waiting = []
    try:
        for _ in range(ATTACKERS):
            waiting.append(connect(server))
            count = len(waiting)
            assert wait_for(lambda n=count: server.gate.census()[FIRST] == n)
        oldest = waiting[0]
        port = oldest.getsockname()[1]
        waiting.append(connect(server))
        assert read_all(oldest) == b""  # closed by the server
        logged_once(log, port, "dropped to make room")
        assert wait_for(lambda: server.gate.census()[FIRST] == ATTACKERS)
        assert_served(certs, server)
        no_tracebacks(log)
    finally:
        for sock in waiting:
            sock.close()
        server.stop()


# -- limits --------------------------------------------------------------------------------


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_request_head_over_64_kib_gets_431(certs, servers, log, adapter):
    server = servers(adapter)
    with tls_connect(certs, server) as tls:
        port = tls.getsockname()[1]
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (70 * 1024))
        answer = read_all(tls)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    logged_once(log, port, "answered 431")
    assert wait_for(lambda: server.workers.idle == WORKERS)
    no_tracebacks(log)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_head_just_under_64_kib_is_served(certs, servers, adapter):
    server = servers(adapter)
    with tls_connect(certs, server) as tls:
        padding = b"a" * (60 * 1024)
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: " + padding)
        tls.sendall(b"\r\n\r\n")
        answer = read_all(tls)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_incomplete_head_gets_408_at_the_deadline(certs, servers, log, adapter):
    server = servers(adapter, request_timeout=SHORT)
    with tls_connect(certs, server) as tls:
        port = tls.getsockname()[1]
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the empty line
        answer = read_all(tls)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
    logged_once(log, port, f"within {SHORT:g}s (answered 408)")
    no_tracebacks(log)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_body_over_the_bound_gets_413_before_it_is_read(certs, servers, log, adapter):
    server = servers(adapter)
    with tls_connect(certs, server) as tls:
        tls.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n")
        answer = read_all(tls)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]
    assert wait_for(lambda: server.workers.idle == WORKERS)
    no_tracebacks(log)


@pytest.mark.parametrize(
    "expect",
    [b"", b"Expect: 100-continue\r\n"],
    ids=["plain", "expect-100-continue"],
)
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_trickled_body_ends_at_the_deadline(certs, servers, log, adapter, expect):
    """A body that stops coming: the gate reads it itself (no worker involved), after
    answering ``100 Continue`` when the client asked, and answers 408 at the deadline."""
    server = servers(adapter, request_timeout=SHORT)
    with tls_connect(certs, server) as tls:
        port = tls.getsockname()[1]
        head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n" + expect + b"\r\n"
        tls.sendall(head + b"0123456789")
        assert wait_for(lambda: server.gate.census()[BODY] >= 1), server.gate.census()
        answer = read_all(tls)
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" if expect else b""
    assert answer.startswith(interim + b"HTTP/1.1 408 "), answer[:100]
    logged_once(log, port, f"request body not complete within {SHORT:g}s")
    assert wait_for(lambda: server.workers.idle == WORKERS)
    no_tracebacks(log)


def read_response(tls: ssl.SSLSocket) -> bytes:
    """One response with a Content-Length, exactly (what follows stays unread)."""
    tls.settimeout(IO_TIMEOUT)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(1)
        assert chunk, data
        data += chunk
    length = int(re.search(rb"(?i)content-length: *(\d+)", data)[1])
    while len(data) < data.index(b"\r\n\r\n") + 4 + length:
        chunk = tls.recv(65536)
        assert chunk, data
        data += chunk
    return data


def body_reading_app(environ, start_response):
    """Reads the whole body before it answers, as most applications taking uploads do."""
    body = environ["wsgi.input"].read()
    answer = f"{len(body)} bytes\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_body_read_by_the_app_on_a_worker_gets_408_at_the_deadline(certs, servers, log, adapter):
    """Expect: 100-continue sends the body through a worker (Cheroot owes the interim
    answer); an application reading a body that stops coming gets a 408 out."""
    server = servers(adapter, request_timeout=SHORT, app=body_reading_app)
    with tls_connect(certs, server) as tls:
        port = tls.getsockname()[1]
        tls.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
            b"Expect: 100-continue\r\n\r\n0123456789"
        )
        answer = read_all(tls)
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 408 "), answer[:100]
    logged_once(log, port, f"request body not complete within {SHORT:g}s")
    assert wait_for(lambda: server.workers.idle == WORKERS)
    no_tracebacks(log)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_kept_alive_connection_waits_in_the_gate_between_requests(certs, servers, adapter):
    server = servers(adapter)
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    with tls_connect(certs, server) as tls:
        tls.sendall(request + request)  # pipelined: the second is buffered at hand-off
        assert read_response(tls).startswith(b"HTTP/1.1 200 ")
        assert read_response(tls).startswith(b"HTTP/1.1 200 ")
        assert wait_for(lambda: server.gate.census()[IDLE] >= 1), server.gate.census()
        assert wait_for(lambda: server.workers.idle == WORKERS)
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_all(tls).startswith(b"HTTP/1.1 200 ")


# -- failures: one line each, never a traceback ---------------------------------------------


def hello_then_reset(certs, server):
    sock = connect(server)
    sock.sendall(HELLO)
    sock.settimeout(IO_TIMEOUT)
    sock.recv(1)  # the server's flight has started: it is mid-handshake
    port = sock.getsockname()[1]
    reset(sock)
    return port, None


def reset_at_once(certs, server):
    sock = connect(server)
    port = sock.getsockname()[1]
    reset(sock)
    return port, None


def garbage_after_handshake(certs, server):
    tls = tls_connect(certs, server)
    port = tls.getsockname()[1]
    # A forged application-data record: the server cannot decrypt it.
    socket.socket.sendall(tls, b"\x17\x03\x03\x00\x20" + b"\xa5" * 32)
    read_all(tls)
    tls.close()
    return port, "TLS error after the handshake"


def old_protocol_only(certs, server):
    with warnings.catch_warnings():  # the point is to use what is deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        hello = client_hello(
            minimum_version=ssl.TLSVersion.TLSv1, maximum_version=ssl.TLSVersion.TLSv1_1
        )
    sock = connect(server)
    port = sock.getsockname()[1]
    sock.sendall(hello)
    read_all(sock)
    sock.close()
    return port, "handshake failed"


def no_shared_group(certs, server):
    tls13 = hostile.client_context(minimum=ssl.TLSVersion.TLSv1_3)
    hello = hostile.without_shared_group(hostile.client_hello(tls13))
    sock = connect(server)
    port = sock.getsockname()[1]
    sock.sendall(hello)
    read_all(sock)
    sock.close()
    return port, "handshake failed"


FAILURES = {
    "hello-then-reset": hello_then_reset,
    "reset-at-once": reset_at_once,
    "garbage-after-handshake": garbage_after_handshake,
    "old-protocol-only": old_protocol_only,
    "no-shared-group": no_shared_group,
}


@pytest.mark.parametrize("kind", list(FAILURES))
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_failed_connections_log_one_line(certs, servers, log, adapter, kind):
    server = servers(adapter)
    try:
        port, fragment = FAILURES[kind](certs, server)
    except ssl.SSLError as exc:  # the local OpenSSL will not even offer old versions
        pytest.skip(f"this client cannot send the attack: {exc}")
    if fragment is None:  # a reset right after connect may be seen as a reset or an EOF
        message = logged_once(log, port, "refused: ")
        assert re.search(r"reset|closed|failed", message), message
    else:
        logged_once(log, port, fragment)
    assert wait_for(lambda: sum(server.gate.census().values()) == 0), server.gate.census()
    assert_served(certs, server)
    no_tracebacks(log)


def test_listen_backlog_is_the_system_maximum(certs, servers):
    if shutil.which("ss") is None:
        pytest.skip("needs ss(8) to read a listening socket's backlog")
    try:
        with open("/proc/sys/net/core/somaxconn") as fh:
            maximum = int(fh.read())
    except OSError:
        pytest.skip("needs /proc/sys/net/core/somaxconn")
    server = servers("builtin")
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{server.port}"], capture_output=True, text=True, timeout=10
    ).stdout.split()
    assert out and out[0] == "LISTEN", out
    assert int(out[2]) == maximum  # Send-Q of a listening socket is its backlog


# -- certificates OpenSSL accepts and cryptography cannot parse (issue 15, part 6) ----------


def _der_length(data: bytes, at: int) -> tuple[int, int]:
    """(length, offset of the content) of the DER element whose tag is at ``at``."""
    first = data[at + 1]
    if first < 0x80:
        return first, at + 2
    count = first & 0x7F
    return int.from_bytes(data[at + 2 : at + 2 + count], "big"), at + 2 + count


def _der_header(tag: int, length: int) -> bytes:
    if length < 0x80:
        return bytes([tag, length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets


def _resign(cert: x509.Certificate, tbs: bytes, ca_key) -> bytes:
    """``cert`` with its to-be-signed part replaced by ``tbs`` and signed again."""
    der = cert.public_bytes(serialization.Encoding.DER)
    _, body = _der_length(der, 0)
    tbs_len, tbs_body = _der_length(der, body)
    alg_at = tbs_body + tbs_len
    alg_len, alg_body = _der_length(der, alg_at)
    algorithm = der[alg_at : alg_body + alg_len]
    signature = ca_key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    bits = _der_header(0x03, len(signature) + 1) + b"\x00" + signature
    inner = tbs + algorithm + bits
    return _der_header(0x30, len(inner)) + inner


@pytest.fixture(scope="module")
def unparseable(certs, tmp_path_factory) -> dict[str, str]:
    """Client certificates from the test CA that cryptography cannot parse:
    "t61": a subject CN in T61String holding byte 0xE9 (Latin-1, not UTF-8);
    "aia": an authorityInformationAccess extension that is an INTEGER, not a SEQUENCE.
    Both name IP 127.0.0.1. Values: paths of key + certificate PEM files."""
    ca_key = serialization.load_pem_private_key(certs["ca"].key.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(certs["ca"].cert.read_bytes())
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        pytest.skip("the re-signing here handles ECDSA CA keys only")
    tmp = tmp_path_factory.mktemp("unparseable")
    now = dt.datetime.now(dt.timezone.utc)
    out = {}
    for name in ("t61", "aia"):
        key = ec.generate_private_key(ec.SECP256R1())
        cn = x509.NameAttribute(NameOID.COMMON_NAME, "clXY", _type=_ASN1Type.T61String)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([cn]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
            # the reference adapters verify with X509_STRICT, which requires key identifiers
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        )
        if name == "aia":
            builder = builder.add_extension(
                x509.UnrecognizedExtension(
                    ExtensionOID.AUTHORITY_INFORMATION_ACCESS, b"\x02\x01\x01"
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        tbs = cert.tbs_certificate_bytes
        if name == "t61":
            assert tbs.count(b"\x14\x04clXY") == 1
            tbs = tbs.replace(b"\x14\x04clXY", b"\x14\x04cl\xe9Y")
        der = _resign(cert, tbs, ca_key)
        path = tmp / f"{name}.pem"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            + ssl.DER_cert_to_PEM_cert(der).encode()
        )
        with pytest.raises(ValueError):  # the premise: cryptography cannot read all of it
            parsed = x509.load_der_x509_certificate(der)
            parsed.subject.rfc4514_string()
            _ = parsed.extensions
        out[name] = str(path)
    return out


def unparseable_request(certs, server: ReferenceServer, path: str) -> tuple[int, bytes]:
    ctx = ssl.create_default_context(cafile=str(certs["ca"].cert))
    ctx.load_cert_chain(path)
    with ctx.wrap_socket(connect(server), server_hostname="127.0.0.1") as tls:
        port = tls.getsockname()[1]
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return port, read_all(tls)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_certificate_cryptography_cannot_parse_is_served(certs, servers, log, unparseable, adapter):
    """Verified by OpenSSL, so served (as mod_ssl would): SSL_CLIENT_VERIFY and
    SSL_CLIENT_CERT are set, unreadable variables left out, one WARNING line."""
    server = servers(adapter)
    port, answer = unparseable_request(certs, server, unparseable["aia"])
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert b'"SSL_CLIENT_VERIFY": "SUCCESS"' in body
    assert b'"SSL_CLIENT_CERT": "-----BEGIN CERTIFICATE-----' in body
    logged_once(log, port, "partly unreadable")
    no_tracebacks(log)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_t61_name_cryptography_cannot_decode_is_read_from_the_der(
    certs, servers, log, unparseable, adapter
):
    """A T61String CN holding byte 0xE9 (not UTF-8): cryptography refuses it, but the
    reference reads DN entries from the DER by their string type, as OpenSSL prints them
    (T61String as Latin-1: docs/spec.md section 5), so nothing is unreadable any more:
    served whole, the CN shown, no warning line."""
    server = servers(adapter)
    _port, answer = unparseable_request(certs, server, unparseable["t61"])
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer[:200]
    environ = json.loads(body)
    assert environ["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert environ["SSL_CLIENT_S_DN_CN"] == "cl\u00e9Y"  # the byte 0xE9 as Latin-1
    assert not [r for r in log.records if "partly unreadable" in r.getMessage()]
    no_tracebacks(log)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_unparseable_extensions_fail_the_host_check_cleanly(
    certs, servers, log, unparseable, adapter
):
    """With a host check, identities that cannot be read cannot match: refused, one line."""
    server = servers(adapter, client_check_host=True)
    port, answer = unparseable_request(certs, server, unparseable["aia"])
    assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    logged_once(log, port, "host check failed: client certificate cannot be parsed")
    no_tracebacks(log)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_body_within_the_bound_is_served(certs, servers, adapter):
    server = servers(adapter)
    body = b"x" * 200_000  # several TLS records, read ahead in the gate
    with tls_connect(certs, server) as tls:
        head = f"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}"
        tls.sendall(head.encode() + b"\r\n\r\n" + body)
        assert read_all(tls).startswith(b"HTTP/1.1 200 ")


# -- every kind of the resilience battery's attackers (harness.hostile) -----------------------


@pytest.mark.parametrize("kind", list(hostile.KINDS))
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_battery_kinds_leave_the_workers_free(certs, servers, log, adapter, kind):
    """More attackers of each battery kind than workers: a good client is served while
    they hold on, each worker is idle once the attackers have done their part, and
    nothing is logged with a traceback."""
    server = servers(adapter)
    with hostile.run_attackers(
        hostile.KINDS[kind],
        ("127.0.0.1", server.port),
        ATTACKERS,
        credential=certs["localhost"].key_and_chain,
        pace_s=0.05,
        hold_s=IO_TIMEOUT,
    ) as attack:
        assert wait_for(lambda: all(a.connected for a in attack.attackers))
        assert wait_for(lambda: server.workers.idle == WORKERS)
        assert_served(certs, server)
    no_tracebacks(log)
    assert_served(certs, server)


# -- an adapter in a plain Cheroot server: the older behaviour, still correct --------------


@pytest.fixture(scope="module")
def plain_cheroot(certs) -> Iterator[Callable[[str], cheroot_wsgi.Server]]:
    """plain(adapter) -> a running cheroot.wsgi.Server with our adapter and no gate."""
    started: dict[str, tuple[cheroot_wsgi.Server, threading.Thread]] = {}

    def get(adapter: str) -> cheroot_wsgi.Server:
        if adapter not in started:
            server = cheroot_wsgi.Server(("127.0.0.1", 0), tls_environ_app, numthreads=2)
            server.ssl_adapter = make_adapter(
                adapter,
                certificate=str(certs["server"].cert),
                private_key=str(certs["server"].key),
                client_CA=str(certs["ca"].cert),
                client_check="required",
                handshake_timeout=IO_TIMEOUT,
            )
            server.prepare()
            thread = threading.Thread(target=server.serve, daemon=True)
            thread.start()
            started[adapter] = (server, thread)
        return started[adapter][0]

    yield get
    for server, thread in started.values():
        server.stop()
        thread.join(timeout=IO_TIMEOUT)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_adapter_in_a_plain_cheroot_server(certs, plain_cheroot, log, adapter):
    """Served, refused and answered as in ReferenceServer, one line per refusal; only
    the place where the handshake waits differs (a worker, bounded by its timeout)."""
    server = plain_cheroot(adapter)
    port = server.bind_addr[1]
    client = TLSClient(certs["ca"].cert, certs["localhost"].key_and_chain, timeout=IO_TIMEOUT)
    try:
        attempt = client.get(f"https://127.0.0.1:{port}")
    finally:
        client.close()
    assert attempt.outcome == "ok", attempt.detail
    assert attempt.environ["SSL_CLIENT_VERIFY"] == "SUCCESS"

    ctx = ssl.create_default_context(cafile=str(certs["ca"].cert))
    ctx.load_cert_chain(str(certs["wrong-ca"].key_and_chain))
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as raw:
        local = raw.getsockname()[1]
        with (
            contextlib.suppress(ssl.SSLError, ConnectionError),
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_all(tls) == b""
    logged_once(log, local, "client certificate rejected")

    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as raw:
        local = raw.getsockname()[1]
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_all(raw).startswith(b"HTTP/1.1 400 ")
    logged_once(log, local, "plain HTTP")
    no_tracebacks(log)
