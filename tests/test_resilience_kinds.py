"""The round-two hostile kinds (issue 20, SPEC section 7's last item) send what they say.

Each is checked against a loopback listener written here (a stdlib ``ssl`` server that
asks for the matrix's client certificates) by what it received or could not deliver: the
request heads and what never followed them, thousands of pipelined requests and a
server whose writes block because nobody reads, a reader that takes 4 KiB and then
waits its pace, KeyUpdate records that OpenSSL's server accepts one after another (each
under the next keys), renegotiation ClientHellos that OpenSSL's server recognises and
refuses one by one. Trickles and paces are checked with a pace far longer than the test
or with none, never by timing. One short battery run against the reference server
proves the kinds run end to end and land in ``run.resilience`` and the report rows.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import select
import socket
import ssl
import struct
import termios
import threading

import pytest

import reports
from harness import hostile
from harness.hostile import libssl
from harness.hostile.records import KeyUpdates, OpenSSLClient
from harness.hostile.request import PIPELINED, RECEIVE_BUFFER
from matrix import resilience
from reports import resilience as report_rows
from tests.polling import wait_for
from tests.test_reports_data import make_case, results
from tests.test_resilience import (
    LONG_PACE,
    WAIT,
    Listener,
    attacking,
    read_all,
    read_exactly,
    server_context,
    still_open,
    tls_accept,
)

ROUND_TWO = (
    "expect-then-silence",
    "chunked-then-silence",
    "pipeline-and-never-read",
    "slow-reader",
    "key-update-flood",
    "renegotiation-flood",
)
LIMIT = 64 << 20  # bytes a server writes at most in these tests: a reading client takes them all
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def read_head(tls: ssl.SSLSocket) -> tuple[list[bytes], dict[bytes, bytes], bytes]:
    """(request line + field lines, fields by lower-case name, bytes after the head)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(4096)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    return lines, fields, rest


def test_the_round_two_kinds_are_declared():
    assert set(ROUND_TWO) <= set(hostile.KINDS)
    for name in ROUND_TWO:
        assert hostile.KINDS[name].presents_certificate  # each needs the handshake done


def test_expect_then_silence_never_sends_the_body_it_announced(certs):
    with attacking("expect-then-silence", certs) as (listener, attacker, _):
        tls = tls_accept(listener, certs)
        lines, fields, rest = read_head(tls)
        assert lines[0] == b"POST / HTTP/1.1"
        assert fields[b"expect"] == b"100-continue" and int(fields[b"content-length"]) > 0
        assert rest == b""
        tls.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")  # the go-ahead it asked for
        assert attacker.in_position.wait(WAIT)
        assert still_open(tls)
        attacker.release.set()
        attacker.leave()
        data, _ = read_all(tls)
    assert data == b""  # no body, not even after the 100 Continue


def test_chunked_then_silence_never_sends_a_chunk(certs):
    with attacking("chunked-then-silence", certs) as (listener, attacker, _):
        tls = tls_accept(listener, certs)
        lines, fields, rest = read_head(tls)
        assert lines[0] == b"POST / HTTP/1.1"
        assert fields[b"transfer-encoding"] == b"chunked" and b"content-length" not in fields
        assert rest == b""
        assert attacker.in_position.wait(WAIT)
        assert still_open(tls)
        attacker.release.set()
        attacker.leave()
        data, _ = read_all(tls)
    assert data == b""  # not even the last chunk


def read_pipelined(tls: ssl.SSLSocket) -> bytes:
    data = b""
    while data.count(b"\r\n\r\n") < PIPELINED:
        chunk = tls.recv(65536)
        assert chunk, "EOF before every pipelined request arrived"
        data += chunk
    return data


def write_until_blocked(tls: ssl.SSLSocket) -> int:
    """Write until a write stays blocked for a second (or ``LIMIT``): the bytes written."""
    tls.setblocking(False)
    chunk, written = b"x" * 16384, 0
    try:
        while written < LIMIT:
            try:
                written += tls.send(chunk)
            except (ssl.SSLWantWriteError, BlockingIOError):
                _, writable, _ = select.select([], [tls], [], 1.0)  # a deadline, not a pace
                if not writable:
                    return written
    finally:
        tls.settimeout(WAIT)
    return written


