"""The apache target: what it declares, the configuration it writes, and httpd's lifecycle.

The declarations and the configuration are plain data and need no httpd. The
lifecycle tests start Debian's apache2 on loopback (skipped, with the reason,
where it is not installed): serve and refuse, stop with every process gone and
the temporary ServerRoot removed, a failed start carrying httpd's own message,
and the one retry when the picked port was taken meanwhile.
"""

from __future__ import annotations

import gc
import socket
from pathlib import Path

import pytest

import harness.targets.apache as apache
from harness.client import TLSClient
from harness.target import ServerSpec
from harness.targets.apache import ApacheTarget, httpd_conf, write_server_root
from harness.targets.process import ServerStartError, any_alive, session_members, wait_gone
from matrix.dimensions import POLICY_SETTINGS

NOT_INSTALLED = ApacheTarget().installed()
needs_apache = pytest.mark.skipif(NOT_INSTALLED is not None, reason=str(NOT_INSTALLED))
GONE_WITHIN = 10.0


def spec(policy="required", adapter="mod_ssl", bind="127.0.0.1", **change) -> ServerSpec:
    check, host = POLICY_SETTINGS[policy]
    fields = dict(
        adapter=adapter,
        client_check=check,
        check_host=host,
        bind=bind,
        certificate=Path("/c/server.pem"),
        private_key=Path("/c/server.key"),
        client_ca=Path("/c/ca.pem"),
    )
    fields.update(change)
    return ServerSpec(**fields)


def real_spec(certs, policy="required", **change) -> ServerSpec:
    change.setdefault("certificate", certs["server"].cert)
    change.setdefault("private_key", certs["server"].key)
    change.setdefault("client_ca", certs["ca"].cert)
    return spec(policy, **change)


# -- declarations and configuration (no httpd) -------------------------------------------


def test_declarations():
    target = ApacheTarget()
    assert target.adapters == ("mod_ssl",)
    assert target.unsupported(spec("required")) is None
    assert target.unsupported(spec("ignore", bind="0.0.0.0")) is None
    assert "host name" in target.unsupported(spec("required+host"))
    assert "mod_ssl" in target.unsupported(spec("required", adapter="builtin"))
    for name in ("HTTPS", "wsgi.url_scheme", "SSL_CLIENT_S_DN_OU_1", "SSL_SERVER_S_DN"):
        assert target.provides("mod_ssl", name)
    assert not target.provides("builtin", "SSL_CLIENT_S_DN")
    assert target.provides("mod_ssl", "REMOTE_ADDR")  # the CGI environment's, SPEC section 9
    assert {"per-path", "tls-version"} <= target.features


@pytest.mark.parametrize(
    ("policy", "verify"), [("ignore", "none"), ("optional", "optional"), ("required", "require")]
)
def test_configuration_per_policy(tmp_path, policy, verify):
    conf = httpd_conf(tmp_path, spec(policy), 4433, Path("/c/server.pem"), None)
    lines = conf.splitlines()
    assert f"SSLVerifyClient {verify}" in lines
    assert "SSLOptions +StdEnvVars +ExportCertData" in lines
    assert "Listen 127.0.0.1:4433" in lines
    assert ('SSLCACertificateFile "/c/ca.pem"' in lines) is (policy != "ignore")
    assert not [line for line in lines if "Revocation" in line]
    assert not [line for line in lines if line.startswith(("User ", "Group "))]
    for line in lines:  # nothing outside the ServerRoot, the spec's files and the modules
        for path in [w.strip('"') for w in line.split() if w.strip('"').startswith("/")]:
            assert path.startswith((str(tmp_path), "/c/", str(apache.MODULES), "/dev/stderr"))


def test_configuration_without_a_client_ca_and_with_a_crl(tmp_path):
    conf = httpd_conf(
        tmp_path, spec("required", client_ca=None), 1, Path("/c/s.pem"), "nobody"
    ).splitlines()
    assert not [line for line in conf if line.startswith("SSLCACertificateFile")]
    assert "User nobody" in conf
    crl_spec = spec("optional")
    object.__setattr__(crl_spec, "crl", Path("/c/ca.crl.pem"))  # ServerSpec gains crl (issue 12)
    conf = httpd_conf(tmp_path, crl_spec, 1, Path("/c/s.pem"), None).splitlines()
    assert 'SSLCARevocationFile "/c/ca.crl.pem"' in conf
    assert "SSLCARevocationCheck leaf" in conf


