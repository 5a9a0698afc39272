"""The matrix client's classification (SPEC section 4), against real failures.

No mocks: every exception comes from a real socket on 127.0.0.1 — the
reference server configured to refuse, or a few lines of stdlib socket code
that misbehave on purpose (close, reset, never answer, answer in plain text).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator

import pytest
from cryptography import x509
from OpenSSL import SSL

from harness.client import (
    DEADLINES_THREAD,
    ERROR,
    OK,
    REJECTED,
    SERVER_CERT_REJECTED,
    TLSClient,
    alert_name,
    classify_exception,
)
from harness.reference import ReferenceServer, make_adapter, tls_environ_app

SHORT = 0.5  # client timeout where a server is expected never to answer
WAIT = 5.0  # bound on every wait for a helper thread


@contextlib.contextmanager
def reference(
    certs, adapter: str = "builtin", server_cert: str = "server", app=tls_environ_app, **settings
) -> Iterator[str]:
    """The reference server on 127.0.0.1; yields its URL."""
    cred = certs[server_cert]
    settings.setdefault("client_CA", str(certs["ca"].cert))
    server = ReferenceServer(
        make_adapter(
            adapter,
            certificate=str(cred.cert),
            private_key=str(cred.key),
            handshake_timeout=WAIT,
            **settings,
        ),
        ("127.0.0.1", 0),
        app=app,
        numthreads=2,
    )
    with server:
        yield f"https://127.0.0.1:{server.port}/"


@contextlib.contextmanager
def raw_server(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP listener on 127.0.0.1 that hands its first connection to ``handle``."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(WAIT)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(WAIT)
            with contextlib.suppress(OSError):
                handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(WAIT)


def read_client_hello(conn: socket.socket) -> bytes:
    data = conn.recv(65536)
    assert data[:1] == b"\x16", data[:8]  # a TLS handshake record
    return data


def close_after_hello(conn: socket.socket) -> None:
    read_client_hello(conn)  # read it, so that close() sends FIN rather than RST


def reset_after_hello(conn: socket.socket) -> None:
    read_client_hello(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def plain_http_answer(conn: socket.socket) -> None:
    read_client_hello(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")


def client(certs, credential: str | None = None, timeout: float = WAIT) -> TLSClient:
    cred = certs[credential].key_and_chain if credential else None
    return TLSClient(certs["ca"].cert, cred, timeout=timeout)


def app_answering(status: str, body: bytes, content_type: str = "application/json"):
    def app(environ, start_response):
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    return app


# -- through TLSClient.get, as the matrix uses it ------------------------------------


@pytest.mark.parametrize("adapter", ["builtin", "pyopenssl"])
def test_served_client_is_ok_and_sees_the_environ(certs, adapter):
    with reference(certs, adapter, client_check="required") as url:
        attempt = client(certs, "localhost").get(url)
    assert (attempt.outcome, attempt.status, attempt.detail) == (OK, 200, "")
    assert attempt.environ["HTTPS"] == "on"
    assert attempt.environ["SSL_CLIENT_VERIFY"] == "SUCCESS"


def test_a_returned_get_leaves_no_thread_behind(certs):
    """A request starts no thread of its own: every deadline is kept by the one shared
    deadlines thread (harness.client.DEADLINES), so twenty requests start no other
    thread, and callers that count threads (the reference server's leak tests) see
    only that one besides their own."""
    with reference(certs, client_check="required") as url:
        tls_client = client(certs, "localhost")
        assert tls_client.get(url).outcome == OK
        after_first = others()
        for _ in range(20):
            assert tls_client.get(url).outcome == OK
            assert others() <= after_first


def others() -> set[int | None]:
    """Threads but the deadlines thread, which may end when idle and start again
    (tests/test_client_deadlines.py checks that there is only ever one)."""
    return {t.ident for t in threading.enumerate() if t.name != DEADLINES_THREAD}


def test_nothing_listening_is_an_error(certs):
    with socket.socket() as blocker:  # bound, never listening: the port refuses connections
        blocker.bind(("127.0.0.1", 0))
        port = blocker.getsockname()[1]
        attempt = client(certs).get(f"https://127.0.0.1:{port}/")
    assert attempt.outcome == ERROR, attempt.detail
    assert "refused" in attempt.detail.lower()


@pytest.mark.parametrize("bad", ["server-wrong-ca", "server-wrong-host"])
def test_untrusted_server_certificate_is_server_cert_rejected(certs, bad):
    with reference(certs, server_cert=bad, client_check="ignore", client_CA=None) as url:
        attempt = client(certs, "localhost").get(url)
    assert attempt.outcome == SERVER_CERT_REJECTED, attempt.detail


@pytest.mark.parametrize("adapter", ["builtin", "pyopenssl"])
@pytest.mark.parametrize(
    ("policy", "credential"),
    [
        ({"client_check": "required"}, None),  # no certificate: TLS 1.3 alert on first read
        ({"client_check": "required"}, "wrong-ca"),  # unknown CA alert
        ({"client_check": "optional"}, "expired"),  # certificate expired alert
        ({"client_check": "required", "client_check_host": True}, "wrong-host"),  # closed
    ],
    ids=["no-cert", "wrong-ca", "expired", "host-check"],
)
def test_server_refusing_the_client_is_rejected(certs, adapter, policy, credential):
    with reference(certs, adapter, **policy) as url:
        attempt = client(certs, credential).get(url)
    assert attempt.outcome == REJECTED, attempt.detail


def test_tcp_close_without_tls_is_rejected(certs):
    with raw_server(close_after_hello) as port:
        attempt = client(certs, "localhost").get(f"https://127.0.0.1:{port}/")
    assert attempt.outcome == REJECTED, attempt.detail


def test_tcp_reset_is_rejected(certs):
    with raw_server(reset_after_hello) as port:
        attempt = client(certs, "localhost").get(f"https://127.0.0.1:{port}/")
    assert attempt.outcome == REJECTED, attempt.detail


def test_server_that_never_answers_is_an_error(certs):
    # Listening, never accepting: the kernel completes the TCP handshake and holds the
    # ClientHello; nothing ever comes back.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        attempt = client(certs, "localhost", timeout=SHORT).get(f"https://127.0.0.1:{port}/")
    assert attempt.outcome == ERROR, attempt.detail
    assert "timed out" in attempt.detail.lower()


def test_plain_text_answer_to_tls_is_an_error(certs):
    """Not a refusal of the client: a server that does not speak TLS at all."""
    with raw_server(plain_http_answer) as port:
        attempt = client(certs, "localhost").get(f"https://127.0.0.1:{port}/")
    assert attempt.outcome == ERROR, attempt.detail


@pytest.mark.parametrize(
    ("app", "detail"),
    [
        (app_answering("500 Internal Server Error", b"{}"), "HTTP 500"),
        (app_answering("403 Forbidden", b"{}"), "HTTP 403"),
        (app_answering("200 OK", b"<html></html>", "text/html"), "not JSON"),
        (app_answering("200 OK", json.dumps([1, 2]).encode()), "not an object"),
    ],
    ids=["500", "403", "not-json", "json-list"],
)
def test_http_answers_other_than_the_apps_json_are_errors(certs, app, detail):
    with reference(certs, app=app, client_check="optional") as url:
        attempt = client(certs, "localhost").get(url)
    assert attempt.outcome == ERROR
    assert detail in attempt.detail


# -- classify_exception on exceptions raised by the stdlib directly ---------------------


def _tls_connect(certs, port: int, credential: str | None = None, timeout: float = WAIT):
    """A bare stdlib TLS client: handshake, send a request, read. Returns what it raised."""
    ctx = ssl.create_default_context(cafile=str(certs["ca"].cert))
    if credential:
        ctx.load_cert_chain(str(certs[credential].key_and_chain))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            tls.recv(1)
            tls.recv(65536)
    except OSError as exc:
        return exc
    return None


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].rstrip("/"))


def test_classifies_stdlib_certificate_verification_error(certs):
    with reference(certs, server_cert="server-wrong-ca", client_check="ignore") as url:
        exc = _tls_connect(certs, _port(url))
    assert isinstance(exc, ssl.SSLCertVerificationError)
    assert classify_exception(exc).outcome == SERVER_CERT_REJECTED


def test_classifies_stdlib_alert(certs):
    with reference(certs, "pyopenssl", client_check="required") as url:
        exc = _tls_connect(certs, _port(url), "wrong-ca")
    assert isinstance(exc, ssl.SSLError)
    assert exc.reason and "ALERT" in exc.reason, exc
    assert classify_exception(exc).outcome == REJECTED


def test_classifies_stdlib_eof_and_reset(certs):
    with raw_server(close_after_hello) as port:
        eof = _tls_connect(certs, port)
    with raw_server(reset_after_hello) as port:
        reset = _tls_connect(certs, port)
    assert isinstance(eof, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError)), eof
    assert isinstance(reset, (ConnectionResetError, ssl.SSLError)), reset
    assert classify_exception(eof).outcome == REJECTED
    assert classify_exception(reset).outcome == REJECTED


def test_classifies_stdlib_timeout_and_refusal(certs):
    with socket.create_server(("127.0.0.1", 0)) as silent:
        timeout = _tls_connect(certs, silent.getsockname()[1], timeout=SHORT)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        refused = _tls_connect(certs, blocker.getsockname()[1])
    assert isinstance(timeout, TimeoutError), timeout
    assert isinstance(refused, ConnectionRefusedError), refused
    assert classify_exception(timeout).outcome == ERROR
    assert classify_exception(refused).outcome == ERROR


def test_classification_keeps_the_text_for_people(certs):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        refused = _tls_connect(certs, blocker.getsockname()[1])
    attempt = classify_exception(refused)
    assert attempt.detail.startswith("ConnectionRefusedError: ")
    assert attempt.status is None and attempt.environ == {}


# -- refusal form: stage, form, alert; TLS version; advertised CA names (SPEC section 6) --


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_pins_the_tls_version(certs, tls):
    with reference(certs, client_check="optional") as url:
        attempt = TLSClient(certs["ca"].cert, tls=tls).get(url)
    assert attempt.outcome == OK, attempt.detail
    assert attempt.tls_version == f"TLSv{tls}"
    assert attempt.environ["SSL_PROTOCOL"] == f"TLSv{tls}"  # the server agrees
    assert (attempt.stage, attempt.form, attempt.alert) == (None, None, None)


def test_refuses_an_unknown_tls_version(certs):
    with pytest.raises(ValueError, match="tls must be one of"):
        TLSClient(certs["ca"].cert, tls="1.1")


@pytest.mark.parametrize(
    ("tls", "stage", "alert"),
    [("1.2", "handshake", "handshake_failure"), ("1.3", "first-read", "certificate_required")],
)
@pytest.mark.parametrize("adapter", ["builtin", "pyopenssl"])
def test_records_where_and_how_a_refusal_came(certs, adapter, tls, stage, alert):
    with reference(certs, adapter, client_check="required") as url:
        attempt = TLSClient(certs["ca"].cert, tls=tls).get(url)
    assert attempt.outcome == REJECTED, attempt.detail
    assert (attempt.stage, attempt.form, attempt.alert) == (stage, "alert", alert)
    assert attempt.tls_version == f"TLSv{tls}"  # the ServerHello came before the refusal


@pytest.mark.parametrize(
    ("handle", "form"), [(close_after_hello, "close"), (reset_after_hello, "reset")]
)
def test_close_and_reset_during_the_handshake(certs, handle, form):
    with raw_server(handle) as port:
        attempt = client(certs).get(f"https://127.0.0.1:{port}/")
    assert attempt.outcome == REJECTED, attempt.detail
    assert (attempt.stage, attempt.form, attempt.alert) == ("handshake", form, None)
    assert attempt.tls_version is None  # no ServerHello


def test_close_after_the_response_started_is_an_error(certs):
    """A body cut short: the form is recorded, but it is no refusal (SPEC section 4)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(certs["server"].cert), str(certs["server"].key))

    def truncated(conn: socket.socket) -> None:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(65536)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
            tls.unwrap()

    with raw_server(truncated) as port:
        attempt = client(certs).get(f"https://127.0.0.1:{port}/")
    assert attempt.outcome == ERROR, attempt.detail
    assert (attempt.stage, attempt.form) == ("response", "close")


