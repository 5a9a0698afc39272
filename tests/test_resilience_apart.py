"""``python -m matrix.resilience.apart``: the reference server, its load and the good
client in separate processes (real processes, real handshakes on loopback)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.polling import IO_TIMEOUT

COMMAND = [sys.executable, "-m", "matrix.resilience.apart"]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize(
    "args",
    [("--gates", "0", "--burn", "1"), ("--burn", "1", "--certs-dir", "no/such/dir"), ()],
)
def test_bad_usage_is_one_line_and_exit_2(args):
    result = run(*args, timeout=IO_TIMEOUT * 3)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "error:" in result.stderr.strip().splitlines()[-1]


def test_a_flood_measured_apart_is_cut_and_the_good_client_served(certs):
    """Two KeyUpdate floods through two gate threads (the prototype): each cut with its
    own log line in the server's process, every good request served, no traceback."""
    certs_dir = str(certs["ca"].cert.parent)
    result = run(
        "--adapter", "builtin", "--gates", "2", "--kind", "key-update-flood",
        "--attackers", "2", "--requests", "3", "--certs-dir", certs_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["failed"] == 0 and figures["during_n"] == 3
    assert figures["server_log_lines"] == 2 and figures["tracebacks"] == 0
    assert len(figures["gate_cpu_s"]) == 2
    # The server's two lines prove both cuts. Whether an attacker notices its cut
    # before the run releases it races with the good client's last request (CI saw
    # one of two), so the attackers' own errors are not counted here.
