"""Attackers in a child process (harness.hostile.remote), as the battery runs them against
an in-process server: real child processes, real connections on loopback."""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Iterator

import pytest

from harness import hostile
from harness.hostile.remote import RemoteAttack
from tests.polling import IO_TIMEOUT

COUNT = 3


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.settimeout(IO_TIMEOUT)
        yield sock


def accept_all(listener: socket.socket, count: int) -> list[socket.socket]:
    conns = []
    for _ in range(count):
        conn, _ = listener.accept()
        conn.settimeout(IO_TIMEOUT)
        conns.append(conn)
    return conns


def read_until_eof(conn: socket.socket) -> bytes:
    data = b""
    for _ in range(1000):  # bounded: each pass reads at least a byte or ends
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_remote_attackers_send_hold_and_leave_on_release(listener):
    attack = RemoteAttack(hostile.KINDS["plain-http"], listener.getsockname(), COUNT).start()
    conns = accept_all(listener, COUNT)
    try:
        assert attack.wait_in_position(IO_TIMEOUT) == COUNT
        assert attack.wait_done_sending(IO_TIMEOUT) == 0
        attack.release()
        sent = [read_until_eof(c) for c in conns]  # the release closed every connection
    finally:
        attack.release()
        for conn in conns:
            conn.close()
    assert all(s.startswith(b"GET / HTTP/1.1\r\n") for s in sent), sent
    assert attack.process is not None and attack.process.returncode == 0
    assert attack.errors() == {}


def test_remote_attackers_report_what_the_server_did_to_them(certs, listener):
    """A server that resets each connection: every attacker records an error, and the
    parent gets them back from the child."""
    kind = hostile.KINDS["handshake-then-silent"]
    attack = RemoteAttack(
        kind, listener.getsockname(), COUNT, credential=certs["localhost"].key_and_chain
    ).start()
    try:
        for conn in accept_all(listener, COUNT):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # RST
        assert attack.wait_in_position(IO_TIMEOUT) == COUNT
    finally:
        attack.release()
    assert sum(attack.errors().values()) == COUNT, attack.errors()


def test_remote_attackers_leave_when_the_parent_goes(listener):
    """End of the child's input (the parent died) releases the attackers too."""
    attack = RemoteAttack(hostile.KINDS["silent"], listener.getsockname(), COUNT).start()
    conns = accept_all(listener, COUNT)
    try:
        assert attack.process is not None and attack.process.stdin is not None
        attack.process.stdin.close()
        assert attack.process.wait(IO_TIMEOUT) == 0
        assert [read_until_eof(c) for c in conns] == [b""] * COUNT
    finally:
        with contextlib.suppress(Exception):
            attack.release()
        for conn in conns:
            conn.close()


def test_a_child_whose_parent_went_away_leaves_quietly(listener):
    """The parent interrupted before the child said "started" (its stdout pipe closed):
    the child releases its attack and exits 1 without a traceback on the terminal the
    parent shares with it (CI saw a BrokenPipeError traceback after Ctrl-C). SIGINT,
    which a terminal sends to the whole group, does not end it either: only its stdin."""
    import signal
    import subprocess
    import sys

    host, port = listener.getsockname()
    child = subprocess.Popen(
        [sys.executable, "-m", "harness.hostile.remote", "silent", host, str(port), "1", "-",
         "0.5", "5"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        child.stdout.close()  # the parent is gone before any answer
        conn, _ = listener.accept()  # the attack started: then it writes "started"
        conn.close()
        child.send_signal(signal.SIGINT)  # ignored: the group's Ctrl-C is the parent's
        err = child.stderr.read()
        child.wait(IO_TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert b"Traceback" not in err, err.decode()
    assert child.returncode == 1
