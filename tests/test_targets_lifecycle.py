"""Server targets as processes: start, ready, serve, stop, fail to start, never orphaned (issue 6).

Real servers on loopback with real certificates. A target whose server package
is not installed is skipped with that reason. No test sleeps: readiness is the
server's own output line, process exits are awaited through pidfds, and every
wait has a deadline that fails the test when it passes.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import certs_gen
from harness.client import TLSClient
from harness.target import ServerSpec
from harness.targets import compat
from harness.targets.process import (
    PIDS_ENV,
    PROJECT_ROOT,
    ServerStartError,
    any_alive,
    session_members,
    start_server,
    wait_gone,
)
from tests.hold_plugin import HOLD_LINE

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="process-group and /proc checks are Linux-only"
)

# module, adapter it runs, what must be importable
TARGETS = [
    ("cheroot_native", "builtin", "cheroot"),
    ("cheroot_native", "pyopenssl", "cheroot"),
    ("gunicorn", "builtin", "gunicorn"),
    ("uvicorn", "builtin", "uvicorn"),
    ("hypercorn", "builtin", "hypercorn"),
    ("granian", "rustls", "granian"),
    ("werkzeug", "builtin", "werkzeug"),
]
IDS = [f"{m}-{a}" for m, a, _ in TARGETS]
GONE_WITHIN = 10.0  # seconds for every process of a stopped or orphaned server to exit
# What each server itself says when its certificate file does not exist.
MISSING_FILE = re.compile(r"No such file|does not exist|system lib")


def load(module: str, package: str):
    pytest.importorskip(package, reason=f"{package} is not installed (pip install '.[compat]')")
    return importlib.import_module(f"harness.targets.{module}").target()


def make_spec(
    certs: certs_gen.CertSet, adapter: str, policy: str = "required", **change
) -> ServerSpec:
    fields = {
        "adapter": adapter,
        "client_check": policy,
        "check_host": False,
        "bind": "127.0.0.1",
        "certificate": certs["server"].cert,
        "private_key": certs["server"].key,
        "client_ca": certs["ca"].cert,
    }
    fields.update(change)
    return ServerSpec(**fields)


def assert_gone(pids: list[int]) -> None:
    """Every process of these sessions (the servers and their workers) has exited."""
    members = [p for sid in pids for p in session_members(sid)]
    assert wait_gone(members, GONE_WITHIN) == []
    assert any_alive(pids) == {}


@pytest.mark.parametrize(("module", "adapter", "package"), TARGETS, ids=IDS)
def test_start_serve_and_stop(certs, module, adapter, package):
    target = load(module, package)
    spec = make_spec(certs, adapter)
    assert target.unsupported(spec) is None
    started = time.monotonic()
    server = target.start(spec)
    try:
        assert time.monotonic() - started < 15
        assert server.host == "127.0.0.1" and server.port > 0
        assert session_members(server.pid), "the server runs in its own session"
        url = f"https://127.0.0.1:{server.port}/"
        good = TLSClient(certs["ca"].cert, certs["localhost"].key_and_chain).get(url)
        assert good.outcome == "ok", good.detail
        assert good.environ.get("wsgi.url_scheme") == "https"
        refused = TLSClient(certs["ca"].cert).get(url)  # required, and no certificate
        assert refused.outcome == "rejected", refused.detail
        again = TLSClient(certs["ca"].cert, certs["ip"].key_and_chain).get(url)
        assert again.outcome == "ok", again.detail
    finally:
        server.stop()
    assert not server.alive()
    assert_gone([server.pid])
    server.stop()  # idempotent


@pytest.mark.parametrize(("module", "adapter", "package"), TARGETS, ids=IDS)
def test_failed_start_raises_promptly_with_the_servers_own_error(
    certs, module, adapter, package, tmp_path, monkeypatch
):
    target = load(module, package)
    pids = tmp_path / "pids"
    monkeypatch.setenv(PIDS_ENV, str(pids))
    missing = tmp_path / "no-such-server.pem"
    started = time.monotonic()
    with pytest.raises(ServerStartError) as caught:
        target.start(make_spec(certs, adapter, certificate=missing))
    assert time.monotonic() - started < 15
    message = str(caught.value)
    assert f"{target.name} exited with status" in message
    assert MISSING_FILE.search(message), message
    assert caught.value.output, "the server's last lines are attached"
    assert_gone([int(p) for p in pids.read_text().split()])


def test_a_server_that_never_says_ready_is_stopped_at_the_deadline(certs, tmp_path, monkeypatch):
    pytest.importorskip("cheroot")
    pids = tmp_path / "pids"
    monkeypatch.setenv(PIDS_ENV, str(pids))
    args = ["--adapter", "builtin", "--cert", str(certs["server"].cert)]
    args += ["--key", str(certs["server"].key), "--bind", "127.0.0.1"]
    started = time.monotonic()
    with pytest.raises(ServerStartError, match=r"did not become ready within 1 s") as caught:
        start_server(
            "silent", "harness.apps.cheroot_server", args, "never printed", host="x", port=1,
            timeout=1.0,
        )  # fmt: skip
    assert time.monotonic() - started < 5
    assert any("listening on https://127.0.0.1:" in line for line in caught.value.output)
    assert_gone([int(p) for p in pids.read_text().split()])


def test_a_dropped_handle_takes_its_server_along(certs):
    target = load("cheroot_native", "cheroot")
    server = target.start(make_spec(certs, "builtin"))
    pid = server.pid
    del server
    gc.collect()
    assert_gone([pid])


HARNESS = """
import sys
from pathlib import Path
from harness.targets.cheroot_native import target
from harness.target import ServerSpec
c = Path(sys.argv[1])
s = target().start(ServerSpec("builtin", "required", False, "127.0.0.1",
                              c / "server.pem", c / "server.key", c / "ca.pem"))
