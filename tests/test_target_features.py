"""The declared-features gate (SPEC section 10) and ``mtls-matrix check-target``, as met by a user.

The fail-safe promise: a target that declares no ``features`` and never reads a
``ServerSpec`` field beyond the standard ones (``naive`` below: Python's ``ssl``
module, the way a server author writes a first target from the README) gets no
failure from the extended profile, only unsupported cases whose reason names the
feature. Which cases need which feature is predicted here from the case ids (the
SPEC's dimensions: a ``+crl`` policy, a ``-chain:`` trust, ``trust:no-ca`` under a
policy that asks for a certificate), never from the gate's code.

Every run is a subprocess in a directory of the test's own, with the target module
written there, as ``tests/test_cli.py`` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.target import FEATURES

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 240
# A bounded slice of the extended profile that holds every kind of feature case (CRL,
# chain file, no client CA) and cases needing none (a two-CA client CA file), on one
# address pair and one TLS version, so that the run takes seconds, not minutes.
SLICE = "tls:1.3 and bind:127.0.0.1 and connect:127.0.0.1 and (crl or chain or no-ca or legacy)"

TARGETS = textwrap.dedent(
    '''
    """A target written before any feature existed: it declares none, and reads only the
    standard ServerSpec fields (a client CA file is loaded whenever one is asked for)."""
    import contextlib
    import json
    import socket
    import ssl
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

    MODES = {"ignore": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


    def app(environ, start_response):
        keys = [k for k in environ if k.startswith("SSL_") or k in ("HTTPS", "wsgi.url_scheme")]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({k: environ[k] for k in keys}).encode()]


    class Handler(WSGIRequestHandler):
        def get_environ(self):
            env = super().get_environ()
            tls = self.connection
            verified = tls.getpeercert(binary_form=True) is not None
            env.update(HTTPS="on", SSL_PROTOCOL=tls.version(), SSL_CIPHER=tls.cipher()[0],
                       SSL_CLIENT_VERIFY="SUCCESS" if verified else "NONE")
            return env

        def log_message(self, *args):
            pass


    class Server(WSGIServer):
        def __init__(self, bind, context):
            super().__init__((bind, 0), Handler)
            self.context, self.host, self.port = context, bind, self.server_port
            self.set_app(app)
            threading.Thread(target=self.serve_forever, daemon=True).start()

        def get_request(self):
            sock, addr = self.socket.accept()
            sock.settimeout(5)
            tls = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            try:
                tls.do_handshake()
            except OSError:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(tls, socket.SHUT_WR)
                    for _ in range(16):
                        if not socket.socket.recv(tls, 65536):
                            break
                tls.close()
                raise
            return tls, addr

        def stop(self):
            self.shutdown()
            self.server_close()


    class Naive:
        name = "naive"
        adapters = ("builtin",)

        def unsupported(self, spec):
            if spec.check_host:
                return "no check of the client's host name"
            return None

        def start(self, spec):
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(spec.certificate, spec.private_key)
            context.verify_mode = MODES[spec.client_check]
            if spec.client_check != "ignore":
                context.load_verify_locations(spec.client_ca)
            return Server(spec.bind, context)

        def provides(self, adapter, variable):
            return False

        def versions(self):
            return {"naive": "1"}


    def naive():
        return Naive()


    class UnknownFeature(Naive):
        features = {"crl", "session-sharing"}


    def unknown_feature():
        return UnknownFeature()


    class FeatureString(Naive):
        features = "crl"


    def feature_string():
        return FeatureString()


    class UnsupportedRaises(Naive):
        def unsupported(self, spec):
            return {"127.0.0.1": None}[spec.bind]


    def unsupported_raises():
        return UnsupportedRaises()
    '''
)

FEATURE_REASON = "does not declare the feature '{}'"


def env(tmp: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return dict(base, PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(tmp))


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    scratch = cwd.parent / f"{cwd.name}-tmp"
    scratch.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env(scratch),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def user(tmp_path: Path) -> Path:
    home = tmp_path / "user"
    home.mkdir()
    (home / "targets.py").write_text(TARGETS)
    return home


def needed_feature(case_id: str) -> str | None:
    """The feature a case needs, from its id (its policy and trust dimensions)."""
    policy, trust = case_id.split("-")[1], case_id.split("trust:")[1].split("-bind:")[0]
    if policy.endswith("+crl"):
        return "crl"
    if "chain:" in trust:
        return "certificate-chain"
    if trust == "no-ca" and not policy.startswith("ignore"):
        return "no-client-ca"
    return None


def one_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    both = result.stdout + result.stderr
    assert result.returncode == code, both
    assert "Traceback" not in both and "INTERNALERROR" not in both, both
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# -- declarations that break the contract --------------------------------------------------


@pytest.mark.parametrize(
    "factory, words",
    [
        (
            "unknown_feature",
            ("unknown feature(s) 'session-sharing'", "known: certificate-chain, crl"),
        ),
        ("feature_string", ("features must be a set of feature names",)),
    ],
)
@pytest.mark.parametrize("command", ["run", "check-target"])
def test_a_bad_features_declaration_is_one_line(user, command, factory, words):
    extra = ["--out", "out"] if command == "run" else []
    result = run(user, "-m", "matrix", command, "--target", f"targets:{factory}", *extra)
    line = one_line(result, 2, "naive.features", *words)
    assert line.startswith(f"mtls-matrix {command}: error: --target targets:{factory}: ")
    assert sorted(p.name for p in user.iterdir()) == ["targets.py"]  # nothing written


# -- the fail-safe promise, in a real run ---------------------------------------------------


def test_a_target_that_ignores_every_new_field_gets_no_failure_only_unsupported(user):
    result = run(
        user, "-m", "pytest", str(REPO / "matrix"), "-p", "no:randomly", "-p", "no:cacheprovider",
        "-q", "--tb=line", "--target", "targets:naive", "--profile", "extended",
        "-k", SLICE, "--results", "out/results.json", "--certs-dir", "certs",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    cases = json.loads((user / "out" / "results.json").read_text())["cases"]
    assert not [c["id"] for c in cases if c["status"] == "fail"]
    needing = {c["id"]: needed_feature(c["id"]) for c in cases}
    for feature in ("crl", "certificate-chain", "no-client-ca"):  # the slice holds each kind
        assert feature in needing.values(), feature
    for case in cases:
        feature = needing[case["id"]]
        if feature is not None:
            assert case["status"] == "skip", case["id"]
            assert FEATURE_REASON.format(feature) in case["unsupported"], case
        elif "+host" not in case["id"]:  # the target's own refusal
            assert case["status"] == "pass", (case["id"], case["detail"])
    assert sum(c["status"] == "pass" for c in cases) >= 20  # the rest really ran

    # check-target said the same before anything ran: the same runnable and the same reasons
    preview = run(
        user, "-m", "matrix", "check-target", "--target", "targets:naive", "--profile",
        "extended", "--json",
    )  # fmt: skip
    assert preview.returncode == 0, preview.stderr
    data = json.loads(preview.stdout)
    ran = {c["id"] for c in cases if c["unsupported"] is None and c["status"] != "skip"}
    assert ran <= set(data["runnable"])
    predicted = {i: g["reason"] for g in data["unsupported"] for i in g["cases"]}
    for case in cases:
        if case["unsupported"] is not None:
            assert predicted[case["id"]] == case["unsupported"]


def test_the_reference_declares_every_feature_and_gets_those_cases(user):
    preview = run(user, "-m", "matrix", "check-target", "--profile", "extended", "--json")
    assert preview.returncode == 0, preview.stderr
    data = json.loads(preview.stdout)
    assert data["unsupported"] == [] and data["errors"] == []
    assert data["features"] == sorted(FEATURES)  # the state profile's too
    runnable = data["runnable"]
    for feature in ("crl", "certificate-chain", "no-client-ca"):
        assert [i for i in runnable if needed_feature(i) == feature], feature
    # and in a real run they reach the server: run (pass), none unsupported
    result = run(
        user, "-m", "pytest", str(REPO / "matrix"), "-p", "no:randomly", "-p", "no:cacheprovider",
        "-q", "--tb=line", "--profile", "extended", "--results", "out/results.json",
        "--certs-dir", "certs", "-k", f"builtin-required and {SLICE}",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    cases = json.loads((user / "out" / "results.json").read_text())["cases"]
    assert {needed_feature(c["id"]) for c in cases} >= {"crl", "certificate-chain", "no-client-ca"}
    assert all(c["status"] == "pass" and c["unsupported"] is None for c in cases), [
        (c["id"], c["detail"]) for c in cases if c["status"] != "pass"
    ]


# -- check-target ---------------------------------------------------------------------------


def test_check_target_counts_each_verdict_and_writes_nothing(user):
    scratch = user.parent / f"{user.name}-tmp"
    result = run(user, "-m", "matrix", "check-target", "--target", "targets:naive",
                 "--profile", "extended")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("naive (targets:naive): profile extended, adapters builtin: ")
    assert lines[1] == (
        f"features declared: none (standard only); not declared: {', '.join(sorted(FEATURES))}"
    )
    assert any(line.split()[1:2] == ["runnable"] for line in lines)
    for feature in ("crl", "certificate-chain", "no-client-ca"):
        assert any(FEATURE_REASON.format(feature) in line for line in lines), feature
    assert sorted(p.name for p in user.iterdir()) == ["targets.py"]
    assert list(scratch.iterdir()) == []  # its temporary certificates are gone

    naive = ["--target", "targets:naive", "--profile", "extended", "--json"]
    as_json = json.loads(run(user, "-m", "matrix", "check-target", *naive).stdout)
    counts = as_json["counts"]
    assert sum(counts.values()) == as_json["total"] == int(lines[0].rsplit(": ", 1)[1].split()[0])
    for verdict in ("unreachable", "unsupported"):
        assert counts[verdict] == sum(len(g["cases"]) for g in as_json[verdict])
    assert counts["runnable"] == len(as_json["runnable"])
    every = [i for v in ("unreachable", "unsupported") for g in as_json[v] for i in g["cases"]]
    every += as_json["runnable"]
    assert len(every) == len(set(every)) == as_json["total"]
    # each case needing a feature is unsupported for it (unless unreachable here anyway)
    unreachable = {i for g in as_json["unreachable"] for i in g["cases"]}
    reasons = {i: g["reason"] for g in as_json["unsupported"] for i in g["cases"]}
    for case_id in every:
        feature = needed_feature(case_id)
        if feature and case_id not in unreachable:
            assert FEATURE_REASON.format(feature) in reasons[case_id], case_id
        if case_id in as_json["runnable"]:
            assert feature is None and "+host" not in case_id


def test_check_target_on_the_reference_standard_profile(user):
    result = run(user, "-m", "matrix", "check-target", "--json")
    data = json.loads(result.stdout)
    assert result.returncode == 0 and data["target"] == "reference"
    assert data["adapters"] == ["builtin", "pyopenssl"]
    assert data["total"] == 460  # SPEC: the standard matrix is 460 cases on two adapters
    assert data["unsupported"] == []
    one = json.loads(
        run(user, "-m", "matrix", "check-target", "--adapter", "pyopenssl", "--json").stdout
    )
    assert one["total"] == 230 and all(i.startswith("pyopenssl-") for i in one["runnable"])


def test_check_target_says_which_cases_would_fail_before_connecting(user):
    result = run(user, "-m", "matrix", "check-target", "--target", "targets:unsupported_raises")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "naive.unsupported() raised KeyError" in result.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["--adapter", "pyopenssl", "--target", "targets:naive"],
         ("--adapter pyopenssl: target 'naive' does not run it", "builtin")),
        (["--profile", "huge"], ("unknown profile 'huge'",)),
        (["--target", "targets:nothing"], ("has no 'nothing'",)),
    ],
)  # fmt: skip
def test_check_target_bad_input_is_one_line(user, args, words):
    one_line(run(user, "-m", "matrix", "check-target", *args), 2, *words)
    assert sorted(p.name for p in user.iterdir()) == ["targets.py"]
