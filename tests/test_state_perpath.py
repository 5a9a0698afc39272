"""The per-path grid (SPEC section 9, "A certificate asked for by path").

Real servers, real clients on loopback: the stdlib client offers TLS 1.3
post-handshake authentication or not (``post_handshake_auth``) and accepts a TLS
1.2 renegotiation or not (``OP_NO_RENEGOTIATION``). The reference server passes
every case its back-ends can express (the stdlib cannot renegotiate, pyOpenSSL has
no post-handshake authentication: unsupported, with that reason); Apache httpd,
the truth the oracle's refusal forms were measured on, passes every case; a
server that relies on its TLS context to ask (python/cpython#81609) fails exactly
the ``/secure/`` refusals, as security.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import socket
import subprocess
import sys
import threading

import pytest
from cheroot import wsgi as cheroot_wsgi

from harness.reference import ConfigError, ReferenceServer, make_adapter, tls_environ_app
from harness.reference.perpath import policy_for
from harness.target import CheckedTarget, required_features
from harness.targets.apache import ApacheTarget
from harness.targets.reference import ReferenceTarget
from matrix.problems import AVAILABILITY, OUTCOME, PROTOCOL, REFUSAL_FORM, SECURITY
from matrix.state import perpath
from matrix.state.standalone import _spec, run_perpath
from matrix.state.wire import ClientSetup, context, exchange, request_bytes
from tests import wrong_state_servers as wrong

ADAPTERS = ("builtin", "pyopenssl")
APACHE_MISSING = ApacheTarget().installed()


def pcase(base="ignore", path="/secure/", tls="TLSv1.3", answer="can", credential="localhost"):
    return perpath.PathCase("builtin", base, path, tls, answer, credential)


# -- the oracle -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "outcome"),
    [
        ({"path": "/", "credential": "none"}, "ok"),
        ({"path": "/", "base": "optional", "credential": "wrong-ca"}, "alert:unknown_ca"),
        ({"answer": "cannot"}, "status:403"),
        ({"credential": "none"}, "alert:certificate_required"),
        ({"credential": "wrong-ca"}, "alert:unknown_ca"),
        ({"base": "optional", "credential": "none"}, "status:403"),
        ({"tls": "TLSv1.2", "answer": "cannot"}, "alert:handshake_failure"),
        ({"tls": "TLSv1.2", "credential": "none"}, "alert:handshake_failure"),
        ({"tls": "TLSv1.2"}, "ok"),
    ],
)
def test_predictions(kw, outcome):
    assert perpath.predict(pcase(**kw)).outcome == outcome


def test_a_client_verified_in_the_handshake_may_be_asked_again_as_apache_does():
    want = perpath.predict(pcase(base="optional"))
    assert (want.outcome, want.also, want.verified) == ("ok", ("status:403",), True)


def test_judgement_ranks_as_spec_section_6():
    refused = pcase(credential="none")
    assert perpath.judge(refused, "alert:certificate_required", None) == []
    (p,) = perpath.judge(refused, "ok", {"SSL_CLIENT_VERIFY": "NONE"})
    assert (p.kind, p.severity) == (OUTCOME, SECURITY)
    (p,) = perpath.judge(refused, "status:403", None)
    assert (p.kind, p.severity) == (REFUSAL_FORM, PROTOCOL)
    (p,) = perpath.judge(pcase(), "status:403", None)
    assert (p.kind, p.severity) == (OUTCOME, AVAILABILITY)
    (p,) = perpath.judge(pcase(), "ok", {"SSL_CLIENT_VERIFY": "NONE"})  # served unverified
    assert (p.kind, p.severity) == (OUTCOME, SECURITY)


@pytest.mark.parametrize(
    "path", ["/public/../secure/x", "//secure/", "/secure%2Fx", "/x/%2e%2e/secure/", "/./secure/"]
)
def test_policy_for_matches_the_path_an_application_would_resolve(path):
    assert policy_for(path, perpath.PATH_POLICIES) == "required"


def test_policy_for_takes_the_longest_prefix():
    policies = (("/secure/", "required"), ("/secure/open/", "optional"))
    assert policy_for("/secure/x", policies) == "required"
    assert policy_for("/secure/open/x", policies) == "optional"
    assert policy_for("/", policies) is None
    assert policy_for("/secure", policies) is None  # as Apache's <Location "/secure/">


# -- the contract and the configuration -----------------------------------------------------


def test_per_path_and_tls_version_are_declared_features(certs):
    spec = _spec(certs, "builtin", "ignore", path_policies=perpath.PATH_POLICIES)
    assert required_features(spec) == {"per-path"}

    class Older(ReferenceTarget):
        features = frozenset({"crl"})

    results = run_perpath(CheckedTarget(Older()), certs)
    assert {r["status"] for r in results} == {"unsupported"}
    assert all("per-path" in r["reason"] for r in results)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"path_policies": (("/secure/", "optional"),)}, "must be 'required'"),
        ({"path_policies": (("secure", "required"),)}, "must start with '/'"),
        ({"path_policies": 5}, "pairs"),
        ({"client_check": "required"}, "'ignore' or 'optional'"),
        ({"tls_version": "TLSv1.1"}, "unknown tls_version"),
    ],
)
def test_bad_per_path_configurations_are_refused_in_one_line(certs, settings, message):
    base = {"client_check": "ignore", "path_policies": (("/secure/", "required"),)}
    with pytest.raises(ConfigError, match=message) as info:
        make_adapter(
            "builtin",
            certificate=str(certs["server"].cert),
            private_key=str(certs["server"].key),
            client_CA=str(certs["ca"].cert),
            **{**base, **settings},
        )
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("adapter", "version"), [("builtin", "TLSv1.2"), ("pyopenssl", "TLSv1.3")])
def test_a_back_end_that_cannot_ask_in_that_version_refuses_it(certs, adapter, version):
    with pytest.raises(ConfigError, match="need TLS"):
        make_adapter(
            adapter,
            certificate=str(certs["server"].cert),
            private_key=str(certs["server"].key),
            client_CA=str(certs["ca"].cert),
            path_policies=(("/secure/", "required"),),
            tls_version=version,
        )


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_plain_cheroot_server_with_path_policies_serves_nothing(certs, adapter):
    """Fail-safe: without the per-path wrapper nothing would ask for /secure/'s certificate."""
    server = cheroot_wsgi.Server(("127.0.0.1", 0), tls_environ_app, numthreads=2)
    server.ssl_adapter = make_adapter(
        adapter,
        certificate=str(certs["server"].cert),
        private_key=str(certs["server"].key),
        client_CA=str(certs["ca"].cert),
        path_policies=(("/secure/", "required"),),
    )
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        setup = ClientSetup(certs["ca"].cert, post_handshake_auth=True)
        seen = exchange("127.0.0.1", server.bind_addr[1], setup, request_bytes("GET", "/", "x"))
    finally:
        server.stop()
    assert seen.status is None


