"""The hostile-client kinds send what they say; the battery classifies and reports as documented.

What each kind sends is checked on loopback listeners written here (plain TCP, or a
stdlib ``ssl`` server that asks for the matrix's client certificates), by what they
received: bytes, record and handshake types, an RST seen as ECONNRESET, a socket held
open (no FIN) until the attacker is released. Trickles are checked with a pace far
longer than the test (one byte arrives, then nothing until the release) or with no
pace at all (the whole stream), never by timing. The battery's verdicts are checked on
synthetic samples; one short real run against the reference server checks the shape
of ``run.resilience``, not its figures.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import select
import signal
import socket
import ssl
import stat
import struct
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import hostile
from harness.targets import compat
from matrix import resilience
from matrix.resilience import BOUNDED, NONE, UNBOUNDED, Sample, classify

LONG_PACE = 600.0  # seconds: longer than any test; the release ends the wait
WAIT = 10.0  # seconds: the most any listener waits for anything (a broken kind fails, not hangs)


# -- listeners ----------------------------------------------------------------------------


class Listener:
    """Accepts one connection on 127.0.0.1 and hands it over."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(WAIT)
        self.address = self.sock.getsockname()

    def accept(self) -> socket.socket:
        conn, _ = self.sock.accept()
        conn.settimeout(WAIT)
        return conn

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def attacking(
    kind: str, certs, *, pace_s: float = 0.0, **options
) -> Iterator[tuple[Listener, hostile.Attacker, threading.Thread]]:
    listener = Listener()
    attacker = hostile.Attacker(
        listener.address,
        credential=certs["localhost"].key_and_chain
        if hostile.KINDS[kind].presents_certificate
        else None,
        pace_s=pace_s,
        hold_s=WAIT * 3,
        **options,
    )
    thread = threading.Thread(target=hostile.KINDS[kind], args=(attacker,), daemon=True)
    thread.start()
    try:
        yield listener, attacker, thread
    finally:
        attacker.release.set()
        attacker.leave()
        thread.join(WAIT)
        listener.close()


def read_all(conn: socket.socket) -> tuple[bytes, str | None]:
    """Everything until EOF, and the error that ended it (None for a clean EOF)."""
    data = b""
    try:
        while chunk := conn.recv(65536):
            data += chunk
    except OSError as exc:
        return data, type(exc).__name__
    return data, None


def read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        assert chunk, f"EOF after {len(data)} of {size} bytes"
        data += chunk
    return data


def read_record(conn: socket.socket) -> bytes:
    header = read_exactly(conn, 5)
    return header + read_exactly(conn, struct.unpack("!H", header[3:5])[0])


def still_open(conn: socket.socket) -> bool:
    """No FIN, no RST and nothing to read: the socket is not readable right now."""
    if isinstance(conn, ssl.SSLSocket) and conn.pending():
        return False
    readable, _, _ = select.select([conn], [], [], 0)
    return not readable


def hello_fields(record: bytes) -> dict:
    """A ClientHello record's version, groups and extension types (RFC 8446 section 4.1.2)."""
    assert record[0] == hostile.HANDSHAKE and record[5] == hostile.CLIENT_HELLO
    pos = 5 + 4
    version = struct.unpack_from("!H", record, pos)[0]
    pos += 2 + 32
    pos += 1 + record[pos]
    pos += 2 + struct.unpack_from("!H", record, pos)[0]
    pos += 1 + record[pos]
    end = pos + 2 + struct.unpack_from("!H", record, pos)[0]
    pos += 2
    extensions, groups, shares = [], [], []
    while pos < end:
        ext_type, length = struct.unpack_from("!HH", record, pos)
        body = record[pos + 4 : pos + 4 + length]
        extensions.append(ext_type)
        if ext_type == hostile.EXT_SUPPORTED_GROUPS:
            groups = [
                struct.unpack_from("!H", body, 2 + 2 * i)[0] for i in range(len(body) // 2 - 1)
            ]
        elif ext_type == hostile.EXT_KEY_SHARE:
            at = 2
            while at < len(body):
                group, size = struct.unpack_from("!HH", body, at)
                shares.append(group)
                at += 4 + size
        pos += 4 + length
    return {"version": version, "extensions": extensions, "groups": groups, "shares": shares}


def server_context(certs, verify: ssl.VerifyMode = ssl.CERT_REQUIRED) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs["server"].cert, certs["server"].key)
    context.verify_mode = verify
    context.load_verify_locations(certs["ca"].cert)
    return context


