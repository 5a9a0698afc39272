"""Apache httpd with mod_ssl, the reference server and the matrix's expectations agree.

SPEC section 5 names mod_ssl's variables as the format; here the real mod_ssl
(Debian's apache2, started by ``harness.targets.apache``) is asked, for every
client credential of the extended profile (which holds the standard ones and the
hard DNs), what the application sees, and

- the reference server (both adapters) must answer the same: same outcome, the
  same SSL_CLIENT_* variables with the same values, variable by variable;
- ``matrix.environ``'s expectations, computed from the certificate files alone,
  must find nothing wrong with Apache's answer.

Both servers run ``SSLVerifyClient optional`` / ``client_check=optional`` on
127.0.0.1 with the same certificates, and are asked by the matrix's own client.
Skipped, with the reason, where apache2 is not installed.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re

import pytest
from cryptography import x509

from certs_gen import PROFILES
from harness.client import TLSClient
from harness.target import ServerSpec
from harness.targets.apache import ApacheTarget
from harness.targets.reference import ReferenceTarget
from matrix.environ import (
    MOD_SSL_EXTRAS,
    check_environ,
    days_left,
    expected_certificate_variables,
)

NOT_INSTALLED = ApacheTarget().installed()
pytestmark = pytest.mark.skipif(NOT_INSTALLED is not None, reason=str(NOT_INSTALLED))

CLIENTS = [s.id for s in PROFILES["extended"] if s.role == "client"] + ["none"]
REFERENCE_ADAPTERS = ("builtin", "pyopenssl")

# Variables only mod_ssl sets, beside the SSL_CLIENT_* ones: the documented extras
# (matrix.environ.MOD_SSL_EXTRAS, format-checked there) and the two that name the
# server and its TLS library, which differ between any two servers by design.
APACHE_ONLY = re.compile("|".join(fnmatch.translate(pattern) for pattern in MOD_SSL_EXTRAS))
NAMES_THE_SERVER = ("SSL_VERSION_INTERFACE", "SSL_VERSION_LIBRARY")


def _spec(adapter: str, certs) -> ServerSpec:
    return ServerSpec(
        adapter=adapter,
        client_check="optional",
        check_host=False,
        bind="127.0.0.1",
        certificate=certs["server"].cert,
        private_key=certs["server"].key,
        client_ca=certs["ca"].cert,
    )


@pytest.fixture(scope="module")
def servers(extended_certs):
    started = {"apache": ApacheTarget().start(_spec("mod_ssl", extended_certs))}
    try:
        for adapter in REFERENCE_ADAPTERS:
            started[adapter] = ReferenceTarget().start(_spec(adapter, extended_certs))
        yield {name: f"https://127.0.0.1:{s.port}/" for name, s in started.items()}
    finally:
        for server in started.values():
            server.stop()


def _ask(certs, client: str, url: str):
    credential = None if client == "none" else certs[client].key_and_chain
    tls = TLSClient(certs["ca"].cert, credential, timeout=10.0)
    try:
        return tls.get(url)
    finally:
        tls.close()


def _client_variables(environ: dict, adapter: str) -> dict:
    out = {k: v for k, v in environ.items() if k.startswith("SSL_CLIENT_")}
    if out.get("SSL_CLIENT_CERT") == "":  # mod_ssl's "no certificate" (matrix.environ)
        del out["SSL_CLIENT_CERT"]
    if adapter == "builtin":  # the stdlib cannot show the sent chain before Python 3.13
        out = {k: v for k, v in out.items() if not k.startswith("SSL_CLIENT_CERT_CHAIN_")}
    return out


@pytest.mark.parametrize("adapter", REFERENCE_ADAPTERS)
@pytest.mark.parametrize("client", CLIENTS)
def test_reference_answers_as_apache(servers, extended_certs, client, adapter):
    before = dt.datetime.now(dt.timezone.utc)
    apache = _ask(extended_certs, client, servers["apache"])
    reference = _ask(extended_certs, client, servers[adapter])
    after = dt.datetime.now(dt.timezone.utc)
    assert reference.outcome == apache.outcome, (apache.detail, reference.detail)
    if apache.outcome != "ok":
        return
    want = _client_variables(apache.environ, adapter)
    got = _client_variables(reference.environ, adapter)
    if client != "none" and not _remain_stable(extended_certs[client].cert, before, after):
        want.pop("SSL_CLIENT_V_REMAIN", None), got.pop("SSL_CLIENT_V_REMAIN", None)
    assert sorted(got) == sorted(want), "the same SSL_CLIENT_* variables"
    for name in want:
        assert got[name] == want[name], name
    for name in ("HTTPS", "wsgi.url_scheme", "SSL_PROTOCOL", "SSL_CIPHER"):
        assert reference.environ.get(name) == apache.environ.get(name), name
    extra = sorted(set(apache.environ) - set(reference.environ) - set(NAMES_THE_SERVER))
    assert [k for k in extra if not k.startswith("SSL_CLIENT_")] == [
        k for k in extra if APACHE_ONLY.fullmatch(k)
    ], "every variable only mod_ssl sets is a documented extra"


def _remain_stable(cert_file, before: dt.datetime, after: dt.datetime) -> bool:
    """Whether mod_ssl's whole days left (whole seconds, docs/spec.md section 5) stayed the
    same while both servers were asked: the count steps at notAfter's time of day
    (``not-after-odd``: 13:37:42 UTC), not at midnight."""
    not_after = x509.load_pem_x509_certificate(cert_file.read_bytes()).not_valid_after_utc
    return len({days_left(not_after, t) for t in (before, after)}) == 1


@pytest.mark.parametrize("client", CLIENTS)
def test_expectations_hold_on_apache(servers, extended_certs, client):
    before = dt.datetime.now(dt.timezone.utc)
    answer = _ask(extended_certs, client, servers["apache"])
    after = dt.datetime.now(dt.timezone.utc)
    if answer.outcome != "ok":
        pytest.skip(f"mod_ssl refuses {client!r} under SSLVerifyClient optional")
    expected = None
    if client != "none":
        cred = extended_certs[client]
        chain = [extended_certs["ca"].cert.read_text()]  # what OpenSSL's client adds
        if cred.chain is not None:
            chain = [cred.chain.read_text()]
        expected = expected_certificate_variables(cred.cert, chain, (before, after))
    assert check_environ(answer.environ, expected) == []


@pytest.mark.parametrize("adapter", ("apache", *REFERENCE_ADAPTERS))
def test_no_raw_line_breaks_in_dns(servers, extended_certs, adapter):
    """A CR/LF in a CN must not reach the application raw (header/log injection)."""
    answer = _ask(extended_certs, "dn-control", servers[adapter])
    assert answer.outcome == "ok", answer.detail
    for name, value in answer.environ.items():
        if name.startswith("SSL_CLIENT_") and not name.startswith("SSL_CLIENT_CERT"):
            assert "\r" not in value and "\n" not in value, name
    assert answer.environ["SSL_CLIENT_S_DN"].startswith(r"CN=dn-control\0D\0AX-Injected: 1\09end,")