# -- whole grids ------------------------------------------------------------------------------


def test_reference_passes_every_case_it_can_express(certs):
    results = run_perpath(CheckedTarget(ReferenceTarget()), certs)
    assert len(results) == len(perpath.cases(ADAPTERS))
    assert [(r["id"], r["problems"]) for r in results if r["status"] == "fail"] == []
    unsupported = {
        (r["dims"]["adapter"], r["dims"]["tls"]) for r in results if r["status"] == "unsupported"
    }
    assert unsupported == {("builtin", "TLSv1.2"), ("pyopenssl", "TLSv1.3")}
    reasons = {r["reason"] for r in results if r["status"] == "unsupported"}
    assert any("cannot renegotiate" in why for why in reasons)
    assert any("post-handshake authentication" in why for why in reasons)
    assert sum(r["status"] == "pass" for r in results) == len(results) // 2


@pytest.mark.skipif(APACHE_MISSING is not None, reason=str(APACHE_MISSING))
def test_apache_passes_every_case(certs):
    results = run_perpath(CheckedTarget(ApacheTarget()), certs)
    assert len(results) == len(perpath.cases(("mod_ssl",)))
    assert [(r["id"], r["problems"]) for r in results if r["status"] != "pass"] == []


def test_a_server_that_never_asks_serves_secure_to_anyone(certs):
    """python/cpython#81609's trap: a context that only looks as if it will ask."""
    results = run_perpath(CheckedTarget(wrong.PostHandshakeNeverAsks()), certs)
    failed = {
        r["id"]: {(p["kind"], p["severity"]) for p in r["problems"]}
        for r in results
        if r["status"] == "fail"
    }
    supported = {r["id"] for r in results if r["status"] != "unsupported"}
    expected = {
        c.id: {(OUTCOME, SECURITY)}
        for c in perpath.cases(ADAPTERS)
        if c.id in supported
        and c.path in ("/secure/", "/public/../secure/")  # //secure/: Cheroot says 400
        # served to every client its handshake did not verify (optional: a good one is
        # verified there, a wrong-CA one refused there)
        and not (c.base == "optional" and c.credential != "none")
    }
    assert failed == expected
    assert expected  # the grid has such cases on both back-ends
    assert {c.split("-")[2] for c in expected} == set(ADAPTERS)


