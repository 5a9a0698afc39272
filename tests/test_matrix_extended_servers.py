"""The extended profile against real servers: the reference passes, wrong ones are caught.

Each wrong server (``tests/wrong_servers.py``) runs a focused part of the extended
profile in a subprocess, as a user would (``pytest matrix --profile extended
--target tests.wrong_servers:NAME -k EXPR``); the test checks from results.json
that exactly the cases its mistake should break fail. Which ones is decided
from each case's dimensions and the recorded expectation, so the tests hold on
any host. Also here: the reference adapters' CRL option on both back-ends, and
what each target declares it can express.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.client import OK, REJECTED, TLSClient
from harness.reference import ConfigError, ReferenceServer, adapter_from_config, make_adapter
from harness.reference.errors import ConfigFileError
from harness.target import ServerSpec

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 180

Result = dict
SUBSETS: dict[str, tuple[str, Callable[[Result], bool]]] = {
    # bound on ::, reached over IPv4: the peer is ::ffff:127.0.0.1
    "no_v4_mapped_normalise": (
        "bind::: and connect:127.0.0.1",
        lambda r: (
            r["expected"]["outcome"] == OK
            and r["policy"].endswith("+host")
            and r["client"] != "none"
        ),
    ),
    # with no client CA, anything the oracle says is refused gets in
    "admits_without_trust_store": ("trust:no-ca", lambda r: r["expected"]["outcome"] == REJECTED),
    # other-ca's certificate in the chain file lets wrong-ca in
    "trusts_chain_file": (
        "trust:ca-chain",
        lambda r: r["client"] == "wrong-ca" and r["policy"] != "ignore",
    ),
    "ignores_crl": ("crl", lambda r: r["client"] == "revoked"),
}


def run_matrix(target: str, expr: str, tmp_path: Path) -> tuple[int, list[Result], str]:
    results = tmp_path / f"{target.rpartition(':')[2]}.json"
    command = [
        sys.executable, "-m", "pytest", "matrix", "-p", "no:cacheprovider", "-p", "no:randomly",
        "-q", "--tb=short", "--profile", "extended", "--target", target, "-k", expr,
        "--results", str(results), "--certs-dir", str(tmp_path.parent / "certs-extended"),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    cases = json.loads(results.read_text())["cases"] if results.is_file() else []
    return done.returncode, cases, done.stdout + done.stderr[-2000:]


@pytest.mark.parametrize("name", list(SUBSETS))
def test_wrong_server_fails_exactly_its_cases(name, tmp_path):
    expr, breaks = SUBSETS[name]
    code, cases, output = run_matrix(f"tests.wrong_servers:{name}", expr, tmp_path)
    assert code == 1, output
    ran = [c for c in cases if c["status"] != "skip"]
    must_fail = {c["id"] for c in ran if breaks(c)}
    failed = {c["id"] for c in cases if c["status"] == "fail"}
    assert must_fail, f"{name}: the subset has no case its mistake breaks"
    if name == "no_v4_mapped_normalise":
        # a refused survival probe can fail a case that was refused anyway: any failure is
        # on a host-checking policy, and every case the mistake breaks fails
        assert must_fail <= failed, sorted(must_fail - failed)
        assert all("+host" in i for i in failed), sorted(failed)
    else:
        assert failed == must_fail, (sorted(failed - must_fail), sorted(must_fail - failed))
    for case in cases:
        if case["id"] in failed:
            assert case["id"] in output  # pytest names the failing case


def test_reference_passes_every_subset(tmp_path):
    expr = " or ".join(f"({e})" for e, _ in SUBSETS.values())
    code, cases, output = run_matrix("harness.targets.reference:target", expr, tmp_path)
    assert code == 0, output
    statuses = {c["status"] for c in cases}
    assert statuses <= {"pass", "skip"} and "pass" in statuses
    # the reference refuses to start without a client CA: a pass (SPEC section 8)
    no_ca = [c for c in cases if c["trust"] == "no-ca" and c["policy"] != "ignore"]
    assert no_ca and {c["observed"]["outcome"] for c in no_ca} == {"not-started"}


# -- the reference adapters' CRL option ---------------------------------------------------


@pytest.mark.parametrize("adapter", ["builtin", "pyopenssl"])
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_reference_refuses_a_revoked_client_with_its_crl(extended_certs, adapter, tls):
    certs = extended_certs
    settings = {
        "certificate": str(certs["server"].cert),
        "private_key": str(certs["server"].key),
        "client_CA": str(certs["ca"].cert),
        "client_check": "required",
    }
    with_crl = make_adapter(adapter, client_CRL=str(certs["ca"].crl), **settings)
    without = make_adapter(adapter, **settings)
    for server_adapter, revoked_outcome in ((with_crl, REJECTED), (without, OK)):
        with ReferenceServer(server_adapter, ("127.0.0.1", 0)) as server:
            url = f"https://127.0.0.1:{server.port}/"
            for client, want in (("revoked", revoked_outcome), ("localhost", OK)):
                tls_client = TLSClient(certs["ca"].cert, certs[client].key_and_chain, tls=tls)
                try:
                    got = tls_client.get(url)
                finally:
                    tls_client.close()
                assert got.outcome == want, (client, got)
                if want == OK:
                    assert got.environ["SSL_PROTOCOL"] == f"TLSv{tls}"


def test_crl_configuration_errors(extended_certs, tmp_path):
    certs = extended_certs
    base = {
        "certificate": str(certs["server"].cert),
        "private_key": str(certs["server"].key),
        "client_CA": str(certs["ca"].cert),
    }
    with pytest.raises(ConfigError, match="client_CRL needs"):
        make_adapter("builtin", client_check="ignore", client_CRL=str(certs["ca"].crl), **base)
    corrupt = tmp_path / "corrupt.crl.pem"
    corrupt.write_text("-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n")
    for path, match in ((corrupt, "corrupt"), (certs["ca"].cert, "no PEM CRL")):
        with pytest.raises(ConfigFileError, match=match) as info:
            make_adapter("pyopenssl", client_check="required", client_CRL=str(path), **base)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    adapter = adapter_from_config(
        {
            "server.ssl_module": "pyopenssl",
            "server.ssl_certificate": base["certificate"],
            "server.ssl_private_key": base["private_key"],
            "server.ssl_client_CA": base["client_CA"],
            "server.ssl_client_check": "optional",
            "server.ssl_client_CRL": str(certs["ca"].crl),
        }
    )
    assert adapter.settings.client_CRL == str(certs["ca"].crl)


# -- what each target can express ---------------------------------------------------------

# target -> (chain file, CRL) expressible; everyone can be started without a client CA
EXPRESSIBLE = {
    "reference": (True, True),
    "apache": (True, True),
    "cheroot_native": (True, False),
    "gunicorn": (False, False),
    "uvicorn": (False, False),
    "hypercorn": (False, True),
    "granian": (False, True),
    "werkzeug": (False, True),
}


@pytest.mark.parametrize("name", list(EXPRESSIBLE))
def test_targets_declare_configurations(extended_certs, name):
    import importlib

    module = importlib.import_module(f"harness.targets.{name}")
    target = module.target()
    adapter = getattr(target, "adapters", ("builtin",))[0]
    certs = extended_certs
    spec = ServerSpec(
        adapter=adapter,
        client_check="required",
        check_host=False,
        bind="127.0.0.1",
        certificate=certs["server"].cert,
        private_key=certs["server"].key,
        client_ca=certs["ca"].cert,
    )
    assert target.unsupported(spec) is None
    assert target.unsupported(dataclasses.replace(spec, client_ca=None)) is None
    chain, crl = EXPRESSIBLE[name]
    with_chain = target.unsupported(dataclasses.replace(spec, certificate_chain=certs["ca"].cert))
    with_crl = target.unsupported(
        dataclasses.replace(spec, crl=certs["ca"].crl, client_ca_with_crl=certs.bundles["ca+crl"])
    )
    assert (with_chain is None, with_crl is None) == (chain, crl), (with_chain, with_crl)
    for why in (with_chain, with_crl):
        assert why is None or (name in why and "\n" not in why)


def test_compat_runs_a_target_on_the_extended_profile(tmp_path):
    """``python -m harness.targets.compat --profile extended``: the target's results are the
    extended profile's (ids name trust and version), in the directory given."""
    command = [
        sys.executable, "-m", "harness.targets.compat", "--profile", "extended",
        "--out", str(tmp_path / "out"), "werkzeug", "--",
        "-k", "trust:no-ca and required and tls:1.3", "--certs-dir", str(tmp_path / "certs"),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    data = json.loads((tmp_path / "out" / "werkzeug.json").read_text())
    assert data["run"]["profile"] == "extended"
    ids = [c["id"] for c in data["cases"]]
    assert any(c["adapter"] == "builtin" and c["status"] == "pass" for c in data["cases"])
    assert ids and all("trust:no-ca" in i and i.endswith("tls:1.3") for i in ids)
    # werkzeug fails closed without a client CA: every certificate refused, none admitted
    for case in data["cases"]:
        if case["client"] != "none" and case["status"] != "skip":
            assert case["observed"]["outcome"] == REJECTED, case