def tls_accept(listener: Listener, certs) -> ssl.SSLSocket:
    return server_context(certs).wrap_socket(listener.accept(), server_side=True)


# -- what each kind sends -----------------------------------------------------------------


def spec_section_7() -> str:
    """docs/spec.md section 7 as one line of words (no backticks, single spaces)."""
    text = (Path(__file__).parent.parent / "docs" / "spec.md").read_text()
    section = text[text.index("## 7.") : text.index("## 8.")]
    return " ".join(section.replace("`", "").split())


def test_every_kind_of_spec_section_7_is_declared_once():
    assert len(hostile.KINDS) == 25
    spec = spec_section_7()
    paces = (hostile.AT_ONCE, hostile.TRICKLE, hostile.FLOOD, hostile.STREAM, hostile.SLOW_READ)
    for name, kind in hostile.KINDS.items():
        assert kind.name == name and kind.description and kind.sends
        assert kind.pace in paces
        assert kind.flood == (kind.pace == hostile.FLOOD)
        assert kind.counts == (hostile.FIRST if kind.flood else hostile.EVERY)
        assert kind.spec and kind.spec in spec, name  # the spec's own words
    trickles = {n for n, k in hostile.KINDS.items() if k.pace == hostile.TRICKLE}
    assert trickles == {"trickle-hello", "trickle-headers", "trickle-body"}
    assert {n for n, k in hostile.KINDS.items() if k.flood} == {"huge-headers", "endless-body"}
    streams = {n for n, k in hostile.KINDS.items() if k.pace == hostile.STREAM}
    assert streams == {"key-update-flood", "renegotiation-flood"}
    # every item of the spec's list (its "; "-separated clauses) has a kind
    items = spec[spec.index("- connects") : spec.index("One connection must never")]
    clauses = [c.strip(" -.;") for c in re.split(r"; | - ", items) if c.strip(" -.;")]
    covered = " ".join(k.spec for k in hostile.KINDS.values())
    assert [c for c in clauses if c not in covered] == []


def test_silent_sends_nothing_and_holds_until_released(certs):
    with attacking("silent", certs) as (listener, attacker, _):
        conn = listener.accept()
        assert attacker.in_position.wait(WAIT)
        assert still_open(conn)
        attacker.release.set()
        assert read_all(conn) == (b"", None)  # a FIN, nothing before it


def test_one_byte_sends_one_byte(certs):
    with attacking("one-byte", certs) as (listener, attacker, _):
        conn = listener.accept()
        assert attacker.in_position.wait(WAIT)
        attacker.release.set()
        assert read_all(conn) == (b"\x16", None)


def test_record_header_and_partial_hello_send_a_prefix_of_a_real_client_hello(certs):
    with attacking("record-header", certs) as (listener, attacker, _):
        conn = listener.accept()
        assert attacker.in_position.wait(WAIT)
        attacker.release.set()
        header, _ = read_all(conn)
    assert len(header) == 5 and header[0] == hostile.HANDSHAKE
    announced = struct.unpack("!H", header[3:5])[0]
    with attacking("partial-hello", certs) as (listener, attacker, _):
        conn = listener.accept()
        assert attacker.in_position.wait(WAIT)
        attacker.release.set()
        part, _ = read_all(conn)
    assert part[0] == hostile.HANDSHAKE and part[5] == hostile.CLIENT_HELLO
    assert 5 < len(part) < 5 + struct.unpack("!H", part[3:5])[0]
    assert announced > 100  # the header announced a whole ClientHello


def test_hello_then_silent_sends_one_whole_client_hello_and_holds(certs):
    with attacking("hello-then-silent", certs) as (listener, attacker, _):
        conn = listener.accept()
        record = read_record(conn)
        assert attacker.in_position.wait(WAIT)
        assert still_open(conn)
        attacker.release.set()
        assert read_all(conn) == (b"", None)
    fields = hello_fields(record)
    assert 0x002B in fields["extensions"]  # supported_versions: a real modern ClientHello
    assert fields["groups"] and fields["shares"]


