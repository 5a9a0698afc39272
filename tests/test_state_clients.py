"""Real clients against the reference server's SNI virtual hosts and reload (SPEC section 9):
``openssl s_client -servername`` and ``-sess_out/-sess_in``, and curl ``--resolve``.

The server: default host ``ignore``, ``b.test`` under ``required`` with ``ca``, on both
adapters. These clients say in their own words what the matrix's Python client says:
the name sent picks the policy, and a session saved before a reload to ``required``
does not get a client without a certificate in.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess

import pytest

from harness.target import ServerSpec, SNIHost
from harness.targets.reference import ReferenceTarget

OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")
TIMEOUT = 20
REQUEST = "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"


@pytest.fixture(params=["builtin", "pyopenssl"])
def server(request, certs):
    spec = ServerSpec(
        adapter=request.param,
        client_check="ignore",
        check_host=False,
        bind="127.0.0.1",
        certificate=certs["server"].cert,
        private_key=certs["server"].key,
        client_ca=None,
        sni_hosts=(SNIHost("b.test", "required", False, certs["ca"].cert),),
    )
    handle = ReferenceTarget().start(spec)
    yield handle, spec
    handle.stop()


def s_client(port: int, certs, *args: str, host: str = "127.0.0.1") -> str:
    command = [
        OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(certs["ca"].cert),
        "-tls1_3", "-ign_eof", *args,
    ]  # fmt: skip
    proc = subprocess.run(
        command, input=REQUEST.format(host=host), capture_output=True, text=True, timeout=TIMEOUT
    )
    return proc.stdout + proc.stderr


def body(output: str) -> dict:
    """The application's JSON answer within s_client's output (session dumps follow it)."""
    start = output.find('{\n "')
    return json.JSONDecoder().raw_decode(output, start)[0] if start >= 0 else {}


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
def test_s_client_servername_picks_the_policy(server, certs):
    handle, _ = server
    plain = s_client(handle.port, certs)  # no certificate, no name: the default host
    assert "HTTP/1.1 200" in plain and body(plain)["MTLS_VIRTUAL_HOST"] == "_default_"
    named = s_client(handle.port, certs, "-servername", "b.test", host="b.test")
    assert "HTTP/1.1 200" not in named
    assert "alert certificate required" in named  # TLS 1.3: certificate_required
    cert = certs["localhost"]
    admitted = s_client(
        handle.port, certs, "-servername", "b.test", "-cert", str(cert.cert),
        "-key", str(cert.key), host="b.test",
    )  # fmt: skip
    seen = body(admitted)
    assert seen["SSL_CLIENT_VERIFY"] == "SUCCESS" and seen["SSL_TLS_SNI"] == "b.test"
    assert seen["MTLS_VIRTUAL_HOST"] == "b.test"


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
def test_s_client_session_saved_before_a_reload_gets_no_one_in(server, certs, tmp_path):
    handle, spec = server
    saved = tmp_path / "session.pem"
    first = s_client(handle.port, certs, "-sess_out", str(saved))
    assert "HTTP/1.1 200" in first and saved.stat().st_size > 0
    again = s_client(handle.port, certs, "-sess_in", str(saved))
    assert "Reused, TLSv1.3" in again  # the same server resumes its own session
    handle.reload(dataclasses.replace(spec, client_check="required", client_ca=certs["ca"].cert))
    after = s_client(handle.port, certs, "-sess_in", str(saved))
    assert "Reused" not in after and "HTTP/1.1 200" not in after
    assert "alert certificate required" in after


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_resolve_sends_the_name(server, certs):
    handle, _ = server
    url = f"https://b.test:{handle.port}/"
    command = [
        CURL, "-sS", "--max-time", "10", "--resolve", f"b.test:{handle.port}:127.0.0.1",
        # the server's certificate names localhost, not the virtual host: its name is not
        # the question here (-k); the client certificate is
        "-k",
    ]  # fmt: skip
    refused = subprocess.run([*command, url], capture_output=True, text=True, timeout=TIMEOUT)
    assert refused.returncode != 0 and "certificate required" in refused.stderr
    cert = certs["localhost"]
    served = subprocess.run(
        [*command, "--cert", str(cert.cert), "--key", str(cert.key), url],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    seen = json.loads(served.stdout)
    assert seen["SSL_TLS_SNI"] == "b.test" and seen["MTLS_VIRTUAL_HOST"] == "b.test"
    assert seen["SSL_CLIENT_VERIFY"] == "SUCCESS"