# -- one connection, several requests; a client that never answers ---------------------------


def _reference(certs, adapter: str, **kw):
    adapter_ = make_adapter(
        adapter,
        certificate=str(certs["server"].cert),
        private_key=str(certs["server"].key),
        client_CA=str(certs["ca"].cert),
        client_check="ignore",
        path_policies=perpath.PATH_POLICIES,
        **kw,
    )
    return ReferenceServer(adapter_, numthreads=2).start()


def _read_response(tls) -> tuple[int, dict]:
    """One HTTP/1.1 response with a Content-Length, from a blocking TLS socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(65536)
        assert chunk, "closed before a response"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        chunk = tls.recv(65536)
        assert chunk, "closed in the body"
        body += chunk
    status = int(head.split(b" ")[1])
    return status, json.loads(body) if status == 200 else {}


@pytest.mark.parametrize(("adapter", "version"), [("builtin", "TLSv1.3"), ("pyopenssl", "TLSv1.2")])
def test_one_connection_is_asked_once_and_stays_verified(certs, adapter, version):
    """Keep-alive: / unverified, then /secure/ asks (after the handshake, mid-connection),
    then / on the same connection shows the certificate verified then."""
    server = _reference(certs, adapter)
    setup = ClientSetup(
        certs["ca"].cert, certs["localhost"].cert, certs["localhost"].key, version, True, True
    )
    try:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with context(setup).wrap_socket(raw, server_hostname="localhost") as tls:
            seen = []
            for path in ("/", "/secure/", "/"):
                tls.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
                status, shown = _read_response(tls)
                seen.append((path, status, shown.get("SSL_CLIENT_VERIFY")))
    finally:
        server.stop()
    assert seen == [("/", 200, "NONE"), ("/secure/", 200, "SUCCESS"), ("/", 200, "SUCCESS")]


def test_a_client_that_never_answers_is_dropped_at_the_handshake_timeout(certs, caplog):
    """The worker that asked waits at most the handshake timeout; others are served.
    The timeout (2 s) bounds every client's exchanges on this server, the good one's
    too: 0.5 s was within reach of a loaded machine's scheduling delays."""
    server = _reference(certs, "builtin", handshake_timeout=2.0)
    try:
        silent = ClientSetup(certs["ca"].cert, post_handshake_auth=True, tls_version="TLSv1.3")
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with context(silent).wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET /secure/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
            # it does not read, so it does not answer the CertificateRequest; meanwhile:
            good = ClientSetup(
                certs["ca"].cert, certs["localhost"].cert, certs["localhost"].key, "TLSv1.3", True
            )
            served = exchange("127.0.0.1", server.port, good, request_bytes("GET", "/secure/", "x"))
            assert served.status == 200
            # Raw reads, never decrypted: the CertificateRequest stays unanswered until the
            # server gives up (2 s) and closes; bounded by the socket's 10 s timeout.
            tls.settimeout(10)
            with contextlib.suppress(OSError):
                for _ in range(1000):
                    if not socket.socket.recv(tls, 65536):
                        break
    finally:
        server.stop()
    assert "no answer to the certificate request within 2s" in caplog.text


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize(
    ("adapter", "pha", "credential", "seen"),
    [
        ("builtin", True, "localhost", "HTTP/1.1 200 OK"),
        ("builtin", False, "localhost", "HTTP/1.1 403 Forbidden"),
        ("builtin", True, "none", "alert certificate required"),
        ("pyopenssl", False, "localhost", "HTTP/1.1 200 OK"),  # renegotiated
        ("pyopenssl", False, "none", "alert handshake failure"),
    ],
)
def test_openssl_s_client_against_the_reference(certs, adapter, pha, credential, seen):
    """A real client: ``openssl s_client`` asking for /secure/: TLS 1.3 with or without
    ``-enable_pha`` on the stdlib, TLS 1.2 (a renegotiation) on pyOpenSSL."""
    server = _reference(certs, adapter)
    version = "-tls1_3" if adapter == "builtin" else "-tls1_2"
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", version]
    argv += ["-servername", "localhost", "-CAfile", str(certs["ca"].cert), "-ign_eof"]
    if pha:
        argv.append("-enable_pha")
    if credential != "none":
        argv += ["-cert", str(certs[credential].cert), "-key", str(certs[credential].key)]
    request = b"GET /secure/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    try:
        done = subprocess.run(argv, input=request, capture_output=True, timeout=30)
    finally:
        server.stop()
    assert seen in (done.stdout + done.stderr).decode(errors="replace")