def unread(sock: socket.socket) -> int:
    """Bytes in the socket's receive queue that its owner has not read (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(sock, termios.FIONREAD, b"\0\0\0\0"))[0]


def test_pipeline_and_never_read_pipelines_thousands_and_reads_nothing(certs):
    with attacking("pipeline-and-never-read", certs) as (listener, attacker, _):
        tls = tls_accept(listener, certs)
        assert read_pipelined(tls) == REQUEST * PIPELINED
        assert attacker.in_position.wait(WAIT)
        handshake = attacker.received  # what it read of the handshake, and nothing since
        assert attacker.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) <= 4 * RECEIVE_BUFFER
        written = write_until_blocked(tls)
        assert written < LIMIT  # nobody reads: the server's writes block
        assert wait_for(lambda: unread(attacker.sock) > 0)  # it arrived, and lies there
        assert attacker.received == handshake and attacker.messages == PIPELINED
        assert still_open(tls)


def test_slow_reader_reads_4_kib_then_waits_its_pace(certs):
    options = {"read_pace_s": LONG_PACE}
    with attacking("slow-reader", certs, **options) as (listener, attacker, _):
        tls = tls_accept(listener, certs)
        assert read_pipelined(tls) == REQUEST * PIPELINED
        written = write_until_blocked(tls)
        assert written < LIMIT  # one read of 4 KiB, then the pace: the server's writes block
        # One read (of at most READ_SIZE bytes, the session tickets and maybe some of the
        # answers, depending on when it came), then the 600 s pace. ``received`` also
        # holds the handshake's bytes, so it says nothing about the reads by itself.
        assert wait_for(lambda: attacker.paced_reads > 0)
        assert attacker.paced_reads == 1


def test_slow_reader_without_pace_reads_everything(certs):
    with attacking("slow-reader", certs, read_pace_s=0.0) as (listener, attacker, _):
        tls = tls_accept(listener, certs)
        read_pipelined(tls)
        tls.sendall(b"x" * (1 << 20))
        assert wait_for(lambda: attacker.received >= 1 << 20)  # plus the records' overhead


def tls13_server(certs) -> ssl.SSLContext:
    context = server_context(certs)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def server_over_bio(
    conn: socket.socket, context: ssl.SSLContext
) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
    """A server handshake over ``conn`` through MemoryBIOs; the records after it stay ours."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)
    while True:
        try:
            tls.do_handshake()
            conn.sendall(outgoing.read())
            return tls, incoming, outgoing
        except ssl.SSLWantReadError:
            conn.sendall(outgoing.read())
            chunk = conn.recv(65536)
            assert chunk, "EOF in the handshake"
            incoming.write(chunk)


def swallowed(tls: ssl.SSLObject) -> bool:
    """True when the server read every record fed so far and found no data in them."""
    try:
        tls.read(65536)
    except ssl.SSLWantReadError:
        return True
    return False


def test_key_updates_rekey_as_rfc_8446_says(certs):
    """OpenSSL's server takes 1,000 KeyUpdates, then data under the 1,001st keys."""
    listener = Listener()
    client = OpenSSLClient(certs["localhost"].key_and_chain, "localhost", tls13=True)
    received: dict[str, bytes] = {}

    def serve() -> None:
        with tls13_server(certs).wrap_socket(listener.accept(), server_side=True) as tls:
            received["data"] = tls.recv(100)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    attacker = hostile.Attacker(listener.address, hold_s=WAIT)
    try:
        with attacker.connect() as sock:
            client.complete(attacker, sock)
            updates = KeyUpdates(client.client_traffic_secret(), client.conn.get_cipher_name())
            stream = b"".join(updates.next() for _ in range(1000))
            sock.sendall(stream + updates.record(b"after 1000 key updates", 0x17))
            thread.join(WAIT)
    finally:
        listener.close()
    assert received["data"] == b"after 1000 key updates"


@pytest.mark.parametrize("path", ["libssl", "built-here"])
def test_key_update_flood_streams_key_updates_that_a_server_accepts(certs, path, monkeypatch):
    """Only KeyUpdates: OpenSSL's server reads them all without error and finds no data
    (a record under the wrong keys fails its AEAD check; any other post-handshake message
    from a client is unexpected in TLS 1.3). Both ways: OpenSSL's SSL_key_update, and
    the records built here where no libssl is found."""
    if path == "libssl" and libssl.load() is None:
        pytest.skip("no system libssl")
    if path == "built-here":
        monkeypatch.setattr(libssl, "load", lambda: None)  # as on a system without libssl
    size = 64 * 1024
    with attacking("key-update-flood", certs, flood_bytes=size) as (listener, attacker, _):
        conn = listener.accept()
        tls, incoming, _ = server_over_bio(conn, tls13_server(certs))
        assert tls.version() == "TLSv1.3"
        assert attacker.done_sending.wait(WAIT)  # up to flood_bytes, then it holds
        stream = b""
        while len(stream) < size or select.select([conn], [], [], 0.5)[0]:  # all it sent
            chunk = conn.recv(65536)
            assert chunk
            stream += chunk
        incoming.write(stream)
        assert swallowed(tls)
        assert attacker.messages * 27 >= size  # 27 bytes a record: header, message, type, tag
        assert attacker.error is None and still_open(conn)  # it holds, sending nothing more


