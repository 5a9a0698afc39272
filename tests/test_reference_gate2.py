"""Hostile clients, round two (SPEC section 7, issue 20) against the reference server.

Real attacking clients on loopback, real handshakes, real certificates; the
assertions are on what the server does (status lines, log lines, where a
connection waits, idle workers), never on timing beyond generous deadlines.
Latency under attack is the resilience battery's to measure.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ctypes.util
import datetime as dt
import hashlib
import json
import logging
import re
import shutil
import socket
import ssl
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness import hostile
from harness.client import TLSClient
from harness.reference import ReferenceServer, make_adapter, tls_environ_app
from harness.reference.errors import ConfigFileError
from harness.reference.gate import BODY, DELIVER, HEAD
from tests.polling import IO_TIMEOUT, wait_for

ADAPTERS = ("builtin", "pyopenssl")


# -- the CA-file check, linear in the file (SPEC section 8) --------------------------------


def _self_signed(index: int, key, *, ca: bool | None, key_usage: x509.KeyUsage | None) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"filler {index}")])
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(index + 1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


FILLERS = 300  # several batches of the CA search (64 a batch)


@pytest.fixture(scope="module")
def bundles(certs, tmp_path_factory) -> dict[str, str]:
    """CA files: many certificates that X509_check_ca calls no CA, with or without the
    real CA last, and with a corrupt block last."""
    key = ec.generate_private_key(ec.SECP256R1())
    # A third each: CA:TRUE with a keyUsage without keyCertSign, CA:FALSE, no extensions
    # (a v3 certificate without basicConstraints or keyUsage: no CA, yet only OpenSSL
    # can say so, so these reach the batched X509_check_ca).
    fillers = b"".join(
        _self_signed(
            i,
            key,
            ca=(True, False, None)[i % 3],
            key_usage=(_usage(cert_sign=False), None)[i % 3 == 2],
        )
        for i in range(FILLERS)
    )
    corrupt = (
        b"-----BEGIN CERTIFICATE-----\n"
        + base64.encodebytes(b"\x30\x03\x02\x01\x01 not DER")
        + b"-----END CERTIFICATE-----\n"
    )
    ca_pem = certs["ca"].cert.read_bytes()
    files = {
        "no-ca": fillers,
        "ca-last": fillers + ca_pem,
        "corrupt-last": ca_pem + fillers + corrupt,
        # No basicConstraints, keyUsage keyCertSign: X509_check_ca says CA (4).
        "key-usage-only": _self_signed(FILLERS, key, ca=None, key_usage=_usage(cert_sign=True)),
    }
    tmp = tmp_path_factory.mktemp("bundles")
    for name, data in files.items():
        (tmp / f"{name}.pem").write_bytes(data)
    return {name: str(tmp / f"{name}.pem") for name in files}


def _adapter(certs, adapter: str, client_ca: str):
    return make_adapter(
        adapter,
        certificate=str(certs["server"].cert),
        private_key=str(certs["server"].key),
        client_CA=client_ca,
        client_check="required",
    )


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_ca_found_after_many_non_ca_certificates(certs, bundles, adapter):
    """The only CA sits after 300 certificates that are no CA: the server starts
    and verifies a client of that CA."""
    with ReferenceServer(_adapter(certs, adapter, bundles["ca-last"]), numthreads=2) as server:
        client = TLSClient(certs["ca"].cert, certs["localhost"].key_and_chain, timeout=IO_TIMEOUT)
        try:
            attempt = client.get(server.url)
        finally:
            client.close()
    assert attempt.outcome == "ok" and attempt.status == 200, attempt.detail


def test_no_ca_among_many_is_refused(certs, bundles):
    with pytest.raises(ConfigFileError, match="no CA certificate") as caught:
        _adapter(certs, "builtin", bundles["no-ca"])
    assert bundles["no-ca"] in str(caught.value) and "\n" not in str(caught.value)


def test_corrupt_block_after_many_is_named_by_line(certs, bundles):
    with open(bundles["corrupt-last"], "rb") as fh:
        lines = fh.read().splitlines()
    last_begin = max(i for i, line in enumerate(lines) if line.startswith(b"-----BEGIN")) + 1
    with pytest.raises(ConfigFileError, match=f"corrupt certificate at line {last_begin} "):
        _adapter(certs, "pyopenssl", bundles["corrupt-last"])


def test_key_usage_cert_sign_without_basic_constraints_is_a_ca(certs, bundles):
    """X509_check_ca's rule 4 (OpenSSL crypto/x509/v3_purp.c): kept."""
    _adapter(certs, "builtin", bundles["key-usage-only"])


