"""x509-limbo cases end to end: real handshakes against the reference server on loopback.

The expected outcomes come from the corpus (its ``expected_result``), never from
what the server did; the store check and the could-it-present probe are checked
against the corpus and the certificates' key types.
"""

from __future__ import annotations

import json
import warnings

import pytest
import trustme

from harness.targets.reference import target as reference_target
from matrix.limbo import cli
from matrix.limbo.corpus import load_corpus
from matrix.limbo.handshake import ACCEPTED, NOT_PRESENTED, REFUSED, attempt, presentable
from matrix.limbo.run import Credential, run_live
from matrix.limbo.store import store_check

ADAPTERS = ("builtin", "pyopenssl")
SUCCESS_CASE = "pathlen::ee-with-intermediate-pathlen-0"
FAILURE_CASE = "rfc5280::chain-untrusted-root"
DSA_LEAF = "webpki::forbidden-dsa-leaf"  # no DSA signature algorithm exists in TLS 1.3
BAD_ISSUER_KEY = "invalid::invalid-issuer-key"  # an intermediate whose key does not decode


@pytest.fixture(scope="module")
def by_id():
    return {c.id: c for c in load_corpus()}


@pytest.fixture(scope="module")
def cred(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("limbo-cred")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file = workdir / "server.pem", workdir / "server.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    leaf.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(workdir / "ca.pem"))
    return Credential(
        cert_file,
        key_file,
        leaf.cert_chain_pems[0].bytes(),
        leaf.private_key_pem.bytes(),
        workdir / "ca.pem",
    )


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the corpus holds zero and negative serials
        yield


def _expected(case) -> str:
    return ACCEPTED if case.expects_success else REFUSED


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_success_failure_and_could_not_present(adapter, by_id, cred, tmp_path):
    cases = [by_id[SUCCESS_CASE], by_id[FAILURE_CASE], by_id[DSA_LEAF]]
    results = {
        (r.case_id, r.tls): r
        for r in run_live(reference_target(), adapter, cases, cred, tmp_path, jobs=2)
    }
    for tls in ("1.2", "1.3"):
        good = results[(SUCCESS_CASE, tls)]
        assert good.outcome == _expected(by_id[SUCCESS_CASE]) == ACCEPTED
        assert good.client.status == 200
        bad = results[(FAILURE_CASE, tls)]
        assert bad.outcome == _expected(by_id[FAILURE_CASE]) == REFUSED
        assert bad.client.form == "alert" and bad.client.alert == "unknown_ca"
        assert bad.server and "client certificate rejected" in bad.server
    # DSA has no TLS 1.3 signature scheme (RFC 8446 section 4.2.3): never a verdict.
    assert results[(DSA_LEAF, "1.3")].outcome == NOT_PRESENTED
    assert results[(DSA_LEAF, "1.2")].outcome in (ACCEPTED, REFUSED)


def test_probe_needs_no_server(by_id, cred):
    assert presentable(by_id[SUCCESS_CASE], "1.3", cred.cert_pem, cred.key_pem) is None
    why = presentable(by_id[DSA_LEAF], "1.3", cred.cert_pem, cred.key_pem)
    assert why and "TLS 1.3" in why
    keyless = next(c for c in by_id.values() if c.peer_certificate_key is None)
    assert "no private key" in presentable(keyless, "1.2", cred.cert_pem, cred.key_pem)


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_undecodable_key_in_chain_never_ends_in_error(tls, by_id, cred, tmp_path):
    """The client itself reports the server's alert, every time (no stale error state)."""
    from harness.target import ServerSpec
    from matrix.limbo.run import trust_file

    case = by_id[BAD_ISSUER_KEY]
    spec = ServerSpec(
        "builtin",
        "required",
        False,
        "127.0.0.1",
        cred.cert_file,
        cred.key_file,
        trust_file(case, tmp_path),
    )
    server = reference_target().start(spec)
    try:
        seen = [attempt(case, tls, "127.0.0.1", server.port, 10.0) for _ in range(10)]
    finally:
        server.stop()
    assert {(o.outcome, o.form) for o in seen} == {(REFUSED, "alert")}
    assert _expected(case) == REFUSED


def test_store_check_follows_the_corpus(by_id):
    assert store_check(by_id[SUCCESS_CASE], 0).accepted
    verdict = store_check(by_id[FAILURE_CASE], 0)
    assert not verdict.accepted and verdict.detail != "ok"
    # A keyless real-world chain, checked at its own validation time.
    case = by_id["webpki::cryptographydotio-chain-missing-intermediate"]
    assert not store_check(case, 0, case.validation_time).accepted


def test_cli_end_to_end_writes_self_describing_results(tmp_path, capsys):
    out = tmp_path / "limbo.json"
    status = cli.main(["--case", SUCCESS_CASE, "--case", FAILURE_CASE, "--results", str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "reference  builtin" in printed and "2/2" in printed
    doc = json.loads(out.read_text())
    assert doc["kind"] == "mtls-matrix/limbo" and doc["version"] == 1
    assert doc["corpus"]["commit"] == "8a2e6f4"
    columns = {(c["target"], c["adapter"], c["check"]): c for c in doc["columns"]}
    for adapter in ADAPTERS:
        for check in ("tls1.2", "tls1.3"):
            counts = columns[("reference", adapter, check)]["counts"]
            assert counts == {
                "agree": 2,
                "known_divergence": 0,
                "disagree": 0,
                "not_applicable": 0,
                "could_not_present": 0,
                "error": 0,
            }
        assert columns[("store", adapter, "store")]["counts"]["agree"] == 2
    assert {c["id"] for c in doc["cases"]} == {SUCCESS_CASE, FAILURE_CASE}


def test_store_check_uses_each_adapters_strict_flag(cred):
    """Both reference adapters verify with X509_V_FLAG_X509_STRICT (0x20): docs/limbo.md."""
    from matrix.limbo.cli import store_flags

    assert store_flags("builtin", cred) & 0x20
    assert store_flags("pyopenssl", cred) & 0x20
