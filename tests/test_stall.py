"""One idle client and a good one: matrix.stall's measurement, its CLI and the compat step.

Real servers on loopback with real certificates: the reference server (which must not stall)
and a small stdlib ``ssl`` server written here that, like werkzeug's development server, runs
the handshake on its accept thread (which must). Stalled cases use a 1 s client timeout so
that each takes about a second. Nothing sleeps.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.target import ServerSpec
from harness.targets import compat
from harness.targets.reference import target as reference_target
from matrix import stall

REPO = Path(__file__).resolve().parents[1]
SHORT = 1.0  # seconds: the client timeout where a stall is expected


class AcceptThreadServer:
    """Accepts, handshakes and answers on one thread, one connection at a time."""

    def __init__(self, spec: ServerSpec) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(spec.certificate, spec.private_key)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_verify_locations(spec.client_ca)
        self.listener = socket.create_server((spec.bind, 0))
        self.host, self.port = spec.bind, self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            conn.settimeout(30)  # only so that a broken test cannot hang this thread forever
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:  # the handshake
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = tls.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    tls.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
                    )
            except OSError:
                conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        self.listener.close()
        self.thread.join(5)


class AcceptThreadTarget:
    name = "accept-thread"
    started = 0

    def unsupported(self, spec: ServerSpec) -> str | None:
        if spec.adapter != "builtin":
            return "stdlib ssl only"
        return None if spec.client_check == "required" else "required only"

    def start(self, spec: ServerSpec) -> AcceptThreadServer:
        self.started += 1
        return AcceptThreadServer(spec)

    def provides(self, adapter: str, variable: str) -> bool:
        return False

    def versions(self) -> dict[str, str]:
        return {}


def test_reference_server_is_not_stalled_by_idle_clients(certs):
    result = stall.measure_idle_stall(reference_target(), certs)
    assert (result["adapter"], result["policy"], result["bind"]) == (
        "builtin",
        "required",
        "127.0.0.1",
    )
    assert result["stalled"] is False, result["detail"]
    assert set(result["with_idle_ms"]) == {"1", "4"}
    assert result["timed_out"] == []
    assert 0 < result["baseline_ms"] < 1000
    assert set(result["added_ms"]) == {"1", "4"}
    assert result["extra_ms"] == max(0.0, *result["added_ms"].values()) < stall.STALL_MS
    assert result["after_ms"] < 1000
    assert "error" not in result and "unsupported" not in result
    json.dumps(result)  # goes into results.json as it is


def test_a_server_that_handshakes_on_its_accept_thread_is_stalled(certs):
    started = time.monotonic()
    result = stall.measure_idle_stall(AcceptThreadTarget(), certs, idle_counts=(1,), timeout=SHORT)
    elapsed = time.monotonic() - started
    assert result["stalled"] is True, result["detail"]
    assert result["timed_out"] == ["1"]
    assert result["with_idle_ms"]["1"] >= SHORT * 1000
    assert result["baseline_ms"] < 1000
    assert result["after_ms"] < 1000  # served again once the idle client has gone
    assert "one idle client delays a good one" in result["detail"]
    assert elapsed < 5 * SHORT  # one timed-out request, not one per sample


def test_a_target_that_cannot_express_the_configuration_is_not_started(certs):
    class Nothing(AcceptThreadTarget):
        def unsupported(self, spec):
            return "no TLS here"

    target = Nothing()
    result = stall.measure_idle_stall(target, certs)
    assert target.started == 0
    assert result["stalled"] is None
    assert result["unsupported"] == "no TLS here"
    assert result["detail"] == "not measured: unsupported by accept-thread: no TLS here"


def test_prefers_required_then_optional_on_the_first_supported_adapter(certs):
    class OptionalOnly(AcceptThreadTarget):
        adapters = ("rustls",)

        def unsupported(self, spec):
            if spec.adapter != "pyopenssl":
                return "pyopenssl only"
            return None if spec.client_check == "optional" else "optional only"

    spec, why = stall.choose_spec(OptionalOnly(), certs)
    assert spec is not None and why == ""
    assert (spec.adapter, spec.client_check, spec.check_host, spec.bind) == (
        "pyopenssl",
        "optional",
        False,
        "127.0.0.1",
    )
    assert spec.certificate == certs["server"].cert and spec.client_ca == certs["ca"].cert


def test_a_server_that_does_not_start_is_recorded_not_raised(certs):
    class Broken(AcceptThreadTarget):
        def start(self, spec):
            raise RuntimeError("port taken")

    result = stall.measure_idle_stall(Broken(), certs)
    assert result["stalled"] is None
    assert result["error"] == "server could not start: RuntimeError: port taken"


def run_stall(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "matrix.stall", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_merges_into_results_and_keeps_the_rest(certs, tmp_path):
    path = tmp_path / "results.json"
    original = {
        "schema": 1,
        "run": {"target": "reference", "resilience": {"other": 1}, "versions": {"x": "1"}},
        "cases": [{"id": "a"}],
        "extra": True,
    }
    path.write_text(json.dumps(original))
    proc = run_stall(
        "--target",
        "harness.targets.reference:target",
        "--results",
        path,
        "--certs-dir",
        certs.root,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("idle client: reference (builtin, required): no stall")
    data = json.loads(path.read_text())
    measured = data["run"]["resilience"].pop("idle_client")
    assert data == original
    assert measured["stalled"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no temp file left


def test_cli_bad_input_is_one_line_and_exit_2(certs, tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": 1, "run": {"target": "gunicorn"}, "cases": []}))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    common = ["--target", "harness.targets.reference:target", "--certs-dir", str(certs.root)]
    for path, words in (
        (tmp_path / "missing.json", "no such results file"),
        (broken, "not a readable results file"),
        (other, "results of target 'gunicorn', not 'reference'"),
    ):
        proc = run_stall(*common, "--results", path)
        assert proc.returncode == 2, (path, proc.stderr)
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and words in lines[0], proc.stderr
    assert json.loads(other.read_text())["run"] == {"target": "gunicorn"}  # untouched


def fake_matrix(command, timeout):
    """The compat driver's pytest run, replaced: a results file with one passing case."""
    path = Path(command[command.index("--results") + 1])
    case = {"id": "x", "status": "pass", "detail": ""}
    path.write_text(json.dumps({"schema": 1, "run": {"target": "cheroot_native"}, "cases": [case]}))
    return 0, []