# -- servers, clients, logs ------------------------------------------------------------------

WORKERS = 2
ATTACKERS = 8  # four times the pool: each one on a worker would starve it
LOGGER = "mtls_matrix.reference"


def body_app(environ, start_response):
    """Reads the whole body (Cheroot's wsgi.input: Content-Length or chunked) and says
    how long it was: proves the worker got exactly the body the client sent. A GET
    gets the reference app's answer (the TLS environ as JSON)."""
    if environ["REQUEST_METHOD"] == "GET":
        return tls_environ_app(environ, start_response)
    body = environ["wsgi.input"].read()
    text = f"{len(body)} {hashlib.sha256(body).hexdigest()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))])
    return [text]


@pytest.fixture(scope="module")
def servers(certs) -> Iterator[Callable[..., ReferenceServer]]:
    """server(adapter, **options) -> a running `required` server with 2 workers whose
    app reads the body, one per distinct arguments per module."""
    started: dict[tuple, ReferenceServer] = {}

    def get(adapter: str, request_timeout: float = 10.0, **options) -> ReferenceServer:
        key = (adapter, request_timeout, tuple(sorted(options.items())))
        if key not in started:
            started[key] = ReferenceServer(
                make_adapter(
                    adapter,
                    certificate=str(certs["server"].cert),
                    private_key=str(certs["server"].key),
                    client_CA=str(certs["ca"].cert),
                    client_check="required",
                ),
                ("127.0.0.1", 0),
                body_app,
                numthreads=WORKERS,
                request_timeout=request_timeout,
                **options,
            ).start()
        return started[key]

    yield get
    for server in started.values():
        server.stop()


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    return caplog


def no_tracebacks(caplog) -> None:
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert not [r for r in caplog.records if "Traceback" in r.getMessage()]


def refusals(caplog, port: int) -> list[str]:
    pattern = re.compile(rf":{port}\b")
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and pattern.search(r.getMessage())
    ]


