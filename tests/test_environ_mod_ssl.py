"""mod_ssl's formats, as measured, checked on both independent derivations without Apache.

The literals below are what Apache httpd 2.4.71 (Debian, OpenSSL 3.0.19, ``SSLOptions
+StdEnvVars +ExportCertData``) handed its CGI application for the extended profile's
hard-DN credentials (docs/apache.md says how to measure them again). They are written
out here, so that both the matrix's expectations (``matrix.environ``) and the reference
server's formatting (``harness.reference.certinfo``) are held to the real server even
where apache2 is not installed; tests/test_apache_agreement.py asks the live server.
"""

from __future__ import annotations

import datetime as dt
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.reference.certinfo import client_variables
from matrix.environ import check_environ, expected_certificate_variables, extra_variable_differences

ISSUER = "OU=ca,O=mtls-matrix"

# Measured: the client certificate variables that do not depend on the random serial.
MEASURED = {
    "dn-repeated-ou": {
        "SSL_CLIENT_S_DN": "CN=dn-repeated-ou,OU=second unit,OU=client,O=mtls-matrix",
        "SSL_CLIENT_S_DN_CN": "dn-repeated-ou",
        "SSL_CLIENT_S_DN_O": "mtls-matrix",
        "SSL_CLIENT_S_DN_OU": "client",
        "SSL_CLIENT_S_DN_OU_1": "second unit",
    },
    "dn-specials": {
        "SSL_CLIENT_S_DN": (
            r"CN=\ dn-specials a\,b\+c\\d\;e\<f\>g#h\"i\ ,OU=\#client,O=mtls-matrix"
        ),
        "SSL_CLIENT_S_DN_CN": r' dn-specials a,b+c\\d;e<f>g#h"i ',
        "SSL_CLIENT_S_DN_O": "mtls-matrix",
        "SSL_CLIENT_S_DN_OU": "#client",
    },
    "dn-utf8": {
        "SSL_CLIENT_S_DN": (
            "CN=dn-utf8 \u00e9t\u00e9,OU=client,O=mtls-matrix Z\u00fcrich \u6771\u4eac"
        ),
        "SSL_CLIENT_S_DN_CN": "dn-utf8 \u00e9t\u00e9",
        "SSL_CLIENT_S_DN_O": "mtls-matrix Z\u00fcrich \u6771\u4eac",
        "SSL_CLIENT_S_DN_OU": "client",
    },
    "dn-control": {
        "SSL_CLIENT_S_DN": r"CN=dn-control\0D\0AX-Injected: 1\09end,OU=client,O=mtls-matrix",
        "SSL_CLIENT_S_DN_CN": r"dn-control\0D\0AX-Injected: 1\09end",
        "SSL_CLIENT_S_DN_O": "mtls-matrix",
        "SSL_CLIENT_S_DN_OU": "client",
    },
    "dn-multi-rdn": {
        "SSL_CLIENT_S_DN": "CN=dn-multi-rdn+OU=client,O=mtls-matrix",
        "SSL_CLIENT_S_DN_CN": "dn-multi-rdn",
        "SSL_CLIENT_S_DN_O": "mtls-matrix",
        "SSL_CLIENT_S_DN_OU": "client",
    },
    "dn-email": {
        "SSL_CLIENT_S_DN": "emailAddress=dn-email@example.test,CN=dn-email,OU=client,O=mtls-matrix",
        "SSL_CLIENT_S_DN_CN": "dn-email",
        "SSL_CLIENT_S_DN_Email": "dn-email@example.test",
        "SSL_CLIENT_S_DN_O": "mtls-matrix",
        "SSL_CLIENT_S_DN_OU": "client",
        "SSL_CLIENT_SAN_DNS_0": "localhost",
        "SSL_CLIENT_SAN_Email_0": "dn-email@example.test",
    },
    "serial-negative": {
        "SSL_CLIENT_M_SERIAL": "-5A17C0DE5A17C0DE",
        "SSL_CLIENT_CERT_RFC4523_CEA": (
            f'{{ serialNumber -6491869449104638174, issuer rdnSequence:"{ISSUER}" }}'
        ),
    },
    "serial-leading-zero": {
        "SSL_CLIENT_M_SERIAL": "0F00BA5E0F00BA5E",
        "SSL_CLIENT_CERT_RFC4523_CEA": (
            f'{{ serialNumber 1081068823710317150, issuer rdnSequence:"{ISSUER}" }}'
        ),
    },
    # Every attribute mod_ssl names: UID is userId (not x500UniqueIdentifier), and 2.4.71
    # also exports SerialNumber (measured 2026-12-03).
    "dn-every-attribute": {
        "SSL_CLIENT_S_DN": (
            "emailAddress=ada@example.test,CN=dn-every-attribute,pseudonym=lady,"
            "street=Main 1,serialNumber=SN-0042,x500UniqueIdentifier=x5uid,UID=ada,"
            "description=every attribute,SN=Lovelace,GN=Ada,initials=AL,title=engineer,"
            "L=Mitte,ST=Berlin,C=DE,OU=client,O=mtls-matrix"
        ),
        "SSL_CLIENT_S_DN_C": "DE",
        "SSL_CLIENT_S_DN_CN": "dn-every-attribute",
        "SSL_CLIENT_S_DN_D": "every attribute",
        "SSL_CLIENT_S_DN_Email": "ada@example.test",
        "SSL_CLIENT_S_DN_G": "Ada",
        "SSL_CLIENT_S_DN_I": "AL",
        "SSL_CLIENT_S_DN_L": "Mitte",
        "SSL_CLIENT_S_DN_O": "mtls-matrix",
        "SSL_CLIENT_S_DN_OU": "client",
        "SSL_CLIENT_S_DN_S": "Lovelace",
        "SSL_CLIENT_S_DN_ST": "Berlin",
        "SSL_CLIENT_S_DN_SerialNumber": "SN-0042",
        "SSL_CLIENT_S_DN_T": "engineer",
        "SSL_CLIENT_S_DN_UID": "ada",
    },
    # A T61String's UTF-8 bytes read as Latin-1; BMPString and UniversalString as text.
    "dn-string-types": {
        "SSL_CLIENT_S_DN": (
            "CN=dn-string-types,title=Universal \U0001f600,ST=BMP \u6771\u4eac,"
            "L=ia5 Mitte,OU=T61 \u00c3\u00a9t\u00c3\u00a9,O=mtls-matrix"
        ),
        "SSL_CLIENT_S_DN_L": "ia5 Mitte",
        "SSL_CLIENT_S_DN_OU": "T61 \u00c3\u00a9t\u00c3\u00a9",
        "SSL_CLIENT_S_DN_ST": "BMP \u6771\u4eac",
        "SSL_CLIENT_S_DN_T": "Universal \U0001f600",
    },
    "not-after-odd": {"SSL_CLIENT_V_END": "Jul 14 13:37:42 2999 GMT"},
    "localhost": {
        "SSL_CLIENT_S_DN": "CN=localhost,OU=client,O=mtls-matrix",
        "SSL_CLIENT_I_DN": ISSUER,
        "SSL_CLIENT_I_DN_O": "mtls-matrix",
        "SSL_CLIENT_I_DN_OU": "ca",
        "SSL_CLIENT_M_VERSION": "3",
        "SSL_CLIENT_V_START": "Jan  1 00:00:00 2000 GMT",
        "SSL_CLIENT_V_END": "Jan  1 00:00:00 3000 GMT",
        "SSL_CLIENT_A_SIG": "ecdsa-with-SHA256",
        "SSL_CLIENT_A_KEY": "id-ecPublicKey",
    },
}
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)