print("server", s.pid, flush=True)
sys.stdin.read()  # until killed
"""


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_harness_killed_without_cleanup_leaves_no_server(certs, how):
    """SIGKILL (and SIGTERM's default action) run no atexit handler: the watch pipe and the
    parent-death signal are what stop the server."""
    pytest.importorskip("cheroot")
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS, str(certs.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=PROJECT_ROOT,
        text=True,
    )
    try:
        line = harness.stdout.readline()  # bounded: the start itself has a 15 s deadline
        assert line.startswith("server "), line
        pid = int(line.split()[1])
        members = session_members(pid)
        assert members
        harness.send_signal(getattr(signal, how))
        harness.wait(GONE_WITHIN)
        assert wait_gone(members, GONE_WITHIN) == []
        assert any_alive([pid]) == {}
    finally:
        harness.kill()
        harness.wait()


INTERRUPTED = [
    ("cheroot_native", "cheroot", "SIGINT"),
    ("cheroot_native", "cheroot", "SIGKILL"),
    ("gunicorn", "gunicorn", "SIGINT"),
    ("gunicorn", "gunicorn", "SIGKILL"),
]


@pytest.mark.parametrize(
    ("module", "package", "how"), INTERRUPTED, ids=[f"{m}-{h}" for m, _, h in INTERRUPTED]
)
def test_an_interrupted_matrix_run_leaves_no_orphans(certs, tmp_path, module, package, how):
    """Interrupt ``pytest matrix --target ...`` once its first case has run (so servers are
    live), then every process of every server it started must be gone."""
    load(module, package)
    pids = tmp_path / "pids"
    env = dict(os.environ, **{PIDS_ENV: str(pids)})
    env.pop("PYTEST_ADDOPTS", None)
    args = [
        "matrix",
        "-p",
        "no:cacheprovider",
        "-v",
        "--target",
        f"harness.targets.{module}:target",
    ]
    args += ["--results", str(tmp_path / "results.json"), "--certs-dir", str(certs.root)]
    args += ["-k", "builtin and not host", "-p", "tests.hold_plugin"]
    # The run holds at its second case of a configuration (tests/hold_plugin.py): a
    # server is live then and the run unfinished, however fast or slow the machine is.
    run = start_server(
        "pytest", "pytest", args, re.escape(HOLD_LINE), host="-", port=0,
        timeout=60.0, env=env, cwd=PROJECT_ROOT,
    )  # fmt: skip
    try:
        sids = [int(p) for p in pids.read_text().split()]
        live = any_alive(sids)
        assert live, "a server is running when the run is interrupted"
        members = [p for ps in live.values() for p in ps]
        os.kill(run.pid, getattr(signal, how))
        status = run.process.wait(30)
        # an interrupted matrix run exits 130 (matrix/interrupts.py, SPEC section 10);
        # what this test is about is that no server outlives it.
        expected = (130,) if how == "SIGINT" else (-signal.SIGKILL,)
        assert status in expected, run.output()[-20:]
        assert wait_gone(members, GONE_WITHIN) == []
        sids = [int(p) for p in pids.read_text().split()]  # any started meanwhile too
        assert any_alive(sids) == {}
    finally:
        run.stop()


# -- the compat driver ---------------------------------------------------------------------

# a case cheroot_native passes whatever the timing: the client refuses the server. (Its
# own refusals are findings since refusal forms are checked: it closes the connection
# right after the alert, and the close often overtakes it.)
ONE_CASE = "builtin-required-bind:0.0.0.0-connect:127.0.0.1-client:localhost-server:server-wrong-ca"


def test_compat_runs_each_target_and_reports_a_missing_one(certs, tmp_path, monkeypatch, capsys):
    pytest.importorskip("cheroot")
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "gunicorn" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    status = compat.main(
        ["--out", str(tmp_path), "gunicorn", "cheroot_native", "--", "--case", ONE_CASE,
         "--certs-dir", str(certs.root)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == compat.EXIT_NOT_RUNNABLE
    assert "gunicorn: not runnable: --target gunicorn: gunicorn is not installed" in out
    results = tmp_path / "cheroot_native.json"
    assert results.is_file() and not (tmp_path / "gunicorn.json").exists()
    assert re.search(r"cheroot_native\s+ran\s+1\s+0\s+0", out), out


def test_compat_exits_zero_when_every_target_ran_even_with_failures(certs, tmp_path, capsys):
    pytest.importorskip("cheroot")
    environ_case = "builtin-ignore-bind:127.0.0.1-connect:127.0.0.1-client:none"  # a finding
    status = compat.main(
        ["--out", str(tmp_path), "cheroot_native", "--", "--case", environ_case, "--case",
         ONE_CASE, "--certs-dir", str(certs.root)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == compat.EXIT_OK, out
    assert re.search(r"cheroot_native\s+ran\s+1\s+1\s+0", out), out


def fake_run(results_cases, code=1, tail=()):
    def run(command, timeout, env=None):
        if results_cases is not None:
            path = Path(command[command.index("--results") + 1])
            path.write_text(compat.json.dumps({"run": {}, "cases": results_cases}))
        return code, list(tail)

    return run


def test_compat_reports_a_server_that_could_not_start_as_not_runnable(
    tmp_path, monkeypatch, capsys
):
    pytest.importorskip("cheroot")
    detail = (
        "cheroot_native could not start builtin-required-bind:127.0.0.1-cert:server: "
        "ServerStartError: cheroot_native exited with status 1 before it was ready; its last "
        "output:\n    FileNotFoundError: [Errno 2] No such file or directory"
    )
    case = {"id": ONE_CASE, "status": "fail", "detail": detail}
    monkeypatch.setattr(compat, "_run_streaming", fake_run([case]))
    status = compat.main(["--out", str(tmp_path), "cheroot_native"])
    out = capsys.readouterr().out
    assert status == compat.EXIT_NOT_RUNNABLE
    assert "cheroot_native: not runnable: 1 server configuration(s) could not start" in out
    assert "FileNotFoundError: [Errno 2] No such file or directory" in out


def test_compat_reports_a_harness_failure(tmp_path, monkeypatch, capsys):
    pytest.importorskip("cheroot")
    monkeypatch.setattr(compat, "_run_streaming", fake_run(None, 3, ["INTERNALERROR> boom"]))
    status = compat.main(["--out", str(tmp_path), "cheroot_native"])
    out = capsys.readouterr().out
    assert status == compat.EXIT_HARNESS
    assert "harness failed: pytest exited with status 3, no results" in out
    assert "INTERNALERROR> boom" in out


def test_compat_refuses_an_unknown_target(tmp_path):
    with pytest.raises(SystemExit) as caught:
        compat.main(["--out", str(tmp_path), "nginx"])
    assert caught.value.code == 2