def test_trickle_hello_sends_one_byte_then_waits_its_pace(certs):
    with attacking("trickle-hello", certs, pace_s=LONG_PACE) as (listener, attacker, _):
        conn = listener.accept()
        assert attacker.in_position.wait(WAIT)
        assert read_exactly(conn, 1) == b"\x16"
        assert still_open(conn)  # the second byte waits for the pace
        attacker.release.set()
        assert read_all(conn) == (b"", None)
    assert attacker.sent == 1


def test_trickle_hello_without_pace_sends_the_whole_client_hello(certs):
    with attacking("trickle-hello", certs) as (listener, attacker, _):
        conn = listener.accept()
        record = read_record(conn)
        assert attacker.in_position.wait(WAIT)
    assert hello_fields(record)["groups"]
    assert attacker.sent == len(record)


def test_reset_after_connect_is_an_rst(certs):
    with attacking("reset-after-connect", certs) as (listener, _, _):
        conn = listener.accept()
        assert read_all(conn) == (b"", "ConnectionResetError")


def test_reset_after_hello_sends_a_client_hello_then_an_rst(certs):
    with attacking("reset-after-hello", certs) as (listener, _, _):
        conn = listener.accept()
        data, error = read_all(conn)
    assert error == "ConnectionResetError"
    assert data[0] == hostile.HANDSHAKE and data[5] == hostile.CLIENT_HELLO


def test_plain_http_sends_a_cleartext_request(certs):
    with attacking("plain-http", certs) as (listener, attacker, _):
        conn = listener.accept()
        assert attacker.in_position.wait(WAIT)
        attacker.release.set()
        data, _ = read_all(conn)
    assert data.startswith(b"GET / HTTP/1.1\r\nHost: localhost\r\n") and data.endswith(b"\r\n\r\n")


def test_old_version_offers_tls_1_1_at_most(certs):
    with attacking("old-version", certs) as (listener, _, _):
        fields = hello_fields(read_record(listener.accept()))
    assert fields["version"] == 0x0302  # TLS 1.1 (RFC 4346)
    assert 0x002B not in fields["extensions"]  # no supported_versions: nothing newer offered


def test_no_shared_group_offers_only_private_groups_and_a_server_refuses_it(certs):
    with attacking("no-shared-group", certs) as (listener, _, _):
        conn = listener.accept()
        record = read_record(conn)
    fields = hello_fields(record)
    assert fields["groups"] and all(0xFE00 <= g <= 0xFEFF for g in fields["groups"])
    assert fields["shares"] and all(0xFE00 <= g <= 0xFEFF for g in fields["shares"])
    # the same bytes to a real TLS 1.3 server: no group in common
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_context(certs).wrap_bio(incoming, outgoing, server_side=True)
    incoming.write(record)
    with pytest.raises(ssl.SSLError) as refused:
        server.do_handshake()
    assert refused.value.reason in ("NO_SUITABLE_KEY_SHARE", "NO_SHARED_GROUPS")


def test_without_shared_group_refuses_what_is_not_a_client_hello():
    with pytest.raises(ValueError, match="not a ClientHello"):
        hostile.without_shared_group(b"\x17\x03\x03\x00\x01x")


def test_handshake_then_silent_presents_its_certificate_and_holds(certs):
    with attacking("handshake-then-silent", certs) as (listener, attacker, _):
        tls = tls_accept(listener, certs)
        assert tls.getpeercert()["subject"]  # the client's certificate, verified
        assert attacker.in_position.wait(WAIT)
        assert still_open(tls)
        attacker.release.set()
        data, error = read_all(tls)
    assert data == b"" and error in (None, "SSLEOFError")