def tls12_server(certs, *, renegotiation: bool = False) -> ssl.SSLContext:
    context = server_context(certs)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    if renegotiation:
        context.options |= ALLOW_CLIENT_RENEGOTIATION
    return context


ALLOW_CLIENT_RENEGOTIATION = 1 << 8  # SSL_OP_ALLOW_CLIENT_RENEGOTIATION (OpenSSL 3.0 ssl.h)


def test_renegotiation_flood_repeats_a_hello_that_a_refusing_server_recognises(certs):
    """OpenSSL 3's server refuses each renegotiation ClientHello with a no_renegotiation
    warning alert (31-byte records under its keys) and reads on: one alert per hello."""
    size = 64 * 1024
    with attacking("renegotiation-flood", certs, flood_bytes=size) as (listener, attacker, _):
        conn = listener.accept()
        tls, incoming, outgoing = server_over_bio(conn, tls12_server(certs))
        assert tls.version() == "TLSv1.2"
        first = read_exactly(conn, 5)
        first += read_exactly(conn, struct.unpack("!H", first[3:5])[0])
        incoming.write(first)
        assert swallowed(tls)
        alert = outgoing.read()
        assert alert[:5] == b"\x15\x03\x03\x00\x1a"  # one alert record (refused, not closed)
        conn.sendall(alert)
        assert attacker.done_sending.wait(WAIT)
        assert attacker.error == "SSL.Error: no renegotiation"
        stream = b""
        while len(stream) < size:
            chunk = conn.recv(65536)
            assert chunk
            stream += chunk
        whole = len(stream) // len(first) * len(first)
        assert {stream[i : i + 5] for i in range(0, whole, len(first))} == {first[:5]}
        incoming.write(stream[:whole])
        assert swallowed(tls)  # every copy decrypts under its own sequence number
        alerts = outgoing.read()
        assert len(alerts) == 31 * (whole // len(first))  # one refusal per hello
        assert still_open(conn)


def test_renegotiation_flood_renegotiates_where_the_server_lets_it(certs):
    context = tls12_server(certs, renegotiation=True)
    with attacking("renegotiation-flood", certs) as (listener, attacker, _):
        conn = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(0.2)  # a deadline per read; renegotiations happen inside reads
            for _ in range(50):
                if attacker.messages >= 3:
                    break
                with contextlib.suppress(TimeoutError, ssl.SSLWantReadError):
                    assert tls.recv(100) == b""
            assert attacker.messages >= 3 and attacker.error is None


def test_a_short_battery_runs_the_round_two_kinds_on_the_reference_server(certs, tmp_path):
    """Every round-two kind runs end to end on both adapters, with a verdict and figures,
    and shows as a row of the report (the single-run and the compat tables read these)."""
    path = tmp_path / "results.json"
    argv = [
        "--target", "harness.targets.reference:target", "--results", str(path),
        "--certs-dir", str(certs.root), "--adapter", "builtin", "--adapter", "pyopenssl",
        "--kinds", *ROUND_TWO, "--attackers", "1", "--timeout", "2", "--quiet",
    ]  # fmt: skip
    assert resilience.main(argv) == 0
    block = json.loads(path.read_text())["run"]["resilience"]
    for adapter in ("builtin", "pyopenssl"):
        entries = block["adapters"][adapter]["kinds"]
        assert [(e["kind"], e["attackers"]) for e in entries] == [(k, 1) for k in ROUND_TWO]
        for entry in entries:
            assert entry["stall"] in (resilience.NONE, resilience.BOUNDED, resilience.UNBOUNDED)
            assert entry["in_position"] == 1, entry  # each attacker got into position
            assert entry["during"]["n"] >= 1 and isinstance(entry["alive"], bool)
    rows = report_rows.read(block).rows
    assert {r.kind for r in rows} == {f"{k} \u00d71" for k in ROUND_TWO}
    assert {r.adapter.split()[0] for r in rows} == {"builtin", "pyopenssl"}
    # the single-run report and the compat report (two targets) show every round-two row
    case = make_case("builtin", "required")
    runs = [
        reports.TargetRun(name, reports.parse_results(results([case], resilience=block)))
        for name in ("first", "second")
    ]
    single = reports.render_html(runs[0].results)
    compat_md = reports.render_compat_markdown(reports.compare(runs))
    compat_html = reports.render_compat_html(reports.compare(runs))
    for kind in ROUND_TWO:
        assert f"{kind} \u00d71" in single and f"{kind} \u00d71" in compat_html
        for name in ("first", "second"):
            assert f"| {name} | builtin (4 workers) | {kind} \u00d71 |" in compat_md