def test_compat_driver_measures_each_target_after_its_matrix(certs, tmp_path, monkeypatch, capsys):
    """Cheroot's own builtin adapter handshakes on the accept thread: stalled (issue 6)."""
    pytest.importorskip("cheroot")
    monkeypatch.setattr(compat, "_run_streaming", fake_matrix)
    status = compat.main(
        ["--out", str(tmp_path), "--idle-timeout", str(SHORT), "cheroot_native", "--",
         "--certs-dir", str(certs.root)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == compat.EXIT_OK, out
    measured = json.loads((tmp_path / "cheroot_native.json").read_text())["run"]["resilience"]
    idle = measured["idle_client"]
    assert (idle["adapter"], idle["policy"], idle["stalled"]) == ("builtin", "required", True)
    assert idle["timed_out"] == ["1", "4"] and idle["timeout_s"] == SHORT
    assert "idle client: cheroot_native (builtin, required): STALLED" in out
    assert "STALLED" in out.split("== compat summary")[1]


def test_compat_driver_skips_the_step_on_a_partial_run_or_when_asked(tmp_path, monkeypatch):
    pytest.importorskip("cheroot")
    monkeypatch.setattr(compat, "_run_streaming", fake_matrix)
    for args in (["--", "--case", "x"], ["--", "-kfoo"], ["--no-idle"]):
        assert compat.main(["--out", str(tmp_path), "cheroot_native", *args]) == compat.EXIT_OK
        run = json.loads((tmp_path / "cheroot_native.json").read_text())["run"]
        assert "resilience" not in run, args
    assert compat.certs_dir(["--certs-dir=/x/y"]) == Path("/x/y")
    assert compat.certs_dir([]) == compat.PROJECT_ROOT / "build/matrix-certs"
