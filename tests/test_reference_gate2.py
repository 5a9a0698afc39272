"""Hostile clients, round two (SPEC section 7, issue 20) against the reference server.

Real attacking clients on loopback, real handshakes, real certificates; the
assertions are on what the server does (status lines, log lines, where a
connection waits, idle workers), never on timing beyond generous deadlines.
Latency under attack is the resilience battery's to measure.
"""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.client import TLSClient
from harness.reference import ReferenceServer, make_adapter
from harness.reference.errors import ConfigFileError
from tests.polling import IO_TIMEOUT

ADAPTERS = ("builtin", "pyopenssl")


# -- the CA-file check, linear in the file (SPEC section 8) --------------------------------


def _self_signed(index: int, key, *, ca: bool | None, key_usage: x509.KeyUsage | None) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"filler {index}")])
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(index + 1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


FILLERS = 300  # several batches of the CA search (64 a batch)


@pytest.fixture(scope="module")
def bundles(certs, tmp_path_factory) -> dict[str, str]:
    """CA files: many certificates that X509_check_ca calls no CA, with or without the
    real CA last, and with a corrupt block last."""
    key = ec.generate_private_key(ec.SECP256R1())
    # A third each: CA:TRUE with a keyUsage without keyCertSign, CA:FALSE, no extensions
    # (a v3 certificate without basicConstraints or keyUsage: no CA, yet only OpenSSL
    # can say so, so these reach the batched X509_check_ca).
    fillers = b"".join(
        _self_signed(
            i,
            key,
            ca=(True, False, None)[i % 3],
            key_usage=(_usage(cert_sign=False), None)[i % 3 == 2],
        )
        for i in range(FILLERS)
    )
    corrupt = (
        b"-----BEGIN CERTIFICATE-----\n"
        + base64.encodebytes(b"\x30\x03\x02\x01\x01 not DER")
        + b"-----END CERTIFICATE-----\n"
    )
    ca_pem = certs["ca"].cert.read_bytes()
    files = {
        "no-ca": fillers,
        "ca-last": fillers + ca_pem,
        "corrupt-last": ca_pem + fillers + corrupt,
        # No basicConstraints, keyUsage keyCertSign: X509_check_ca says CA (4).
        "key-usage-only": _self_signed(FILLERS, key, ca=None, key_usage=_usage(cert_sign=True)),
    }
    tmp = tmp_path_factory.mktemp("bundles")
    for name, data in files.items():
        (tmp / f"{name}.pem").write_bytes(data)
    return {name: str(tmp / f"{name}.pem") for name in files}


def _adapter(certs, adapter: str, client_ca: str):
    return make_adapter(
        adapter,
        certificate=str(certs["server"].cert),
        private_key=str(certs["server"].key),
        client_CA=client_ca,
        client_check="required",
    )


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_ca_found_after_many_non_ca_certificates(certs, bundles, adapter):
    """The only CA sits after 300 certificates that are no CA: the server starts
    and verifies a client of that CA."""
    with ReferenceServer(_adapter(certs, adapter, bundles["ca-last"]), numthreads=2) as server:
        client = TLSClient(certs["ca"].cert, certs["localhost"].key_and_chain, timeout=IO_TIMEOUT)
        try:
            attempt = client.get(server.url)
        finally:
            client.close()
    assert attempt.outcome == "ok" and attempt.status == 200, attempt.detail


def test_no_ca_among_many_is_refused(certs, bundles):
    with pytest.raises(ConfigFileError, match="no CA certificate") as caught:
        _adapter(certs, "builtin", bundles["no-ca"])
    assert bundles["no-ca"] in str(caught.value) and "\n" not in str(caught.value)


def test_corrupt_block_after_many_is_named_by_line(certs, bundles):
    with open(bundles["corrupt-last"], "rb") as fh:
        lines = fh.read().splitlines()
    last_begin = max(i for i, line in enumerate(lines) if line.startswith(b"-----BEGIN")) + 1
    with pytest.raises(ConfigFileError, match=f"corrupt certificate at line {last_begin} "):
        _adapter(certs, "pyopenssl", bundles["corrupt-last"])


def test_key_usage_cert_sign_without_basic_constraints_is_a_ca(certs, bundles):
    """X509_check_ca's rule 4 (OpenSSL crypto/x509/v3_purp.c): kept."""
    _adapter(certs, "builtin", bundles["key-usage-only"])
