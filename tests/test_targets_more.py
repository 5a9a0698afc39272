"""The five targets of issue 21 (tornado, aiohttp, Sanic, Twisted, Daphne): declared and run.

For each: its factory loads through the contract check (``harness.target.load_target``),
its declarations agree with each other (adapters, features, provides, unsupported
reasons), and one server is started for real on loopback with real certificates: a
client whose certificate the oracle admits is served, and one it refuses is refused.
The expected outcomes come from the spec (a certificate chaining to the client CA is
admitted, none under ``required`` is refused; ``ignore`` admits everyone), not from the
servers. A target whose package is not installed is skipped with that reason.
"""

from __future__ import annotations

import importlib.util

import pytest

import certs_gen
from harness.client import TLSClient
from harness.target import FEATURES, ServerSpec, load_target
from matrix.dimensions import BINDS, POLICY_SETTINGS

# name, factory reference, package that must be importable, the policy its live test uses
TARGETS = [
    ("tornado", "harness.targets.tornado:target", "tornado", "required"),
    ("aiohttp", "harness.targets.aiohttp:target", "aiohttp", "required"),
    ("sanic", "harness.targets.sanic:target", "sanic", "required"),
    ("twisted", "harness.targets.twisted:target", "twisted", "required"),
    ("daphne", "harness.targets.daphne:target", "daphne", "ignore"),
]
IDS = [t[0] for t in TARGETS]
VARIABLES = ("HTTPS", "wsgi.url_scheme", "SSL_PROTOCOL", "SSL_CLIENT_CERT", "SSL_CLIENT_S_DN")


def load(reference: str, package: str):
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (pip install '.[compat]')")
    return load_target(reference)


def make_spec(certs: certs_gen.CertSet, adapter: str, policy: str, **change) -> ServerSpec:
    check, host = POLICY_SETTINGS[policy]
    fields = {
        "adapter": adapter,
        "client_check": check,
        "check_host": host,
        "bind": "127.0.0.1",
        "certificate": certs["server"].cert,
        "private_key": certs["server"].key,
        "client_ca": certs["ca"].cert,
    }
    fields.update(change)
    return ServerSpec(**fields)


@pytest.mark.parametrize(("name", "reference", "package", "policy"), TARGETS, ids=IDS)
def test_declarations_are_consistent(certs, name, reference, package, policy):
    target = load(reference, package)
    assert target.name == name
    assert target.features <= set(FEATURES)
    assert package in target.versions()
    for adapter in target.adapters:
        for variable in VARIABLES:
            assert isinstance(target.provides(adapter, variable), bool)
        # the contract's required variables are shown by every one of these apps
        assert target.provides(adapter, "wsgi.url_scheme")
        for bind in BINDS:
            for policy_name in ("optional+host", "required+host"):
                why = target.unsupported(make_spec(certs, adapter, policy_name, bind=bind))
                assert why and "host name" in why
        other = make_spec(certs, "no-such-stack", "required")
        assert name in target.unsupported(other)
    if "certificate-chain" not in target.features:
        chain = make_spec(certs, target.adapters[0], "required", certificate_chain=certs["ca"].cert)
        assert "certificate-chain" in target.unsupported(chain)


@pytest.mark.parametrize(("name", "reference", "package", "policy"), TARGETS, ids=IDS)
def test_a_good_client_is_served_and_a_bad_one_refused(certs, name, reference, package, policy):
    target = load(reference, package)
    adapter = target.adapters[0]
    spec = make_spec(certs, adapter, policy)
    assert target.unsupported(spec) is None
    server = target.start(spec)
    try:
        url = f"https://127.0.0.1:{server.port}/any/path"
        good = TLSClient(certs["ca"].cert, certs["localhost"].key_and_chain).get(url)
        assert good.outcome == "ok", good.detail
        assert good.environ.get("wsgi.url_scheme") == "https"
        if target.provides(adapter, "REMOTE_ADDR"):  # the peer, as the connection says
            assert good.environ.get("REMOTE_ADDR") == "127.0.0.1"
        if policy == "ignore":  # all a server that cannot ask for certificates can refuse
            bad = TLSClient(certs["other-ca"].cert).get(url)
            assert bad.outcome == "server-cert-rejected", bad.detail
        else:
            bad = TLSClient(certs["ca"].cert, certs["wrong-ca"].key_and_chain).get(url)
            assert bad.outcome == "rejected", bad.detail
            none = TLSClient(certs["ca"].cert).get(url)
            expected = "rejected" if policy == "required" else "ok"
            assert none.outcome == expected, none.detail
    finally:
        server.stop()
    assert not server.alive()


def test_daphne_says_why_it_cannot_ask_for_client_certificates(certs):
    target = load("harness.targets.daphne:target", "daphne")
    for policy in ("optional", "required"):
        why = target.unsupported(make_spec(certs, "pyopenssl", policy))
        assert "client-certificate option" in why and "twisted/twisted#6757" in why
    assert target.unsupported(make_spec(certs, "pyopenssl", "ignore")) is None


@pytest.mark.parametrize(
    ("reference", "package"),
    [
        ("harness.targets.sanic:multi_target", "sanic"),
        ("harness.targets.twisted:sni_target", "twisted"),
        ("harness.targets.aiohttp:report_7466_target", "aiohttp"),
    ],
    ids=["sanic-multi", "twisted-sni", "aiohttp-7466"],
)
def test_the_configurations_that_lose_verification_admit_a_client_without_certificate(
    certs, reference, package
):
    """The security findings of docs/servers.md, kept measured: under ``required`` the
    spec refuses a client without a certificate; these three configurations admit it
    (and never see a good client's certificate). If a release fixes one, this fails and
    the page must be updated."""
    target = load(reference, package)
    spec = make_spec(certs, target.adapters[0], "required")
    server = target.start(spec)
    try:
        url = f"https://localhost:{server.port}/"
        none = TLSClient(certs["ca"].cert).get(url)
        assert none.outcome == "ok", none.detail
        assert none.environ.get("SSL_CLIENT_VERIFY") == "NONE"
        good = TLSClient(certs["ca"].cert, certs["localhost"].key_and_chain).get(url)
        assert good.outcome == "ok", good.detail
        assert good.environ.get("SSL_CLIENT_VERIFY") == "NONE"
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("name", "package"),
    [
        ("tornado", "tornado"),
        ("aiohttp", "aiohttp"),
        ("sanic", "sanic"),
        ("sanic-multi", "sanic"),
        ("twisted", "twisted"),
        ("twisted-sni", "twisted"),
        ("daphne", "daphne"),
    ],
)
def test_the_compat_run_knows_each_and_loads_it_by_its_name(name, package):
    from harness.targets import compat

    assert name in compat.TARGETS
    assert load(compat.reference(name), package).name == name