def _der(path) -> bytes:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Parsed a serial number")
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("cred_id", sorted(MEASURED))
def test_expectations_equal_what_mod_ssl_printed(extended_certs, cred_id):
    expected = expected_certificate_variables(extended_certs[cred_id].cert, [], (NOW,))
    for name, value in MEASURED[cred_id].items():
        assert expected[name] == value, name


@pytest.mark.parametrize("cred_id", sorted(MEASURED))
def test_reference_prints_what_mod_ssl_printed(extended_certs, cred_id):
    env = client_variables(_der(extended_certs[cred_id].cert), None, NOW)
    for name, value in MEASURED[cred_id].items():
        assert env[name] == value, name


@pytest.mark.parametrize("cred_id", sorted(MEASURED))
def test_both_derivations_name_the_same_variables(extended_certs, cred_id):
    cred = extended_certs[cred_id]
    chain = [extended_certs["ca"].cert.read_text()]
    expected = expected_certificate_variables(cred.cert, chain, (NOW,))
    env = client_variables(_der(cred.cert), [_der(extended_certs["ca"].cert)], NOW)
    assert sorted(env) == sorted(expected)
    env.update({"HTTPS": "on", "wsgi.url_scheme": "https", "SSL_PROTOCOL": "TLSv1.3"})
    env.update({"SSL_CIPHER": "TLS_AES_256_GCM_SHA384", "SSL_CLIENT_VERIFY": "SUCCESS"})
    env.update({"SSL_VERSION_INTERFACE": "x/1", "SSL_VERSION_LIBRARY": "OpenSSL/3"})
    assert check_environ(env, expected) == []