def test_the_command_line_takes_path_policies(certs):
    """``python -m harness.reference --require-path /secure/``; a bad prefix is one line, 2."""
    from tests.test_reference_cli import READY, STOP_TIMEOUT, read_line

    argv = [
        sys.executable, "-m", "harness.reference", "--adapter", "builtin",
        "--cert", str(certs["server"].cert), "--key", str(certs["server"].key),
        "--client-ca", str(certs["ca"].cert), "--client-check", "ignore",
        "--bind", "127.0.0.1:0",
    ]  # fmt: skip
    bad = subprocess.run(
        [*argv, "--require-path", "secure"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "must start with '/'" in bad.stderr
    proc = subprocess.Popen(
        [*argv, "--require-path", "/secure/"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(READY.match(read_line(proc, 20.0).rstrip("\n"))["port"])
        good = ClientSetup(
            certs["ca"].cert, certs["localhost"].cert, certs["localhost"].key, None, True
        )
        served = exchange("127.0.0.1", port, good, request_bytes("GET", "/secure/", "x"))
        plain = ClientSetup(certs["ca"].cert, certs["localhost"].cert, certs["localhost"].key)
        refused = exchange("127.0.0.1", port, plain, request_bytes("GET", "/secure/", "x"))
    finally:
        proc.terminate()
        proc.communicate(timeout=STOP_TIMEOUT)
    assert (served.status, served.json()["SSL_CLIENT_VERIFY"]) == (200, "SUCCESS")
    assert refused.status == 403


def test_a_naive_prefix_match_serves_secure_spelled_otherwise(certs):
    """Matched on the request target as sent: /public/../secure/ is served to clients
    never asked; /secure/ itself is still right, and //secure/ never reaches the
    application (Cheroot answers 400: it reads an authority there)."""
    results = run_perpath(CheckedTarget(wrong.NaivePrefix()), certs)
    failed = {r["id"] for r in results if r["status"] == "fail"}
    assert {p["severity"] for r in results for p in r["problems"]} == {SECURITY}
    expected = {
        r["id"]
        for r in results
        if r["status"] != "unsupported"
        and r["dims"]["path"] == "/public/../secure/"
        # not those the handshake decided: a verified client, or a wrong CA refused there
        and not (r["dims"]["policy"] == "optional" and r["dims"]["client"] != "none")
    }
    assert failed == expected
    assert len(expected) == 2 * (6 + 2)  # per back-end: ignore 3 clients x 2, optional none x 2


@pytest.mark.parametrize(("adapter", "version"), [("builtin", "TLSv1.3"), ("pyopenssl", "TLSv1.2")])
def test_a_body_sent_while_the_server_asks_arrives_whole(certs, adapter, version):
    """A POST to /secure/ whose body is already on its way when the server asks: what
    arrives during the exchange is kept, in order, for the application."""

    def digest_app(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        out = json.dumps(
            {
                "sha256": hashlib.sha256(body).hexdigest(),
                **{k: v for k, v in environ.items() if k == "SSL_CLIENT_VERIFY"},
            }
        ).encode()
        start_response("200 OK", [("Content-Length", str(len(out)))])
        return [out]

    adapter_ = make_adapter(
        adapter,
        certificate=str(certs["server"].cert),
        private_key=str(certs["server"].key),
        client_CA=str(certs["ca"].cert),
        path_policies=perpath.PATH_POLICIES,
    )
    server = ReferenceServer(adapter_, app=digest_app, numthreads=2).start()
    body = bytes(range(256)) * 200  # 51,200 bytes: several TLS records
    setup = ClientSetup(
        certs["ca"].cert, certs["localhost"].cert, certs["localhost"].key, version, True, True
    )
    head = f"POST /secure/ HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    try:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with context(setup).wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(head.encode() + body)
            status, shown = _read_response(tls)
    finally:
        server.stop()
    assert status == 200
    assert shown == {"sha256": hashlib.sha256(body).hexdigest(), "SSL_CLIENT_VERIFY": "SUCCESS"}
