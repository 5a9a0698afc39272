"""The CherryPy integration: a CherryPy 18 application verifies client certificates
from its configuration keys alone (harness.cherrypy_mtls), checked by running the
matrix against the ``cherrypy`` target (a real CherryPy process per configuration)
and by configuring CherryPy in this process the way an application does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

cherrypy = pytest.importorskip("cherrypy")

from harness import cherrypy_mtls  # noqa: E402
from harness.reference import ConfigError  # noqa: E402
from harness.reference.adapters import ClientCertAdapter  # noqa: E402
from harness.reference.server import listen_backlog  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _cheroot_left_as_found():
    """CherryPy's CPWSGIServer switches every Cheroot server in the process to proxy
    mode (a shared class attribute): put it back for the tests that follow."""
    from cheroot import server as cheroot_server

    shared = cheroot_server.HTTPConnection.RequestHandlerClass
    yield
    cheroot_server.HTTPConnection.RequestHandlerClass = shared


class FakeServer:
    """Stands for ``cherrypy.server``: only the attributes CherryPy's config sets."""

    def __init__(self, **keys):
        for key, value in keys.items():
            setattr(self, key, value)


def test_the_matrix_passes_against_a_cherrypy_application(tmp_path, certs):
    """Both adapters, the host-check policies and the server-certificate grid."""
    results = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(REPO)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "matrix"), "-q", "-p", "no:randomly",
         "-p", "no:cacheprovider", "--target", "harness.targets.cherrypy:target",
         "-k", "required+host or server:", "--results", str(results),
         "--certs-dir", str(certs.root)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:]
    cases = json.loads(results.read_text())["cases"]
    assert {c["adapter"] for c in cases} == {"builtin", "pyopenssl"}
    assert len(cases) == 2 * 42 + 40
    assert all(c["status"] in ("pass", "skip") for c in cases)
    assert not [c for c in cases if c["detail"].startswith("unsupported by")]


def test_client_keys_alone_select_the_reference_adapter(certs):
    keys = {
        "ssl_module": "pyopenssl",
        "ssl_certificate": str(certs["server"].cert),
        "ssl_private_key": str(certs["server"].key),
        "ssl_client_CA": str(certs["ca"].cert),
        "ssl_client_check": "required",
        "ssl_client_check_host": "true",
    }
    config = cherrypy_mtls.server_config(FakeServer(**keys))
    assert config == {f"server.{k}": v for k, v in keys.items()}
    server = cherrypy._cpserver.Server()
    for key, value in keys.items():
        setattr(server, key, value)
    server.socket_host, server.socket_port = "127.0.0.1", 0
    cherrypy_mtls.install(server)
    httpserver, _ = server.httpserver_from_self()
    assert isinstance(httpserver, cherrypy_mtls.ClientCertWSGIServer)
    assert isinstance(httpserver.ssl_adapter, ClientCertAdapter)
    # the reference server's gate in front of CherryPy's threads (SPEC section 7)
    assert httpserver.gate is not None
    assert httpserver.request_queue_size == listen_backlog()
    assert httpserver.gate.max_body == 1024 * 1024  # CherryPy's 100 MB bound stays its own


def test_silent_clients_wait_in_the_gate_not_on_cherrypys_threads(certs):
    """Connections that send nothing, or half a ClientHello, hold no thread: a good
    client is served while every thread's worth of them (and more) is open."""
    import socket

    from harness.client import TLSClient

    server = cherrypy._cpserver.Server()
    keys = {
        "ssl_module": "builtin",
        "ssl_certificate": str(certs["server"].cert),
        "ssl_private_key": str(certs["server"].key),
        "ssl_client_CA": str(certs["ca"].cert),
        "ssl_client_check": "required",
        "thread_pool": 2,
    }
    for key, value in keys.items():
        setattr(server, key, value)
    server.socket_host, server.socket_port = "127.0.0.1", 0
    cherrypy_mtls.install(server)
    httpserver, _ = server.httpserver_from_self()
    httpserver.prepare()
    thread = __import__("threading").Thread(target=httpserver.serve, daemon=True)
    thread.start()
    port = httpserver.bind_addr[1]
    attackers = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
    for sock in attackers[:4]:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01")  # a record header and a byte
    try:
        client = TLSClient(certs["ca"].cert, certs["localhost"].key_and_chain, timeout=5)
        attempt = client.get(f"https://127.0.0.1:{port}/")
        # answered by CherryPy (nothing is mounted in this process): it reached a thread
        # although four clients that stopped mid-ClientHello outnumber the two threads
        assert attempt.status == 404, attempt
    finally:
        for sock in attackers:
            sock.close()
        httpserver.stop()
        thread.join(10)


def test_without_client_keys_cherrypys_own_adapter_stays(certs):
    server = cherrypy._cpserver.Server()
    server.ssl_certificate = str(certs["server"].cert)
    server.ssl_private_key = str(certs["server"].key)
    server.socket_host, server.socket_port = "127.0.0.1", 0
    cherrypy_mtls.install(server)
    httpserver, _ = server.httpserver_from_self()
    assert not isinstance(httpserver.ssl_adapter, ClientCertAdapter)


def test_a_configuration_that_cannot_work_is_one_line(certs):
    server = cherrypy._cpserver.Server()
    server.ssl_certificate = str(certs["server"].cert)
    server.ssl_private_key = str(certs["server"].key)
    server.ssl_client_check = "ignore"
    server.ssl_client_check_host = True
    server.socket_host, server.socket_port = "127.0.0.1", 0
    cherrypy_mtls.install(server)
    with pytest.raises(ConfigError) as info:
        server.httpserver_from_self()
    assert "\n" not in str(info.value)


def test_the_cherrypy_server_refuses_a_bad_client_ca_in_one_line(certs):
    """A client CA file holding no CA certificate: one line and exit 2 before listening
    (CherryPy's engine would hide the error and exit 70 with no output)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, "-m", "harness.apps.cherrypy_server", "--adapter", "builtin",
         "--cert", str(certs["server"].cert), "--key", str(certs["server"].key),
         "--client-ca", str(certs["localhost"].cert), "--client-check", "required"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "no CA certificate" in run.stderr
    assert "listening" not in run.stdout
