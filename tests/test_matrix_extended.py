"""The extended profile as data, its certificates, and the oracle's rules for it.

Expectations are written out here from SPEC sections 1-4 and 8 and the
cause vocabulary of docs/spec.md section 6.1, not read from ``matrix.oracle``: the oracle is
what is checked. Resolver facts are invented, so that every rule is exercised
on any host (with and without an IPv6 loopback).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter

import pytest
from cryptography import x509

from matrix.dimensions import (
    EXTENDED_GRIDS,
    GRIDS,
    Case,
    ServerConfig,
    addresses,
    enumerate_cases,
)
from matrix.oracle import (
    NOT_STARTED,
    OK,
    REJECTED,
    SERVER_CERT_REJECTED,
    SKIPPED,
    predict,
    server_verdict,
    survival_probe,
)
from matrix.resolver import ResolverFacts
from matrix.runner import build_facts

CAUSES = {
    "no-certificate",
    "untrusted-issuer",
    "expired",
    "not-yet-valid",
    "bad-eku",
    "revoked",
    "host-mismatch",
    "no-trust-store",
    "nonconforming",  # refused only by a strict verifier (docs/refusals.md)
}
# serial-negative is in the set on purpose; cryptography warns whenever it is parsed
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number")

DIMENSIONS = ("adapter", "policy", "trust", "bind", "connect", "client", "server_cert", "tls")

# The credentials grid, by hand. Columns: optional, optional+host, required, required+host,
# optional+crl, required+crl (ignore admits everyone). The host check runs from 127.0.0.1,
# which reverse-resolves (confirmed) to localhost in ``host_facts``.
R = REJECTED
CREDENTIAL_TABLE = {
    #                  opt  opt+h  req  req+h  opt+crl  req+crl   cause when refused
    "ipv6": (OK, (R, "host-mismatch"), OK, (R, "host-mismatch"), OK, OK),
    "chain": (OK, OK, OK, OK, None, None),  # not in the revocation grid
    "no-client-eku": ((R, "bad-eku"),) * 6,
    "not-yet-valid": ((R, "not-yet-valid"),) * 6,
    "cn-only": (OK, (R, "host-mismatch"), OK, (R, "host-mismatch"), OK, OK),
    "revoked": (OK, OK, OK, OK, (R, "revoked"), (R, "revoked")),
    "legacy": ((R, "untrusted-issuer"),) * 6,  # legacy-ca is not in the client CA file
    "none": (OK, OK, (R, "no-certificate"), (R, "no-certificate"), OK, (R, "no-certificate")),
    "expired": ((R, "expired"),) * 6,
    "wrong-ca": ((R, "untrusted-issuer"),) * 6,
}
TABLE_POLICIES = (
    "optional",
    "optional+host",
    "required",
    "required+host",
    "optional+crl",
    "required+crl",
)


def host_facts(ipv6: bool = True) -> ResolverFacts:
    names = {n: [n] for n in ("127.0.0.1", "0.0.0.0", "::1", "::")}
    names["localhost"] = ["127.0.0.1"]
    return ResolverFacts(
        forward=names,
        passive=names,
        reverse={"127.0.0.1": ["localhost"], "::1": []},
        ipv6_loopback=ipv6,
    )


@pytest.fixture(scope="module")
def facts(extended_certs):
    return build_facts(extended_certs, host_facts(), dt.datetime.now(dt.timezone.utc))


def extended_cases() -> list[Case]:
    return enumerate_cases(profile="extended")


# -- the profile as data ----------------------------------------------------------------


def test_standard_profile_is_untouched():
    cases = enumerate_cases(profile="standard")
    assert cases == enumerate_cases()
    assert len(cases) == 460
    assert not any("tls:" in c.id or "trust:" in c.id for c in cases)
    assert {(c.tls, c.trust, c.profile) for c in cases} == {("1.3", "ca", "standard")}
    assert addresses("standard") == ("localhost", "127.0.0.1", "0.0.0.0")
    assert GRIDS[0].name == "client-auth"


def test_extended_ids_are_unique_and_name_every_dimension():
    cases = extended_cases()
    ids = [c.id for c in cases]
    assert len(set(ids)) == len(ids), [i for i, n in Counter(ids).items() if n > 1]
    for case in cases:
        assert f"-tls:{case.tls}" in case.id and f"-trust:{case.trust}-" in case.id
        assert f"-bind:{case.bind}-" in case.id and f"-client:{case.client}" in case.id
        assert case.id.startswith(f"{case.adapter}-{case.policy}-")
        assert "=" not in case.id and " " not in case.id


def test_extended_size_fits_the_time_budget():
    """Aim of issue 12: about 1,000-2,000 cases, not the full cross product."""
    n = len(extended_cases())
    assert 1000 <= n <= 2000, n
    full = 2 * 7 * 4 * 5 * 3 * 17 * 3 * 2  # every dimension crossed
    assert n < full / 10


def test_extended_profile_covers_what_the_spec_lists():
    cases = extended_cases()
    values = {d: {getattr(c, d) for c in cases} for d in DIMENSIONS}
    assert {"::1", "::"} <= values["bind"] and "::1" in values["connect"]
    assert values["tls"] == {"1.2", "1.3"}
    assert {"optional+crl", "required+crl"} <= values["policy"]
    assert values["trust"] == {"ca", "no-ca", "ca+legacy-ca", "ca-chain:other-ca"}
    wanted = {"ipv6", "chain", "no-client-eku", "not-yet-valid", "cn-only", "revoked", "legacy"}
    assert wanted <= values["client"]
    # bound on :: and reached over IPv4: the IPv4-mapped peer
    assert any(c.bind == "::" and c.connect == "127.0.0.1" and "+host" in c.policy for c in cases)


def test_every_grid_says_why_it_holds_each_fixed_dimension():
    for grid in EXTENDED_GRIDS:
        held = {name for name, _ in grid.held}
        for dim in DIMENSIONS:
            values = getattr(grid, dim)
            if len(values) == 1 and dim != "adapter":
                covered = dim in held or any(dim in name.split("/") for name in held)
                assert covered, f"{grid.name} holds {dim} without a reason"
        assert all(len(why) > 10 for _, why in grid.held)


def test_cases_are_grouped_by_server_configuration():
    """Each server configuration is one contiguous run, so it is started once."""
    configs = [c.config for c in extended_cases()]
    seen, previous = set(), None
    for config in configs:
        if config != previous:
            assert config not in seen, config
            seen.add(config)
            previous = config


def test_plugin_selects_the_profile(tmp_path):
    """``--profile extended`` collects the extended cases; unknown profiles are usage errors."""
    import subprocess
    import sys

    def collect(*args):
        return subprocess.run(
            [sys.executable, "-m", "pytest", "matrix", "--collect-only", "-q", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = collect("--profile", "extended", "-k", "tls:1.2 and revoked")
    assert done.returncode == 0, done.stdout + done.stderr
    collected = [line for line in done.stdout.splitlines() if "::test_case[" in line]
    assert collected and all("tls:1.2" in line and "revoked" in line for line in collected)
    bad = collect("--profile", "nope")
    assert bad.returncode == 4 and "nope" in bad.stderr


# -- certificates -----------------------------------------------------------------------


def test_crl_revokes_exactly_revoked(extended_certs):
    ca = x509.load_pem_x509_certificate(extended_certs["ca"].cert.read_bytes())
    crl = x509.load_pem_x509_crl(extended_certs["ca"].crl.read_bytes())
    assert crl.issuer == ca.subject and crl.is_signature_valid(ca.public_key())
    now = dt.datetime.now(dt.timezone.utc)
    assert crl.last_update_utc <= now < crl.next_update_utc
    serials = {r.serial_number for r in crl}
    for cred in extended_certs:
        cert = x509.load_pem_x509_certificate(cred.cert.read_bytes())
        listed = cert.serial_number in serials and cert.issuer == ca.subject
        assert listed is (cred.id == "revoked"), cred.id
    assert all(c.crl is None for c in extended_certs if c.id != "ca")
    manifest = json.loads(extended_certs.manifest.read_text())
    assert {r["id"]: r.get("crl") for r in manifest["certs"]}["ca"] == "ca.crl.pem"


def test_legacy_ca_is_older_style(extended_certs):
    ca = x509.load_pem_x509_certificate(extended_certs["legacy-ca"].cert.read_bytes())
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.value.ca and not bc.critical
    for cert in (ca, x509.load_pem_x509_certificate(extended_certs["legacy"].cert.read_bytes())):
        for ext in (x509.SubjectKeyIdentifier, x509.AuthorityKeyIdentifier):
            with pytest.raises(x509.ExtensionNotFound):
                cert.extensions.get_extension_for_class(ext)
    leaf = x509.load_pem_x509_certificate(extended_certs["legacy"].cert.read_bytes())
    leaf.verify_directly_issued_by(ca)


def test_only_the_legacy_chain_is_nonconforming(facts):
    flagged = {cid for cid, cred in facts.credentials.items() if cred.nonconforming}
    assert flagged == {"legacy", "legacy-ca"}


def test_bundles(extended_certs, certs):
    two = x509.load_pem_x509_certificates(extended_certs.bundles["ca+legacy-ca"].read_bytes())
    assert [c.subject for c in two] == [
        x509.load_pem_x509_certificate(extended_certs[i].cert.read_bytes()).subject
        for i in ("ca", "legacy-ca")
    ]
    with_crl = extended_certs.bundles["ca+crl"].read_bytes()
    assert with_crl.count(b"BEGIN CERTIFICATE") == 1 and with_crl.count(b"BEGIN X509 CRL") == 1
    # the standard set keeps its manifest shape: no CRL key, no bundles
    manifest = json.loads(certs.manifest.read_text())
    assert "bundles" not in manifest and all("crl" not in r for r in manifest["certs"])
    assert certs.bundles == {}


# -- the oracle's rules -----------------------------------------------------------------


def case_for(client, policy, trust="ca", bind="127.0.0.1", connect="127.0.0.1", tls="1.3"):
    return Case("x", "builtin", policy, bind, connect, client, "server", trust, "extended", tls)


@pytest.mark.parametrize("client", list(CREDENTIAL_TABLE))
def test_credential_rules(facts, client):
    for policy, want in zip(TABLE_POLICIES, CREDENTIAL_TABLE[client], strict=True):
        if want is None:
            continue
        got = predict(case_for(client, policy), facts)
        outcome, cause = (want, None) if want == OK else want
        assert (got.outcome, got.cause) == (outcome, cause), (client, policy, got)
        assert got.alternatives == ()
        assert got.reason and "\n" not in got.reason
    ignore = predict(case_for(client, "ignore"), facts)
    assert (ignore.outcome, ignore.cause) == (OK, None)


def test_cn_only_reason_says_there_is_no_cn_fallback(facts):
    got = predict(case_for("cn-only", "required+host"), facts)
    assert "Common Name" in got.reason


def test_revoked_is_refused_only_where_a_crl_is_configured(facts):
    for policy in ("optional", "required", "required+host"):
        got = predict(case_for("revoked", policy), facts)
        assert got.outcome == OK and "not configured" in got.reason
    got = predict(case_for("revoked", "required+crl"), facts)
    assert (got.outcome, got.cause) == (REJECTED, "revoked")


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_tls_version_does_not_change_the_verdict(facts, tls):
    for client in CREDENTIAL_TABLE:
        a = predict(case_for(client, "required", tls=tls), facts)
        b = predict(case_for(client, "required", tls="1.3"), facts)
        assert (a.outcome, a.cause) == (b.outcome, b.cause)


def test_ipv4_mapped_peer_is_seen_and_normalised(facts):
    got = predict(case_for("ip", "required+host", bind="::", connect="127.0.0.1"), facts)
    assert (got.outcome, got.peer) == (OK, "::ffff:127.0.0.1")
    got = predict(case_for("localhost", "optional+host", bind="::", connect="localhost"), facts)
    assert (got.outcome, got.peer) == (OK, "::ffff:127.0.0.1")
    got = predict(case_for("ipv6", "required+host", bind="::", connect="127.0.0.1"), facts)
    assert (got.outcome, got.cause) == (REJECTED, "host-mismatch")
    assert "::ffff:127.0.0.1" in got.reason


def test_ipv6_peer(facts):
    got = predict(case_for("ipv6", "required+host", bind="::1", connect="::1"), facts)
    assert (got.outcome, got.peer) == (OK, "::1")
    got = predict(case_for("ip", "required+host", bind="::", connect="::1"), facts)
    assert (got.outcome, got.cause) == (REJECTED, "host-mismatch")
    # ::1 has no confirmed reverse name here: a DNS-ID cannot match it
    got = predict(case_for("localhost", "optional+host", bind="::1", connect="::1"), facts)
    assert got.outcome == REJECTED


def test_ipv6_cases_skip_with_a_reason_without_an_ipv6_loopback(extended_certs):
    facts = build_facts(extended_certs, host_facts(ipv6=False), dt.datetime.now(dt.timezone.utc))
    v6 = [c for c in extended_cases() if ":" in c.bind or ":" in c.connect]
    assert v6
    for case in v6:
        got = predict(case, facts)
        assert got.outcome == SKIPPED, case.id
        assert "IPv6" in got.reason, got.reason
    # and on a host with one, bind :: hears both families
    facts6 = build_facts(extended_certs, host_facts(), dt.datetime.now(dt.timezone.utc))
    assert predict(case_for("none", "optional", bind="::", connect="::1"), facts6).outcome == OK
    assert predict(
        case_for("none", "optional", bind="::1", connect="127.0.0.1"), facts6
    ).outcome == (SKIPPED)


@pytest.mark.parametrize("policy", ["optional", "optional+host", "required", "required+host"])
def test_no_trust_store_refusing_or_not_starting_both_pass(facts, policy):
    """SPEC section 8: verification without a trust store."""
    for client in ("localhost", "wrong-ca", "expired", "legacy"):
        got = predict(case_for(client, policy, trust="no-ca"), facts)
        assert (got.outcome, got.cause) == (REJECTED, "no-trust-store"), (client, got)
        assert got.accepts(REJECTED) and got.accepts(NOT_STARTED)
        assert not got.accepts(OK)
    none = predict(case_for("none", policy, trust="no-ca"), facts)
    assert none.accepts(NOT_STARTED)
    if policy.startswith("required"):
        assert (none.outcome, none.cause) == (REJECTED, "no-certificate")
    else:
        assert none.outcome == OK
    ignore = predict(case_for("localhost", "ignore", trust="no-ca"), facts)
    assert ignore.outcome == OK and not ignore.accepts(NOT_STARTED)


def test_chain_file_is_never_a_trust_source(facts):
    for policy in ("optional", "required"):
        got = predict(case_for("wrong-ca", policy, trust="ca-chain:other-ca"), facts)
        assert (got.outcome, got.cause) == (REJECTED, "untrusted-issuer")
        assert "certificate_chain" in got.reason
        assert (
            predict(case_for("localhost", policy, trust="ca-chain:other-ca"), facts).outcome == OK
        )


def test_two_ca_bundle(facts):
    got = predict(case_for("localhost", "required", trust="ca+legacy-ca"), facts)
    assert got.outcome == OK, got
    # legacy-ca is trusted, but its chain breaks RFC 5280: strict refusal or lenient
    # admission both pass (OpenSSL decides by X509_V_FLAG_X509_STRICT)
    got = predict(case_for("legacy", "required", trust="ca+legacy-ca"), facts)
    assert (got.outcome, got.cause) == (REJECTED, "nonconforming")
    assert got.accepts(OK) and "strict" in got.reason and "basicConstraints" in got.reason
    got = predict(case_for("wrong-ca", "required", trust="ca+legacy-ca"), facts)
    assert (got.outcome, got.cause) == (REJECTED, "untrusted-issuer")


def test_every_refusal_has_a_cause_from_the_vocabulary(facts):
    for case in extended_cases():
        got = predict(case, facts)
        if got.outcome == REJECTED:
            assert got.cause in CAUSES, (case.id, got)
        elif got.outcome in (OK, SKIPPED, SERVER_CERT_REJECTED):
            assert got.cause is None, (case.id, got)


def test_survival_probe_is_predicted_served(facts):
    for config in {c.config for c in extended_cases()}:
        probe = survival_probe(config, "127.0.0.1", facts)
        if probe is None:
            continue
        verdict = server_verdict(config, probe.client, "127.0.0.1", facts)
        assert verdict.outcome == OK, (config, probe)
    no_ca = ServerConfig("builtin", "required", "127.0.0.1", "server", "no-ca")
    assert survival_probe(no_ca, "127.0.0.1", facts) is None


def test_config_key_names_the_trust():
    a = ServerConfig("builtin", "required", "127.0.0.1", "server")
    b = ServerConfig("builtin", "required", "127.0.0.1", "server", "no-ca")
    assert a.key == "builtin-required-bind:127.0.0.1-cert:server"
    assert re.search(r"trust:no-ca$", b.key)
    assert (a.client_ca, b.client_ca) == ("ca", None)
    c = ServerConfig("builtin", "optional+crl", "::", "server", "ca-chain:other-ca")
    assert (c.crl, c.certificate_chain, c.client_check) == ("ca", "other-ca", "optional")