@pytest.mark.parametrize(
    ("reason", "alert"),
    [
        ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "certificate_required"),
        ("SSLV3_ALERT_HANDSHAKE_FAILURE", "handshake_failure"),
        ("TLSV1_ALERT_UNKNOWN_CA", "unknown_ca"),
        ("SSLV3_ALERT_BAD_CERTIFICATE", "bad_certificate"),
        ("TLSV1_ALERT_PROTOCOL_VERSION", "protocol_version"),
        ("TLSV1_UNRECOGNIZED_NAME", "unrecognized_name"),
        ("UNEXPECTED_EOF_WHILE_READING", None),
        ("WRONG_VERSION_NUMBER", None),
    ],
)
def test_alert_names_come_from_openssl_reason_codes(reason, alert):
    assert alert_name(reason) == alert


def _subject(path) -> str:
    return x509.load_pem_x509_certificate(path.read_bytes()).subject.rfc4514_string()


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_reads_the_ca_names_a_server_advertises(certs, tls, tmp_path):
    """A bare pyOpenSSL server listing two CAs; the client reports both, in order."""
    bundle = tmp_path / "two-cas.pem"
    bundle.write_bytes(certs["ca"].cert.read_bytes() + certs["other-ca"].cert.read_bytes())
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.use_certificate_file(str(certs["server"].cert))
    ctx.use_privatekey_file(str(certs["server"].key))
    ctx.load_verify_locations(str(certs["ca"].cert))
    ctx.load_client_ca(str(bundle).encode())
    ctx.set_verify(SSL.VERIFY_PEER, lambda *args: args[-1])

    def serve(conn: socket.socket) -> None:
        conn.settimeout(None)  # pyOpenSSL wants a blocking socket; the client bounds it
        tls_conn = SSL.Connection(ctx, conn)
        tls_conn.set_accept_state()
        tls_conn.do_handshake()
        tls_conn.recv(65536)
        tls_conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        tls_conn.shutdown()

    with raw_server(serve) as port:
        attempt = TLSClient(certs["ca"].cert, tls=tls).get(f"https://127.0.0.1:{port}/")
    assert attempt.outcome == OK, attempt.detail
    assert attempt.ca_names == (_subject(certs["ca"].cert), _subject(certs["other-ca"].cert))


@pytest.mark.parametrize("adapter", ["builtin", "pyopenssl"])
def test_reference_adapters_advertise_no_ca_names(certs, adapter):
    """docs/refusals.md "CA names": both ask for a certificate and list no CA."""
    with reference(certs, adapter, client_check="optional") as url:
        asked = client(certs).get(url)
    with reference(certs, adapter, client_check="ignore") as url:
        not_asked = client(certs).get(url)
    assert (asked.outcome, not_asked.outcome) == (OK, OK)
    assert asked.ca_names == ()
    assert not_asked.ca_names is None  # no CertificateRequest at all