def tls_connect(certs, server: ReferenceServer, **context) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(certs["ca"].cert))
    ctx.load_cert_chain(str(certs["localhost"].key_and_chain))
    for name, value in context.items():
        setattr(ctx, name, value)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT)
    return ctx.wrap_socket(sock, server_hostname="127.0.0.1")


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (EOF, reset or a TLS alert)."""
    sock.settimeout(IO_TIMEOUT)
    data = b""
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    sock.settimeout(IO_TIMEOUT)
    data = b""
    for _ in range(1000):  # bounded: each pass reads at least one byte or ends
        if marker in data:
            break
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def good_get(certs, server: ReferenceServer):
    client = TLSClient(certs["ca"].cert, certs["localhost"].key_and_chain, timeout=IO_TIMEOUT)
    try:
        return client.get(server.url)
    finally:
        client.close()


# -- 1. Expect: 100-continue and chunked bodies, read in the gate ----------------------------

EXPECT_HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n"
CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
CHUNKED_EXPECT_HEAD = (
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
)


@pytest.mark.parametrize(
    "head, sent",
    [
        (EXPECT_HEAD, b""),
        (CHUNKED_EXPECT_HEAD, b""),
        (CHUNKED_HEAD, b"10\r\n0123"),  # part of the first chunk, then nothing
        # Spelt as Cheroot still reads them: a space before the colon, a folded value.
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n", b""),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1000\r\n\r\n", b""),
    ],
    ids=["expect", "chunked-expect", "chunked-partial", "te-space-colon", "cl-plus-sign"],
)
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_body_that_never_comes_holds_no_worker(certs, servers, log, adapter, head, sent):
    """8 connections send a head announcing a body, then nothing: they wait in the gate
    (which answers 100 Continue where asked), no worker waits, a good client is served."""
    server = servers(adapter)
    attackers = []
    try:
        for _ in range(ATTACKERS):
            tls = tls_connect(certs, server)
            attackers.append(tls)
            tls.sendall(head + sent)
        assert wait_for(lambda: server.gate.census()[BODY] == ATTACKERS), server.gate.census()
        if b"Expect" in head:
            for tls in attackers:
                assert read_until(tls, b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        assert server.workers.idle == WORKERS
        attempt = good_get(certs, server)
        assert attempt.outcome == "ok" and attempt.status == 200, attempt.detail
    finally:
        for tls in attackers:
            tls.close()
    no_tracebacks(log)


def _exchange(certs, server, head: bytes, body: bytes, *, expect: bool) -> bytes:
    with tls_connect(certs, server) as tls:
        tls.sendall(head)
        if expect:
            assert read_until(tls, b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        tls.sendall(body)
        return read_all(tls)


def _digest(body: bytes) -> bytes:
    return f"{len(body)} {hashlib.sha256(body).hexdigest()}\n".encode()


PAYLOAD = bytes(range(256)) * 300  # 76,800 bytes


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_expect_continue_body_reaches_the_app_whole(certs, servers, log, adapter):
    server = servers(adapter)
    head = (
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\n"
        b"Content-Length: %d\r\n\r\n" % len(PAYLOAD)
    )
    answer = _exchange(certs, server, head, PAYLOAD, expect=True)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(_digest(PAYLOAD)), answer[-200:]
    no_tracebacks(log)


def _chunked(data: bytes, size: int) -> bytes:
    out = b""
    for i in range(0, len(data), size):
        part = data[i : i + size]
        out += b"%x;ext=1\r\n%s\r\n" % (len(part), part)
    return out + b"0\r\nX-Trailer: yes\r\n\r\n"


@pytest.mark.parametrize("expect", [False, True], ids=["plain", "expect"])
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_chunked_body_reaches_the_app_whole(certs, servers, log, adapter, expect):
    """Chunks with extensions and a trailer: the app reads exactly the data."""
    server = servers(adapter)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n"
    head += b"Expect: 100-continue\r\n\r\n" if expect else b"\r\n"
    answer = _exchange(certs, server, head, _chunked(PAYLOAD, 1000), expect=expect)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(_digest(PAYLOAD)), answer[-200:]
    no_tracebacks(log)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_chunked_then_keep_alive(certs, servers, adapter):
    """After a chunked request the same connection serves the next one."""
    server = servers(adapter)
    with tls_connect(certs, server) as tls:
        tls.sendall(CHUNKED_HEAD + _chunked(b"abc", 2))
        first = read_until(tls, _digest(b"abc"))
        tls.sendall(CHUNKED_HEAD.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        tls.sendall(b"0\r\n\r\n")
        second = read_all(tls)
    assert first.startswith(b"HTTP/1.1 200 ") and first.endswith(_digest(b"abc")), first
    assert second.startswith(b"HTTP/1.1 200 ") and second.endswith(_digest(b"")), second


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        (b"zz\r\n", b"400", "bad chunk size"),
        (b"3\r\nabcX\r\n", b"400", "not followed by CRLF"),
        (b"%x\r\n" % (2 * 1024 * 1024), b"413", "over the bound"),
        # 1 MiB+ counted as Cheroot counts (size lines too) in one-byte chunks
        (b"1\r\na\r\n" * (300 * 1024), b"413", "over the bound"),
    ],
    ids=["bad-size", "no-crlf", "one-huge-chunk", "many-small-chunks"],
)
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_chunked_body_refused_in_the_gate(certs, servers, log, adapter, body, status, fragment):
    server = servers(adapter)
    with tls_connect(certs, server) as tls:
        port = tls.getsockname()[1]
        tls.sendall(CHUNKED_HEAD)
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            tls.sendall(body)
        answer = read_all(tls)
    assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:100]
    assert wait_for(lambda: refusals(log, port))
    lines = refusals(log, port)
    assert len(lines) == 1 and fragment in lines[0], lines
    assert server.workers.idle == WORKERS
    no_tracebacks(log)


# -- 3. a response the client does not read holds no worker ----------------------------------

PIPELINED = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2000


def pipeline_and_never_read(
    certs, server: ReferenceServer
) -> tuple[ssl.SSLSocket, threading.Thread]:
    """A client with a 4 KiB receive window (set before connecting, so the server's
    answers soon have nowhere to go) that pipelines 2,000 GETs and reads nothing."""
    ctx = ssl.create_default_context(cafile=str(certs["ca"].cert))
    ctx.load_cert_chain(str(certs["localhost"].key_and_chain))
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(IO_TIMEOUT)
    raw.connect(("127.0.0.1", server.port))
    tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1")

    def send() -> None:
        with contextlib.suppress(OSError):  # the server drops it, in the end
            tls.sendall(PIPELINED)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    return tls, sender


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_pipelined_requests_never_read_hold_no_worker(certs, servers, log, adapter):
    """More connections than workers pipeline 2,000 GETs each and never read: their
    answers wait in the gate, workers go back to idle, a good client is served; at the
    deadline each is dropped with one line and no traceback."""
    server = servers(adapter, request_timeout=4.0)
    attackers = [pipeline_and_never_read(certs, server) for _ in range(WORKERS + 1)]
    ports = [tls.getsockname()[1] for tls, _ in attackers]
    try:
        # Where the answers wait: in the gate; the workers are free.
        assert wait_for(
            lambda: server.gate.census()[DELIVER] == len(attackers),
            timeout=30,  # 6,000 requests go through 2 workers first, on a loaded machine
        ), server.gate.census()
        assert wait_for(lambda: server.workers.idle == WORKERS), server.workers.idle
        attempt = good_get(certs, server)
        assert attempt.outcome == "ok" and attempt.status == 200, attempt.detail
        assert wait_for(lambda: all(refusals(log, port) for port in ports), timeout=30)
    finally:
        for tls, sender in attackers:
            tls.close()
            sender.join(IO_TIMEOUT)
    for port in ports:
        lines = refusals(log, port)
        assert len(lines) == 1 and "did not read its response" in lines[0], lines
    no_tracebacks(log)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_slow_reader_is_served_without_a_worker(certs, servers, log, adapter):
    """A client that reads its pipelined answers slowly gets every one of them, while
    the workers are idle between its turns."""
    server = servers(adapter)
    with tls_connect(certs, server) as tls:
        tls.sendall(
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 49
            + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert wait_for(lambda: server.workers.idle == WORKERS)
        answer = read_all(tls)
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 50
    no_tracebacks(log)


# -- 5. connection conduct: close_notify, resumption by session id ---------------------------


def _request(certs, server, request: bytes, **context) -> tuple[bytes, BaseException | None]:
    """The answer, and how the stream ended: None for a TLS close_notify, else the error
    (ragged EOFs are reported, not suppressed)."""
    ctx = ssl.create_default_context(cafile=str(certs["ca"].cert))
    ctx.load_cert_chain(str(certs["localhost"].key_and_chain))
    for name, value in context.items():
        setattr(ctx, name, value)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT)
    with ctx.wrap_socket(sock, server_hostname="127.0.0.1", suppress_ragged_eofs=False) as tls:
        tls.sendall(request)
        data = b""
        try:
            while chunk := tls.recv(65536):
                data += chunk
        except (OSError, ssl.SSLError) as exc:
            return data, exc
    return data, None


VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
ANSWERS = {
    "200": b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "408": b"GET / HTTP/1.1\r\nHost: x\r\n",  # never ends
    "431": b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (70 * 1024) + b"\r\n\r\n",
    "413": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n"
    % (2 * 1024 * 1024),
}


@pytest.mark.parametrize("status", ANSWERS)
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_every_answer_ends_with_close_notify(certs, servers, adapter, version, status):
    server = servers(adapter, request_timeout=1.0)
    tls_version = VERSIONS[version]
    answer, ending = _request(
        certs, server, ANSWERS[status], minimum_version=tls_version, maximum_version=tls_version
    )
    assert answer.startswith(b"HTTP/1.1 " + status.encode() + b" "), answer[:100]
    assert ending is None, f"no close_notify: {ending!r}"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.parametrize("flag", ["-tls1_2", "-tls1_3"])
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_openssl_s_client_sees_no_unexpected_eof(certs, servers, adapter, flag):
    server = servers(adapter)
    result = subprocess.run(
        [
            "openssl",
            "s_client",
            flag,
            "-connect",
            f"127.0.0.1:{server.port}",
            "-CAfile",
            str(certs["ca"].cert),
            "-cert",
            str(certs["localhost"].cert),
            "-key",
            str(certs["localhost"].key),
            "-ign_eof",
            "-quiet",
        ],
        input=ANSWERS["200"],
        capture_output=True,
        timeout=IO_TIMEOUT * 2,
    )
    assert b"HTTP/1.1 200 OK" in result.stdout, result.stdout[:200]
    assert b"unexpected eof" not in result.stderr.lower(), result.stderr.decode()


def _environ(answer: bytes) -> dict:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_tls12_session_resumed_by_id_with_the_same_identity(certs, servers, adapter):
    """No tickets: only the server's session cache can resume it (as Apache does)."""
    server = servers(adapter)
    ctx = ssl.create_default_context(cafile=str(certs["ca"].cert))
    ctx.load_cert_chain(str(certs["localhost"].key_and_chain))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_TICKET
    seen = []
    session = None
    for _ in range(2):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT)
        with ctx.wrap_socket(sock, server_hostname="127.0.0.1", session=session) as tls:
            tls.sendall(ANSWERS["200"])
            answer = read_all(tls)
            seen.append((tls.session_reused, _environ(answer)))
            session = tls.session
    (first_reused, first), (reused, again) = seen
    assert not first_reused and reused, "the session was not resumed by its id"
    client_vars = {k: v for k, v in first.items() if k.startswith("SSL_CLIENT_")}
    assert client_vars["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert {k: v for k, v in again.items() if k.startswith("SSL_CLIENT_")} == client_vars


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_openssl_s_client_resumes_by_session_id(certs, servers, adapter, tmp_path):
    server = servers(adapter)
    sess = tmp_path / "session.pem"
    base = [
        "openssl",
        "s_client",
        "-tls1_2",
        "-no_ticket",
        "-connect",
        f"127.0.0.1:{server.port}",
        "-CAfile",
        str(certs["ca"].cert),
        "-cert",
        str(certs["localhost"].cert),
        "-key",
        str(certs["localhost"].key),
        "-ign_eof",
    ]
    outputs = []
    for extra in (["-sess_out", str(sess)], ["-sess_in", str(sess)]):
        result = subprocess.run(
            base + extra, input=ANSWERS["200"], capture_output=True, timeout=IO_TIMEOUT * 2
        )
        outputs.append(result.stdout)
    assert b"\nNew, " in outputs[0], outputs[0][:300]
    assert b"\nReused, " in outputs[1], outputs[1][:300]
    assert b"HTTP/1.1 200 OK" in outputs[1]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_session_never_crosses_policies(certs, servers, adapter):
    """A session from one server (policy) offered to another is not resumed there."""
    first, second = servers(adapter), servers(adapter, request_timeout=9.0)
    ctx = ssl.create_default_context(cafile=str(certs["ca"].cert))
    ctx.load_cert_chain(str(certs["localhost"].key_and_chain))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_TICKET
    sock = socket.create_connection(("127.0.0.1", first.port), timeout=IO_TIMEOUT)
    with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
        tls.sendall(ANSWERS["200"])
        read_all(tls)
        session = tls.session
    sock = socket.create_connection(("127.0.0.1", second.port), timeout=IO_TIMEOUT)
    with ctx.wrap_socket(sock, server_hostname="127.0.0.1", session=session) as tls:
        tls.sendall(ANSWERS["200"])
        answer = read_all(tls)
        assert not tls.session_reused
    assert answer.startswith(b"HTTP/1.1 200 ")


# -- 2. post-handshake floods: cut at a budget ---------------------------------------------


def blocking_connection(server: ReferenceServer) -> socket.socket:
    """A blocking socket (OpenSSL's own I/O needs one) whose reads and writes the kernel
    still bounds (SO_RCVTIMEO, SO_SNDTIMEO: IO_TIMEOUT seconds)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT)
    sock.settimeout(None)
    bound = struct.pack("ll", int(IO_TIMEOUT), 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, bound)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, bound)
    return sock


class LibSSLClient:
    """A TLS 1.3 client that is OpenSSL itself (libssl through ctypes), for the one
    thing no Python binding offers: SSL_key_update (RFC 8446 section 4.6.3)."""

    def __init__(self, certs, server: ReferenceServer) -> None:
        name = ctypes.util.find_library("ssl")
        if name is None:
            pytest.skip("libssl not found")
        lib = ctypes.CDLL(name)
        ptr = ctypes.c_void_p
        lib.TLS_client_method.restype = ptr
        lib.SSL_CTX_new.argtypes, lib.SSL_CTX_new.restype = [ptr], ptr
        lib.SSL_CTX_free.argtypes = [ptr]
        lib.SSL_CTX_ctrl.argtypes = [ptr, ctypes.c_int, ctypes.c_long, ptr]
        lib.SSL_CTX_use_certificate_chain_file.argtypes = [ptr, ctypes.c_char_p]
        lib.SSL_CTX_use_PrivateKey_file.argtypes = [ptr, ctypes.c_char_p, ctypes.c_int]
        lib.SSL_new.argtypes, lib.SSL_new.restype = [ptr], ptr
        lib.SSL_free.argtypes = [ptr]
        for fn in ("SSL_connect", "SSL_do_handshake"):
            getattr(lib, fn).argtypes = [ptr]
        lib.SSL_set_fd.argtypes = [ptr, ctypes.c_int]
        lib.SSL_key_update.argtypes = [ptr, ctypes.c_int]
        lib.SSL_write.argtypes = [ptr, ctypes.c_char_p, ctypes.c_int]
        lib.SSL_read.argtypes = [ptr, ctypes.c_char_p, ctypes.c_int]
        self.lib = lib
        self.ctx = lib.SSL_CTX_new(lib.TLS_client_method())
        lib.SSL_CTX_ctrl(self.ctx, 123, 0x0304, None)  # SSL_CTX_set_min_proto_version: 1.3
        assert (
            lib.SSL_CTX_use_certificate_chain_file(self.ctx, str(certs["localhost"].cert).encode())
            == 1
        )
        assert (
            lib.SSL_CTX_use_PrivateKey_file(self.ctx, str(certs["localhost"].key).encode(), 1) == 1
        )
        self.sock = blocking_connection(server)
        self.ssl = lib.SSL_new(self.ctx)
        lib.SSL_set_fd(self.ssl, self.sock.fileno())
        assert lib.SSL_connect(self.ssl) == 1

    def key_updates(self, count: int) -> int:
        """Send up to ``count`` KeyUpdates (update_not_requested); how many went out."""
        for sent in range(count):
            if (
                self.lib.SSL_key_update(self.ssl, 0) != 1
                or self.lib.SSL_do_handshake(self.ssl) != 1
            ):
                return sent
        return count

    def get(self) -> bytes:
        request = ANSWERS["200"]
        assert self.lib.SSL_write(self.ssl, request, len(request)) == len(request)
        buf = ctypes.create_string_buffer(65536)
        data = b""
        for _ in range(100):  # bounded: until the server closes
            n = self.lib.SSL_read(self.ssl, buf, len(buf))
            if n <= 0:
                break
            data += buf.raw[:n]
        return data

    def close(self) -> None:
        self.lib.SSL_free(self.ssl)
        self.lib.SSL_CTX_free(self.ctx)
        self.sock.close()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_keyupdate_flood_is_cut_at_the_budget(certs, servers, log, adapter):
    server = servers(adapter)
    client = LibSSLClient(certs, server)
    port = client.sock.getsockname()[1]
    try:
        client.key_updates(100_000)  # stops when the server has dropped it
        assert wait_for(lambda: refusals(log, port))
    finally:
        client.close()
    lines = refusals(log, port)
    assert len(lines) == 1 and "post-handshake TLS messages" in lines[0], lines
    attempt = good_get(certs, server)
    assert attempt.outcome == "ok" and attempt.status == 200, attempt.detail
    assert wait_for(lambda: server.workers.idle == WORKERS)
    no_tracebacks(log)


STREAM = 1_000_000  # KeyUpdates, about 30 MB: more than loopback's socket buffers hold


FLOODS = 6  # more floods than workers, at once


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_many_keyupdate_streams_at_once_are_each_cut(certs, servers, log, adapter):
    """Several never-pausing KeyUpdate streams at once (each OpenSSL on its own thread):
    every one is cut with its own line, before its stream ends, a good client is served
    while they stream, and every worker is idle afterwards. (When the budget only shut
    the socket for reading, Linux still returned the input that kept coming: OpenSSL
    read on, the gate thread stayed with one stream, and the good client timed out.)"""
    server = servers(adapter)
    clients = [LibSSLClient(certs, server) for _ in range(FLOODS)]
    ports = [c.sock.getsockname()[1] for c in clients]
    sent: dict[int, int] = {}
    threads = [
        threading.Thread(target=lambda c=c: sent.update({id(c): c.key_updates(STREAM)}))
        for c in clients
    ]
    try:
        for thread in threads:
            thread.start()
        attempt = good_get(certs, server)
        for thread in threads:
            thread.join(IO_TIMEOUT * 2)
        assert wait_for(lambda: all(refusals(log, port) for port in ports))
    finally:
        for client in clients:  # ends a write still blocked, before OpenSSL's objects go
            with contextlib.suppress(OSError):
                client.sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(IO_TIMEOUT * 2)
        for client in clients:
            client.close()
    assert attempt.outcome == "ok" and attempt.status == 200, attempt.detail
    assert len(sent) == FLOODS and all(n < STREAM for n in sent.values()), sent
    for port in ports:
        lines = refusals(log, port)
        assert len(lines) == 1 and "post-handshake TLS messages" in lines[0], lines
    assert wait_for(lambda: server.workers.idle == WORKERS)
    no_tracebacks(log)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_renegotiation_streams_are_each_cut_in_one_line(certs, servers, log, adapter):
    """The battery's renegotiation flood (TLS 1.2 ClientHello after ClientHello, each
    refused with no_renegotiation): each connection is cut at the budget with its own
    line and leaves the gate. (The stdlib's read said want-read on the reset socket,
    which polls readable: the connection stayed in the gate, stepped again and again,
    and was closed without a line once the client went.)"""
    server = servers(adapter)

    def lines() -> list[str]:  # this test's log lines (an attacker's port may be gone)
        return [r.getMessage() for r in log.records if r.name == LOGGER]

    with hostile.run_attackers(
        hostile.KINDS["renegotiation-flood"],
        ("127.0.0.1", server.port),
        3,
        credential=certs["localhost"].key_and_chain,
        hold_s=IO_TIMEOUT,
    ):
        assert wait_for(lambda: len(lines()) >= 3)
        assert wait_for(lambda: server.gate.census()[HEAD] == 0)
        attempt = good_get(certs, server)
    assert attempt.outcome == "ok" and attempt.status == 200, attempt.detail
    assert len(lines()) == 3, lines()
    assert all("refused: sent over 32 post-handshake TLS messages" in x for x in lines()), lines()
    assert len({x.split(" refused:")[0] for x in lines()}) == 3, lines()  # one per client
    no_tracebacks(log)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_few_keyupdates_are_served(certs, servers, log, adapter):
    """Below the budget a KeyUpdate is what TLS 1.3 allows: the request is served."""
    server = servers(adapter)
    client = LibSSLClient(certs, server)
    try:
        assert client.key_updates(5) == 5
        answer = client.get()
    finally:
        client.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
    no_tracebacks(log)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_renegotiation_attempt_is_refused_in_one_line(certs, servers, log, adapter):
    """A TLS 1.2 renegotiation from pyOpenSSL's client: the server refuses it
    (client-initiated renegotiation is off in OpenSSL 3: a no_renegotiation alert),
    the client gives up (handshake_failure), one line, no traceback. OpenSSL's
    client cannot go on after that, so a flood on one connection needs a client of
    one's own: the budget that cuts KeyUpdates counts renegotiation ClientHellos too."""
    from OpenSSL import SSL

    server = servers(adapter)
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    ctx.use_certificate_chain_file(str(certs["localhost"].cert))
    ctx.use_privatekey_file(str(certs["localhost"].key))
    sock = blocking_connection(server)
    port = sock.getsockname()[1]
    conn = SSL.Connection(ctx, sock)
    conn.set_connect_state()
    conn.do_handshake()
    try:
        conn.renegotiate()
        with contextlib.suppress(SSL.Error):
            conn.do_handshake()
            conn.recv(1024)
        assert wait_for(lambda: refusals(log, port))
    finally:
        sock.close()
    lines = refusals(log, port)
    assert len(lines) == 1 and "handshake failure" in lines[0].lower().replace("_", " "), lines
    attempt = good_get(certs, server)
    assert attempt.outcome == "ok" and attempt.status == 200, attempt.detail
    no_tracebacks(log)