def test_ipv6_listen_uses_brackets(tmp_path):
    conf = httpd_conf(tmp_path, spec(bind="::"), 8443, Path("/c/s.pem"), None)
    assert "Listen [::]:8443" in conf.splitlines()


def test_server_root_holds_the_script_and_the_chain(certs, tmp_path):
    chained = real_spec(certs)
    object.__setattr__(chained, "certificate_chain", certs["ca"].cert)
    write_server_root(tmp_path, chained, 4433)
    script = tmp_path / "env.cgi"
    assert script.read_text().startswith("#!/") and script.stat().st_mode & 0o111
    pem = (tmp_path / "server.pem").read_text()
    assert pem.count("BEGIN CERTIFICATE") == 2
    assert pem.startswith(certs["server"].cert.read_text().rstrip("\n"))
    assert (
        f'SSLCertificateFile "{tmp_path / "server.pem"}"' in (tmp_path / "httpd.conf").read_text()
    )


# -- lifecycle (httpd) ---------------------------------------------------------------------


def assert_gone(pid: int) -> None:
    assert wait_gone(session_members(pid), GONE_WITHIN) == []
    assert any_alive([pid]) == {}


@needs_apache
def test_start_serve_refuse_and_stop(certs):
    server = ApacheTarget().start(real_spec(certs, "required"))
    root = server.root
    try:
        assert root.is_dir() and server.port > 0
        assert len(session_members(server.pid)) >= 3, "wrapper, httpd, its child and cgid"
        url = f"https://127.0.0.1:{server.port}/"
        good = TLSClient(certs["ca"].cert, certs["localhost"].key_and_chain).get(url)
        assert good.outcome == "ok", good.detail
        assert good.environ["SSL_CLIENT_S_DN_CN"] == "localhost"
        assert good.environ["wsgi.url_scheme"] == "https"
        assert good.environ["HTTPS"] == "on"
        refused = TLSClient(certs["ca"].cert).get(url)
        assert refused.outcome == "rejected", refused.detail
    finally:
        server.stop()
    assert not root.exists()
    assert_gone(server.pid)
    server.stop()  # idempotent


@needs_apache
def test_failed_start_carries_httpds_message_and_leaves_nothing(certs, tmp_path, monkeypatch):
    missing = tmp_path / "no-such-server.pem"
    roots = []  # the ServerRoots this start made (other tests may start httpd meanwhile)
    real_mkdtemp = apache.tempfile.mkdtemp

    def mkdtemp(**kwargs):
        roots.append(Path(real_mkdtemp(**kwargs)))
        return str(roots[-1])

    monkeypatch.setattr(apache.tempfile, "mkdtemp", mkdtemp)
    with pytest.raises(ServerStartError) as caught:
        ApacheTarget().start(real_spec(certs, certificate=missing))
    message = str(caught.value)
    assert "apache exited with status 1" in message
    assert f"SSLCertificateFile: file '{missing}' does not exist" in message
    assert roots and not [root for root in roots if root.exists()]


@needs_apache
def test_a_port_taken_meanwhile_is_retried_once(certs, monkeypatch):
    """free_port's answer can be stale by the time httpd binds: the target tries once more."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    taken_port = taken.getsockname()[1]
    picks = [taken_port]
    real_free_port = apache.free_port
    monkeypatch.setattr(
        apache, "free_port", lambda host: picks.pop() if picks else real_free_port(host)
    )
    try:
        server = ApacheTarget().start(real_spec(certs))
    finally:
        taken.close()
    try:
        assert not picks, "the stale port was tried first"
        assert server.port != taken_port
        url = f"https://127.0.0.1:{server.port}/"
        good = TLSClient(certs["ca"].cert, certs["localhost"].key_and_chain).get(url)
        assert good.outcome == "ok", good.detail
    finally:
        server.stop()
    assert_gone(server.pid)


@needs_apache
def test_a_dropped_handle_takes_httpd_and_its_root_along(certs):
    server = ApacheTarget().start(real_spec(certs, "optional"))
    pid, root = server.pid, server.root
    del server
    gc.collect()
    assert_gone(pid)
    assert not root.exists()