def test_dn_that_is_printed_unescaped_fails(extended_certs):
    cred = extended_certs["dn-specials"]
    expected = expected_certificate_variables(cred.cert, [], (NOW,))
    observed = dict(expected, SSL_CLIENT_S_DN='CN= dn-specials a,b+c\\d;e<f>g#h"i ,OU=#client')
    observed.update(HTTPS="on", SSL_CLIENT_VERIFY="SUCCESS")
    problems = check_environ(observed, {k: v for k, v in expected.items()})
    assert any("SSL_CLIENT_S_DN" in str(p) for p in problems)


def test_empty_client_cert_counts_as_absent_and_nothing_else_does():
    base = {
        "HTTPS": "on",
        "wsgi.url_scheme": "https",
        "SSL_PROTOCOL": "TLSv1.3",
        "SSL_CIPHER": "TLS_AES_256_GCM_SHA384",
        "SSL_VERSION_INTERFACE": "mod_ssl/2.4.71",
        "SSL_VERSION_LIBRARY": "OpenSSL/3.0.19",
        "SSL_CLIENT_VERIFY": "NONE",
    }
    assert check_environ(dict(base, SSL_CLIENT_CERT=""), None) == []
    assert check_environ(dict(base, SSL_CLIENT_CERT="x"), None) != []
    assert check_environ(dict(base, SSL_CLIENT_S_DN=""), None) != []


def test_mod_ssl_extras_are_format_checked_and_unknown_ones_reported():
    good = {
        "SSL_CIPHER_USEKEYSIZE": "256",
        "SSL_CIPHER_ALGKEYSIZE": "256",
        "SSL_CIPHER_EXPORT": "false",
        "SSL_COMPRESS_METHOD": "NULL",
        "SSL_SECURE_RENEG": "true",
        "SSL_SESSION_ID": "92af5dba6a2e2f4e",
        "SSL_SESSION_RESUMED": "Initial",
        "SSL_TLS_SNI": "localhost",
        "SSL_SERVER_S_DN": "CN=server,OU=server,O=mtls-matrix",
    }
    assert extra_variable_differences(good) == []
    assert extra_variable_differences({"SSL_SESSION_ID": b"\x92\xaf"}) != []
    assert extra_variable_differences({"SSL_CIPHER_EXPORT": ""}) != []
    assert extra_variable_differences({"SSL_MADE_UP": "1"}) != []
    # A target that does not claim a variable is not held to it.
    assert extra_variable_differences({"SSL_MADE_UP": "1"}, lambda name: False) == []


def test_days_left_count_from_the_current_whole_second(extended_certs):
    """mod_ssl's SSL_CLIENT_V_REMAIN counts whole days from time(NULL), whole seconds (httpd
    2.4.71 measured against notAfter at every hour and second offset, docs/spec.md section
    5): a quarter second past the moment exactly ten days before notAfter is still 10."""
    cred = extended_certs["not-after-odd"]
    not_after = dt.datetime(2999, 7, 14, 13, 37, 42, tzinfo=dt.timezone.utc)
    now = not_after - dt.timedelta(days=10) + dt.timedelta(microseconds=250_000)
    expected = expected_certificate_variables(cred.cert, [], (now,))
    assert expected["SSL_CLIENT_V_REMAIN"] == {"10"}
    assert client_variables(_der(cred.cert), None, now)["SSL_CLIENT_V_REMAIN"] == "10"
    later = now + dt.timedelta(seconds=1)
    assert expected_certificate_variables(cred.cert, [], (later,))["SSL_CLIENT_V_REMAIN"] == {"9"}
    assert client_variables(_der(cred.cert), None, later)["SSL_CLIENT_V_REMAIN"] == "9"


# Found by mtls-matrix fuzz (2026-12-03: httpd 2.4.71 printed `ST=#`; a leading # before more
# text, `OU=\#client`, and one inside, `g#h`, as measured for dn-specials). OpenSSL's do_buf
# flags the first character, then the last, so a value of one ``#`` is not escaped.
FUZZ_FINDINGS = {"#": "ST=#", "#x": "ST=\\#x", "x#": "ST=x#"}


@pytest.mark.parametrize("value", sorted(FUZZ_FINDINGS))
def test_lone_hash_is_not_escaped(extended_certs, tmp_path, value):
    ca = x509.load_pem_x509_certificate(extended_certs["ca"].cert.read_bytes())
    ca_key = serialization.load_pem_private_key(extended_certs["ca"].key.read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, value)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2000, 1, 1))
        .not_valid_after(dt.datetime(3000, 1, 1))
        .sign(ca_key, hashes.SHA256())
    )
    path = tmp_path / "c.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    expected = expected_certificate_variables(path, [], (NOW,))
    assert expected["SSL_CLIENT_S_DN"] == FUZZ_FINDINGS[value]
    assert client_variables(_der(path), None, NOW)["SSL_CLIENT_S_DN"] == FUZZ_FINDINGS[value]