def test_trickle_headers_sends_a_header_block_one_byte_per_record(certs):
    with attacking("trickle-headers", certs, pace_s=LONG_PACE) as (listener, attacker, _):
        tls = tls_accept(listener, certs)
        assert tls.recv(100) == b"G"  # one record holds one byte; the next waits for the pace
        assert attacker.in_position.wait(WAIT)
    with attacking("trickle-headers", certs) as (listener, attacker, _):
        tls = tls_accept(listener, certs)
        data = b""
        while len(data) < 200:
            data += tls.recv(200)
    assert data.startswith(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow-0: x\r\n")
    assert b"\r\n\r\n" not in data  # the header block never ends


def test_trickle_body_sends_its_head_then_the_body_one_byte_at_a_time(certs):
    head = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n"
    with attacking("trickle-body", certs, pace_s=LONG_PACE) as (listener, attacker, _):
        tls = tls_accept(listener, certs)
        data = b""
        while len(data) < len(head) + 1:
            data += tls.recv(1000)
        assert attacker.in_position.wait(WAIT)
        assert still_open(tls)
        attacker.release.set()
    assert data == head + b"x"


def flood(kind: str, certs, size: int) -> tuple[bytes, hostile.Attacker]:
    listener = Listener()
    attacker = hostile.Attacker(
        listener.address, credential=certs["localhost"].key_and_chain, hold_s=WAIT, flood_bytes=size
    )
    thread = threading.Thread(target=hostile.KINDS[kind], args=(attacker,), daemon=True)
    thread.start()
    try:
        tls = tls_accept(listener, certs)
        data = b""
        while len(data) < size:  # at least ``size``: it floods in chunks
            chunk = tls.recv(65536)
            assert chunk
            data += chunk
        assert attacker.in_position.wait(WAIT)
    finally:
        attacker.release.set()
        attacker.leave()
        thread.join(WAIT)
        listener.close()
    return data, attacker


def test_huge_headers_floods_a_header_block_that_never_ends(certs):
    data, _ = flood("huge-headers", certs, 1 << 20)
    assert data.startswith(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: xxx")
    assert len(data) >= 1 << 20 and b"\r\n\r\n" not in data  # past any 64 KiB limit


def test_endless_body_announces_a_huge_body_and_floods_it(certs):
    data, _ = flood("endless-body", certs, 1 << 20)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head == b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000000000"
    assert len(body) >= (1 << 20) - len(head) and set(body) == {ord("x")}


def test_close_mid_handshake_ends_with_a_fin_before_its_finished(certs):
    with attacking("close-mid-handshake", certs) as (listener, _, _):
        conn = listener.accept()
        with pytest.raises(ssl.SSLEOFError):
            server_context(certs).wrap_socket(conn, server_side=True)


def bio_handshake(conn: socket.socket, context: ssl.SSLContext) -> ssl.SSLError | None:
    """A server handshake over ``conn`` through MemoryBIOs (``conn`` stays ours); its error."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)
    while True:
        try:
            tls.do_handshake()
            conn.sendall(outgoing.read())
            return None
        except ssl.SSLWantReadError:
            conn.sendall(outgoing.read())
            chunk = conn.recv(65536)
            if not chunk:
                return ssl.SSLEOFError("EOF")
            incoming.write(chunk)
        except ssl.SSLError as exc:
            conn.sendall(outgoing.read())  # the alert
            return exc


def test_refused_then_hold_keeps_its_socket_after_the_refusal(certs):
    with attacking("refused-then-hold", certs) as (listener, attacker, _):
        conn = listener.accept()
        refused = bio_handshake(conn, server_context(certs))
        assert refused is not None and refused.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE"
        assert attacker.in_position.wait(WAIT)
        assert still_open(conn)  # refused, and still there
        attacker.release.set()
        # it closes with the alert unread: Linux sends an RST for that (RFC 2525 section 2.17)
        assert read_all(conn) in ((b"", None), (b"", "ConnectionResetError"))


def test_forged_record_fails_the_record_check_after_the_handshake(certs):
    with attacking("forged-record", certs) as (listener, _, _):
        tls = tls_accept(listener, certs)
        with pytest.raises(ssl.SSLError) as forged:
            tls.recv(100)
    assert forged.value.reason in ("DECRYPTION_FAILED_OR_BAD_RECORD_MAC", "BAD_RECORD_MAC")


def test_an_attack_releases_every_attacker_and_counts_errors(certs):
    listener = Listener()
    listener.sock.listen(16)
    with hostile.run_attackers(hostile.KINDS["silent"], listener.address, 3, hold_s=WAIT) as run:
        conns = [listener.accept() for _ in range(3)]
        assert run.wait_in_position(WAIT) == 3
    assert not any(t.is_alive() for t in run.threads)
    assert all(read_all(c) == (b"", None) for c in conns)
    assert run.errors() == {}
    listener.close()


# -- the battery's verdicts, on synthetic measurements ---------------------------------------


def samples(*ms: float, timed_out_at: float | None = None, failed: int = 0) -> list[Sample]:
    out = [Sample(m, True) for m in ms]
    out += [Sample(1.0, False, False, "reset")] * failed
    if timed_out_at is not None:
        out.append(Sample(timed_out_at, False, True, "timed out"))
    return out


def test_classify_none_when_within_the_spec_limits():
    assert classify(5.0, samples(6, 7, 90, 5, 6), 10.0) == (NONE, None, 1.0)


def test_classify_bounded_on_added_median_slow_request_or_failure():
    assert classify(5.0, samples(300, 310, 305), 10.0) == (BOUNDED, 0.31, 300.0)
    assert classify(5.0, samples(5, 5, 1500), 10.0) == (BOUNDED, 1.5, 0.0)
    assert classify(5.0, samples(5, 5, 5, failed=1), 10.0)[0] == BOUNDED
    # timed out before the cap (phase 1's probe): a stall of at least that long, not unbounded
    assert classify(5.0, samples(5, timed_out_at=1500), 10.0)[0] == BOUNDED


def test_classify_unbounded_when_still_waiting_at_the_cap():
    assert classify(5.0, samples(5, 6, timed_out_at=10000), 10.0) == (UNBOUNDED, None, 1.0)


def test_classify_without_samples():
    assert classify(5.0, [], 10.0) == (NONE, None, None)


def test_attacker_counts():
    assert resilience.attacker_counts(4) == (1, 5, 64)
    assert resilience.attacker_counts(None) == (1, 64)
    assert resilience.attacker_counts(63) == (1, 64)
    assert resilience.attacker_counts(100) == (1, 64)


def test_an_inferred_entry_is_unbounded_without_figures():
    entry = resilience.Scenario("one-byte", 64, inferred=True).entry(5.0, 10.0)
    assert (entry["stall"], entry["inferred"], entry["during"]["n"]) == (UNBOUNDED, True, 0)


def test_compat_summary_counts_verdicts():
    kinds = [{"stall": UNBOUNDED}, {"stall": UNBOUNDED}, {"stall": BOUNDED, "alive": False}]
    block = {"adapters": {"builtin": {"kinds": kinds}}}
    assert compat.battery_summary(block) == "2 unbounded, 1 bounded, 1 dead"
    assert compat.battery_summary({"adapters": {"b": {"kinds": [{"stall": NONE}]}}}) == "no stall"
    assert compat.battery_summary({}) == "not measured"
    assert compat.reference("gunicorn-gthread") == "harness.targets.gunicorn:gthread_target"


# -- the command ------------------------------------------------------------------------------

REFERENCE = "harness.targets.reference:target"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--timeout", "nan"], "must be a positive finite number"),
        (["--timeout", "0"], "must be a positive finite number"),
        (["--timeout", "soon"], "not a number of seconds"),
        (["--adapter", "rustls"], "unknown adapter 'rustls'"),
        (["--kinds", "silent,nosuch"], "unknown kind 'nosuch'"),
        (["--attackers", "0"], "attackers must be 1 to 1024"),
        (["--results", "/nonexistent/dir/results.json"], "no such directory"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args, words, certs, capsys):
    status = resilience.main(["--target", REFERENCE, "--certs-dir", str(certs.root), *args])
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.splitlines()) == 1 and words in err, err


def test_an_unloadable_target_or_foreign_results_are_one_line_and_exit_2(certs, tmp_path, capsys):
    assert resilience.main(["--target", "no.such.module:target"]) == 2
    assert "cannot import no.such.module" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"run": {"target": "gunicorn"}, "cases": []}))
    args = ["--target", REFERENCE, "--results", str(other), "--certs-dir", str(certs.root)]
    assert resilience.main(args) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "results of target 'gunicorn'" in err
    assert json.loads(other.read_text()) == {"run": {"target": "gunicorn"}, "cases": []}


def test_a_short_battery_on_the_reference_server_writes_run_resilience(certs, tmp_path, capsys):
    path = tmp_path / "results.json"
    original = {"schema": 2, "run": {"target": "reference", "versions": {"x": "1"}}, "cases": [1]}
    path.write_text(json.dumps(original))
    argv = [
        "--target", REFERENCE, "--results", str(path), "--certs-dir", str(certs.root),
        "--kinds", "silent", "reset-after-hello", "--attackers", "1", "--quiet",
    ]  # fmt: skip
    assert resilience.main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "silent" in out and "reset-after-hello" in out
    data = json.loads(path.read_text())
    block = data["run"].pop("resilience")
    assert data == original  # the rest of the file as it was
    assert block["version"] == 1 and block["command"].startswith("python -m matrix.resilience")
    assert list(block["adapters"]) == ["builtin"]
    measured = block["adapters"]["builtin"]
    assert measured["workers"] == 4
    assert set(measured["good_alone"]) == {"n", "median_ms", "max_ms"}
    assert measured["good_alone"]["n"] >= 10
    assert [(e["kind"], e["attackers"]) for e in measured["kinds"]] == [
        ("silent", 1),
        ("reset-after-hello", 1),
    ]
    for entry in measured["kinds"]:
        assert {
            "kind", "attackers", "during", "after", "added_ms", "stall", "bound_s", "alive",
            "tracebacks", "restarts", "resources",
        } <= set(entry)  # fmt: skip
        for phase in ("during", "after"):
            assert set(entry[phase]) == {"n", "median_ms", "max_ms", "failed"}
        assert entry["during"]["n"] >= 1
        assert entry["stall"] in (NONE, BOUNDED, UNBOUNDED)
        assert isinstance(entry["alive"], bool)
        assert isinstance(entry["tracebacks"], int) and isinstance(entry["restarts"], int)
        resources = entry["resources"]  # in-process: read from /proc
        assert set(resources) == {"fds", "threads", "rss_mb"}
        assert all(len(pair) == 2 for pair in resources.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no temp file left


def test_a_new_results_file_is_created(certs, tmp_path):
    path = tmp_path / "new.json"
    argv = [
        "--target", REFERENCE, "--results", str(path), "--certs-dir", str(certs.root),
        "--kinds", "silent", "--attackers", "1", "--quiet",
    ]  # fmt: skip
    assert resilience.main(argv) == 0
    data = json.loads(path.read_text())
    assert data["run"]["target"] == "reference"
    assert data["run"]["resilience"]["adapters"]["builtin"]["kinds"][0]["kind"] == "silent"


def test_gunicorn_gthread_is_stalled_without_bound_by_silent_client_hellos(certs):
    """gunicorn's threaded worker handshakes on its pool threads: 5 attackers hold all 4."""
    pytest.importorskip("gunicorn")
    from harness.targets.gunicorn import gthread_target

    target = gthread_target()
    measured = resilience.run_battery(
        target, certs, kinds=["hello-then-silent"], counts=[5], cap_s=2.0, probe_s=1.0
    )
    (entry,) = measured["kinds"]
    assert (entry["kind"], entry["attackers"], entry["stall"]) == (
        "hello-then-silent",
        5,
        UNBOUNDED,
    )
    assert entry["alive"] is True  # it serves again once they leave
    assert measured["workers"] == 4


def test_matrix_stall_is_an_alias(certs, capsys):
    from matrix import stall

    assert stall.main(["--target", REFERENCE, "--timeout", "nan"]) == 2
    assert capsys.readouterr().err.startswith("matrix.stall: error:")


def test_gthread_target_command(certs):
    pytest.importorskip("gunicorn")
    from harness.target import ServerSpec
    from harness.targets.gunicorn import gthread_target, target

    spec = ServerSpec(
        "builtin", "required", False, "127.0.0.1", Path("s.pem"), Path("s.key"), Path("ca.pem")
    )
    args, _ = gthread_target().command(spec)
    assert args[args.index("--worker-class") + 1] == "gthread"
    assert args[args.index("--threads") + 1] == "4"
    assert gthread_target().name == "gunicorn-gthread"
    sync, _ = target().command(spec)
    assert sync[sync.index("--worker-class") + 1] == "sync"


def fake_matrix(command, timeout, env=None):
    """The compat driver's pytest run, replaced: a results file with one passing case."""
    path = Path(command[command.index("--results") + 1])
    case = {"id": "x", "status": "pass", "detail": ""}
    path.write_text(json.dumps({"schema": 2, "run": {"target": "cheroot_native"}, "cases": [case]}))
    return 0, []


def test_compat_runs_the_battery_after_each_target_matrix(certs, tmp_path, monkeypatch, capsys):
    """Cheroot's builtin adapter handshakes on its accept thread: one silent client stalls it."""
    pytest.importorskip("cheroot")
    monkeypatch.setattr(compat, "_run_streaming", fake_matrix)
    status = compat.main(
        ["--out", str(tmp_path), "--battery-timeout", "2", "--battery-kinds", "silent",
         "cheroot_native", "--", "--certs-dir", str(certs.root)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == compat.EXIT_OK, out
    block = json.loads((tmp_path / "cheroot_native.json").read_text())["run"]["resilience"]
    entries = block["adapters"]["builtin"]["kinds"]
    assert [(e["kind"], e["attackers"], e["stall"]) for e in entries] == [
        ("silent", 1, UNBOUNDED),
        ("silent", 11, UNBOUNDED),
        ("silent", 64, UNBOUNDED),
    ]
    assert "--kinds silent" in block["command"]
    assert re.search(r"cheroot_native\s+ran.*3 unbounded", out), out


def test_compat_skips_the_battery_on_a_partial_run_or_when_asked(tmp_path, monkeypatch):
    pytest.importorskip("cheroot")
    monkeypatch.setattr(compat, "_run_streaming", fake_matrix)
    for args in (["--", "--case", "x"], ["--", "-kfoo"], ["--no-battery"]):
        assert compat.main(["--out", str(tmp_path), "cheroot_native", *args]) == compat.EXIT_OK
        run = json.loads((tmp_path / "cheroot_native.json").read_text())["run"]
        assert "resilience" not in run, args
    assert compat.certs_dir(["--certs-dir=/x/y"]) == Path("/x/y")
    assert compat.certs_dir([]) == compat.PROJECT_ROOT / "build/matrix-certs"


# -- what the battery reads from a server: tracebacks, survival ----------------------------


class FragileServer:
    """A stdlib ``ssl`` server, one thread per connection, that logs every failed handshake
    with its traceback on the reference server's logger, and (``dies``) stops serving
    after the first one: what the battery must count and notice."""

    def __init__(self, spec, dies: bool, how: str = "reference-log") -> None:
        self.how = how
        self.context = server_context_for(spec)
        self.listener = socket.create_server((spec.bind, 0))
        self.host, self.port = spec.bind, self.listener.getsockname()[1]
        self.dies = dies
        self.thread = threading.Thread(target=self._serve, name="fragile", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            conn.settimeout(WAIT)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                data = b""
                while b"\r\n\r\n" not in data and (chunk := tls.recv(4096)):
                    data += chunk
                if data:
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        except OSError:
            if self.how == "stderr":  # as tornado's fallback does: the traceback to stderr
                traceback.print_exc()
            elif self.how == "other-logger":  # a logger of its own, left to propagate
                logging.getLogger("fragile.general").exception("handshake failed")
            else:
                logging.getLogger(resilience.LOG).exception("handshake failed")
            conn.close()
            if self.dies:
                with contextlib.suppress(OSError):
                    self.listener.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(WAIT)


def server_context_for(spec) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(spec.certificate, spec.private_key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(spec.client_ca)
    return context


class FragileTarget:
    name = "fragile"
    workers = None

    def __init__(self, dies: bool = False, how: str = "reference-log") -> None:
        self.dies = dies
        self.how = how

    def unsupported(self, spec):
        return None if spec.adapter == "builtin" else "stdlib ssl only"

    def start(self, spec):
        return FragileServer(spec, self.dies, self.how)

    def provides(self, adapter, variable):
        return False

    def versions(self):
        return {}


def test_tracebacks_in_an_in_process_server_log_are_counted(certs):
    measured = resilience.run_battery(
        FragileTarget(), certs, kinds=["reset-after-hello", "handshake-then-silent"], counts=[1],
        cap_s=2.0,
    )  # fmt: skip
    by_kind = {e["kind"]: e for e in measured["kinds"]}
    assert by_kind["reset-after-hello"]["tracebacks"] == 1  # one attacker, one traceback
    assert by_kind["handshake-then-silent"]["tracebacks"] == 0  # it leaves cleanly
    assert all(e["alive"] for e in measured["kinds"])


@pytest.mark.parametrize("how", ["stderr", "other-logger"])
def test_tracebacks_an_in_process_server_prints_or_logs_anywhere_are_counted(certs, how, capsys):
    """Issue 18: a tornado-like server printing tracebacks to stderr, or logging them on
    a logger of its own, has them counted, and they do not bury the battery's output."""
    measured = resilience.run_battery(
        FragileTarget(how=how), certs, kinds=["reset-after-hello", "handshake-then-silent"],
        counts=[1], cap_s=5.0,
    )  # fmt: skip
    by_kind = {e["kind"]: e for e in measured["kinds"]}
    # at least the attacker's (a good request given up on a loaded machine adds one)
    assert by_kind["reset-after-hello"]["tracebacks"] >= 1
    assert by_kind["reset-after-hello"]["log_lines"] >= 1
    assert by_kind["handshake-then-silent"]["tracebacks"] == 0
    assert "Traceback" not in capsys.readouterr().err


def test_a_server_that_stops_serving_is_not_alive_and_is_replaced(certs):
    measured = resilience.run_battery(
        FragileTarget(dies=True), certs, kinds=["reset-after-hello", "handshake-then-silent"],
        counts=[1],
        cap_s=2.0,
    )  # fmt: skip
    by_kind = {e["kind"]: e for e in measured["kinds"]}
    assert by_kind["reset-after-hello"]["alive"] is False
    assert by_kind["reset-after-hello"]["after"]["failed"] >= 1
    assert measured["server_restarts"] >= 1
    assert by_kind["handshake-then-silent"]["alive"] is True  # measured on the replacement


def test_tracebacks_in_a_server_process_output_are_counted(certs):
    """Cheroot's own builtin adapter prints a traceback for a record that fails its MAC."""
    pytest.importorskip("cheroot")
    from harness.targets.cheroot_native import target

    measured = resilience.run_battery(
        target(), certs, kinds=["forged-record"], counts=[1], cap_s=2.0
    )
    (entry,) = measured["kinds"]
    assert entry["tracebacks"] >= 1 and entry["log_lines"] >= entry["tracebacks"]


# -- the results file and Ctrl-C (issue 18) --------------------------------------------------


def test_a_rewritten_results_file_keeps_its_mode_and_a_new_one_gets_the_usual_mode(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"run": {"target": "reference"}, "cases": []}))
    path.chmod(0o640)
    resilience.merge_into(path, resilience.read_results(path), "reference", {"version": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert json.loads(path.read_text())["run"]["resilience"] == {"version": 1}
    probe = tmp_path / "probe"
    probe.write_text("")  # what any new file of this process gets
    new = tmp_path / "new.json"
    resilience.merge_into(new, None, "reference", {"version": 1})
    assert stat.S_IMODE(new.stat().st_mode) == stat.S_IMODE(probe.stat().st_mode)


def test_ctrl_c_is_one_line_exit_130_and_leaves_the_results_file_as_it_was(certs, tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema": 2, "run": {"target": "reference"}, "cases": []}))
    path.chmod(0o640)
    before = path.read_bytes()
    command = [
        sys.executable, "-m", "matrix.resilience", "--target", REFERENCE,
        "--results", str(path), "--certs-dir", str(certs.root),
        "--attackers", "1", "2", "4", "8", "16", "32", "64",
        "--kinds", "silent", "hello-then-silent", "trickle-hello", "handshake-then-silent",
    ]  # fmt: skip
    # The signal follows the " alone " line at once; the battery after it (28 scenarios,
    # a second or more each) is the margin a loaded machine has to deliver it before
    # the battery ends on its own. With 8 scenarios one ended 4.9 s after starting:
    # a signal later than that finds it done (exit 0, results written).
    process = subprocess.Popen(
        command,
        cwd=Path(__file__).parent.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if " alone " in line:  # the good client measured alone: the attacks begin
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(60), "the battery never started"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert err.splitlines() == [f"matrix.resilience: interrupted; {path} left as it was"]
    assert path.read_bytes() == before and stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
