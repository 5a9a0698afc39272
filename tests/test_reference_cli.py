"""``python -m harness.reference`` as a process: ready line, real port, clean stop on signals."""

from __future__ import annotations

import re
import selectors
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

try:
    import resource
except ImportError:  # not POSIX
    resource = None

from harness.client import TLSClient

START_TIMEOUT = 20.0  # seconds for the ready line; a healthy start takes well under one
STOP_TIMEOUT = 10.0
READY = re.compile(r"^listening on https://(?P<host>\[[0-9a-f:]+\]|[^:\[\]]+):(?P<port>\d+)$")


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The first stdout line, or fail after ``timeout`` seconds without blocking forever."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            pytest.fail(f"no ready line within {timeout}s")
    line = proc.stdout.readline()
    if not line:  # it exited without a ready line: show why
        _, err = proc.communicate(timeout=timeout)
        pytest.fail(f"exited with {proc.returncode} before listening: {err}")
    return line


def server_command(certs, adapter: str, bind: str = "127.0.0.1:0") -> list[str]:
    """``python -m harness.reference`` with the standard server credential, policy
    ``required`` and client CA ``ca``."""
    return [
        sys.executable, "-m", "harness.reference", "--adapter", adapter,
        "--cert", str(certs["server"].cert), "--key", str(certs["server"].key),
        "--client-ca", str(certs["ca"].cert), "--client-check", "required", "--bind", bind,
    ]  # fmt: skip


@pytest.fixture
def launch(certs) -> Iterator:
    """launch(adapter, bind, *extra) -> (process, ready line); always reaped."""
    procs: list[subprocess.Popen] = []

    def start(adapter: str, bind: str = "127.0.0.1:0", *extra: str):
        proc = subprocess.Popen(
            [*server_command(certs, adapter, bind), "--check-host", *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        procs.append(proc)
        return proc, read_line(proc, START_TIMEOUT)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=STOP_TIMEOUT)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
@pytest.mark.parametrize("adapter", ["builtin", "pyopenssl"])
def test_cli_serves_and_stops_cleanly(launch, certs, adapter, sig):
    proc, line = launch(adapter)
    match = READY.match(line.rstrip("\n"))
    assert match, line
    assert match["host"] == "127.0.0.1"
    port = int(match["port"])
    assert 0 < port < 65536

    client = TLSClient(certs["ca"].cert, certs["localhost"].key_and_chain)
    attempt = client.get(f"https://127.0.0.1:{port}/")
    wrong_host = TLSClient(certs["ca"].cert, certs["wrong-host"].key_and_chain)
    refused = wrong_host.get(f"https://127.0.0.1:{port}/")
    client.close()
    wrong_host.close()
    assert attempt.outcome == "ok", attempt.detail
    assert attempt.environ["SSL_CLIENT_S_DN"] == "CN=localhost,OU=client,O=mtls-matrix"
    assert refused.outcome == "rejected", refused.detail

    proc.send_signal(sig)
    out, err = proc.communicate(timeout=STOP_TIMEOUT)
    assert proc.returncode == 0, err
    assert out == ""  # the ready line was the only output
    assert "Traceback" not in err
    assert "refused: host check failed" in err  # the wrong-host client, logged


def ipv6_loopback_missing() -> str | None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        return f"no IPv6 loopback here: {exc}"
    return None


@pytest.mark.skipif(ipv6_loopback_missing() is not None, reason=str(ipv6_loopback_missing()))
def test_cli_ipv6_bind(launch):
    proc, line = launch("pyopenssl", "[::1]:0", "--handshake-timeout", "2")
    match = READY.match(line.rstrip("\n"))
    assert match, line
    assert match["host"] == "[::1]"
    with socket.create_connection(("::1", int(match["port"])), timeout=STOP_TIMEOUT):
        pass  # it listens where it says
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=STOP_TIMEOUT) == 0


FD_LIMIT = 256  # the server's RLIMIT_NOFILE in the flood test
FLOOD = 400  # silent connections: more than the server has file descriptors


@pytest.mark.skipif(resource is None, reason="needs resource.setrlimit (POSIX)")
@pytest.mark.parametrize("adapter", ["builtin", "pyopenssl"])
def test_cli_survives_a_flood_past_its_file_descriptor_limit(certs, adapter):
    """400 silent connections against a server limited to 256 descriptors: a good
    client is still served, and every line on stderr is a refusal (one per
    connection) or the rate-limited accept back-off, never a traceback."""

    def limit_fds() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, hard))

    proc = subprocess.Popen(
        server_command(certs, adapter),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        preexec_fn=limit_fds,
    )
    flood: list[socket.socket] = []
    try:
        match = READY.match(read_line(proc, START_TIMEOUT).rstrip("\n"))
        assert match, "no ready line"
        port = int(match["port"])
        flood = [
            socket.create_connection(("127.0.0.1", port), timeout=STOP_TIMEOUT)
            for _ in range(FLOOD)
        ]
        client = TLSClient(certs["ca"].cert, certs["localhost"].key_and_chain)
        attempt = client.get(f"https://127.0.0.1:{port}/")
        client.close()
        assert attempt.outcome == "ok", attempt.detail
    finally:
        for sock in flood:
            sock.close()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=STOP_TIMEOUT)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    lines = err.splitlines()
    refusal = re.compile(r"WARNING TLS client \S+ refused: \S")
    backoff = "cannot accept connections"
    assert all(refusal.search(line) or backoff in line for line in lines), [
        line for line in lines if not (refusal.search(line) or backoff in line)
    ][:5]
    assert sum(1 for line in lines if refusal.search(line)) <= FLOOD
