"""The request grid (SPEC section 9, "What a request cannot change"), and the reference's fix.

Real sockets on loopback, raw TLS requests (``matrix.state.wire``): an absolute-form
target and headers spelled like variables cannot be sent through an HTTP library.
The oracle is tested on its own; then the grid runs against the reference server
(both adapters: every case passes), and against deliberately wrong servers, each
of which must fail exactly its cases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cheroot import wsgi as cheroot_wsgi

from harness.reference import ReferenceServer, make_adapter, tls_environ_app
from harness.target import CheckedTarget
from harness.targets.apache import ApacheTarget
from harness.targets.reference import ReferenceTarget
from matrix.problems import LOCAL_PROXY_TRUST, REQUEST_OVERRIDE, SECURITY, VISIBILITY
from matrix.state import request
from matrix.state.standalone import run_request
from matrix.state.wire import ClientSetup, exchange, request_bytes
from tests import wrong_state_servers as wrong

FORGERY = {f.id: f for f in request.FORGERIES}


def case(forgery: str, source: str = request.NOT_A_PROXY, credential: str = "localhost"):
    return request.RequestCase("builtin", FORGERY[forgery], source, credential)


CONNECTION = {
    "HTTPS": "on",
    "wsgi.url_scheme": "https",
    "SSL_CLIENT_VERIFY": "SUCCESS",
    "SSL_CLIENT_S_DN": "CN=localhost,OU=client,O=mtls-matrix",
}


# -- the oracle ----------------------------------------------------------------------------


def test_prediction_is_the_connection_whatever_the_request():
    want = request.predict(case("x-forwarded-for", source="127.0.0.2", credential="none"))
    assert want.values == {
        "HTTPS": "on",
        "wsgi.url_scheme": "https",
        "REMOTE_ADDR": "127.0.0.2",
        "SSL_CLIENT_VERIFY": "NONE",
    }
    assert not want.served and not want.client_cert
    assert request.predict(case("baseline")).served


def test_unchanged_or_refused_passes():
    shown = {**CONNECTION, "REMOTE_ADDR": "127.0.0.2"}
    assert request.judge(case("x-forwarded-proto"), 200, shown) == []
    assert request.judge(case("absolute-get-http"), 400, None) == []  # a refusal changes nothing
    assert request.judge(case("absolute-options-http"), 200, None) == []  # no JSON: nothing shown
    none = case("x-ssl-client", credential="none")
    no_cert = {"HTTPS": "on", "SSL_CLIENT_VERIFY": "NONE", "SSL_CLIENT_CERT": ""}  # mod_ssl's ""
    assert request.judge(none, 200, no_cert) == []


def test_a_baseline_that_is_not_served_is_a_failure():
    (problem,) = request.judge(case("baseline"), 400, None)
    assert problem.kind == "outcome" and problem.observed == 400


def test_a_change_from_a_peer_that_is_no_proxy_is_security():
    shown = {**CONNECTION, "wsgi.url_scheme": "http", "REMOTE_ADDR": "10.9.8.7"}
    problems = request.judge(case("x-forwarded-all"), 200, shown)
    assert {(p.kind, p.severity, p.what) for p in problems} == {
        (REQUEST_OVERRIDE, SECURITY, "wsgi.url_scheme"),
        (REQUEST_OVERRIDE, SECURITY, "REMOTE_ADDR"),
    }


def test_a_proxy_header_trusted_from_127_0_0_1_is_a_finding_of_its_own():
    shown = {**CONNECTION, "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1"}
    (problem,) = request.judge(case("x-forwarded-proto", source="127.0.0.1"), 200, shown)
    assert (problem.kind, problem.severity) == (LOCAL_PROXY_TRUST, VISIBILITY)
    # ... but what no proxy sets (a request target) is security from any peer
    shown = {**CONNECTION, "wsgi.url_scheme": "evil", "REMOTE_ADDR": "127.0.0.1"}
    (problem,) = request.judge(case("absolute-options-evil", source="127.0.0.1"), 200, shown)
    assert (problem.kind, problem.severity) == (REQUEST_OVERRIDE, SECURITY)


def test_forged_client_certificate_variables_are_caught():
    forged = {"HTTPS": "on", "SSL_CLIENT_VERIFY": "SUCCESS", "SSL_CLIENT_S_DN": request.FORGED_DN}
    problems = request.judge(case("x-ssl-client", credential="none"), 200, forged)
    assert {p.what for p in problems} == {"SSL_CLIENT_VERIFY", "SSL_CLIENT_S_DN"}
    verified = {**CONNECTION, "SSL_CLIENT_S_DN": request.FORGED_DN}
    (problem,) = request.judge(case("x-ssl-client"), 200, verified)
    assert problem.what == "SSL_CLIENT_S_DN"


# -- the reference server ------------------------------------------------------------------


@pytest.mark.parametrize("adapter", ["builtin", "pyopenssl"])
@pytest.mark.parametrize("plain_cheroot", [False, True], ids=["reference-server", "plain-cheroot"])
@pytest.mark.parametrize("target", ["http://x/", "evil://x/"])
def test_scheme_is_https_whatever_the_request_target(certs, adapter, plain_cheroot, target):
    """Cheroot takes the scheme from an absolute-form OPTIONS target; the adapters pin it,
    in ReferenceServer and in a plain Cheroot server given the adapter alike."""
    adapter_ = make_adapter(
        adapter,
        certificate=str(certs["server"].cert),
        private_key=str(certs["server"].key),
        client_CA=str(certs["ca"].cert),
        client_check="required",
    )
    if plain_cheroot:
        server = cheroot_wsgi.Server(("127.0.0.1", 0), tls_environ_app, numthreads=2)
        server.ssl_adapter = adapter_
        server.prepare()
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        port, stop = server.bind_addr[1], server.stop
    else:
        ref = ReferenceServer(adapter_).start()
        port, stop = ref.port, ref.stop
    try:
        setup = ClientSetup(
            certs["ca"].cert, certs["localhost"].cert, certs["localhost"].key, source="127.0.0.2"
        )
        seen = exchange("127.0.0.1", port, setup, request_bytes("OPTIONS", target, "x"))
    finally:
        stop()
    assert seen.status == 200
    shown = seen.json()
    assert shown["wsgi.url_scheme"] == "https"
    assert shown["HTTPS"] == "on"
    assert shown["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert shown["REMOTE_ADDR"] == "127.0.0.2"


def test_reference_passes_every_request_case(certs):
    results = run_request(CheckedTarget(ReferenceTarget()), certs)
    assert len(results) == len(request.cases(("builtin", "pyopenssl")))
    failed = [(r["id"], r["problems"]) for r in results if r["status"] != "pass"]
    assert failed == []
    # the forged values were really sent and really absent: the baseline shows the peer
    baseline = next(r for r in results if r["dims"]["forgery"] == "baseline")
    assert baseline["observed"]["shown"]["REMOTE_ADDR"] == baseline["dims"]["source"]


# -- deliberately wrong servers ------------------------------------------------------------


def failures(target) -> dict[str, set[tuple[str, str]]]:
    return {
        r["id"]: {(p["kind"], p["severity"]) for p in r["problems"]}
        for r in target
        if r["status"] == "fail"
    }


def test_a_server_trusting_forwarded_headers_from_any_peer_fails_exactly_those(certs):
    results = run_request(CheckedTarget(wrong.TrustsForwardedHeaders()), certs)
    applied = {"x-forwarded-proto", "x-forwarded-ssl", "forwarded", "x-forwarded-for",
               "x-forwarded-all", "x-ssl-client"}  # fmt: skip
    expected = {
        c.id: {
            (REQUEST_OVERRIDE, SECURITY)
            if c.source == request.NOT_A_PROXY
            else (LOCAL_PROXY_TRUST, VISIBILITY)
        }
        for c in request.cases(("builtin", "pyopenssl"))
        if c.forgery.id in applied
    }
    assert failures(results) == expected


def test_an_unpinned_scheme_fails_exactly_the_absolute_form_cases_as_security(certs):
    results = run_request(CheckedTarget(wrong.UnpinnedScheme()), certs)
    expected = {
        c.id: {(REQUEST_OVERRIDE, SECURITY)}
        for c in request.cases(("builtin", "pyopenssl"))
        if c.forgery.id in ("absolute-options-http", "absolute-options-evil")
    }
    assert failures(results) == expected


def test_the_state_profile_runs_the_grid_as_a_user_would(tmp_path):
    """``pytest matrix --profile state -k request`` against the trusting server: pytest exits
    1 and results.json holds the same security failures the grid's own runner finds."""
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    results = tmp_path / "results.json"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "matrix",
        "-q",
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
    ]
    argv += ["--profile", "state", "-k", "request and x-forwarded-proto and client:none"]
    argv += [
        "--target",
        "tests.wrong_state_servers:TrustsForwardedHeaders",
        "--results",
        str(results),
    ]
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    cases = json.loads(results.read_text())["cases"]
    verdicts = {
        (c["from"], c["adapter"]): {(p["kind"], p["severity"]) for p in c["problems"]}
        for c in cases
        if c["forgery"] == "x-forwarded-proto"
    }
    # -k also selected x-forwarded-protocol, which this server does not apply: it passes
    assert {c["status"] for c in cases if c["forgery"] == "x-forwarded-protocol"} == {"pass"}
    assert verdicts == {
        ("127.0.0.2", "builtin"): {(REQUEST_OVERRIDE, SECURITY)},
        ("127.0.0.2", "pyopenssl"): {(REQUEST_OVERRIDE, SECURITY)},
        ("127.0.0.1", "builtin"): {(LOCAL_PROXY_TRUST, VISIBILITY)},
        ("127.0.0.1", "pyopenssl"): {(LOCAL_PROXY_TRUST, VISIBILITY)},
    }


@pytest.mark.skipif(ApacheTarget().installed() is not None, reason=str(ApacheTarget().installed()))
def test_apache_passes_every_request_case(certs):
    """mod_ssl's variables come from the connection alone; REQUEST_SCHEME too (httpd 2.4.71
    answers OPTIONS evil://... with 400)."""
    results = run_request(CheckedTarget(ApacheTarget()), certs)
    assert len(results) == len(request.cases(("mod_ssl",)))
    assert [(r["id"], r["problems"]) for r in results if r["status"] != "pass"] == []
    shown = {k for r in results for k in r["observed"]["shown"]}
    assert {"HTTPS", "wsgi.url_scheme", "REMOTE_ADDR", "SSL_CLIENT_VERIFY"} <= shown
