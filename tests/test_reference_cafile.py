"""A client CA file of 10,001 certificates (issue 20; SPEC section 8) on both adapters.

Real servers, real handshakes, real certificates: the big file is 10,000 self-signed
CA certificates made here with cryptography, then the standard set's ``ca``. What is
asserted is behaviour (the server starts, a client of the file's last CA is admitted,
one of a CA not in the file is refused, a bad file is one line), never time: start-up
time is ``python -m harness.reference.bench_cafile``'s to measure.

Subjects whose OpenSSL hash needs canonicalising (case, spaces, BMPString, T61String,
a multi-valued RDN, two CAs of one subject) are looked up by the adapters' own
OpenSSL through the hashed directory (capath.py): the oracle is whether their
clients are admitted, and ``openssl x509 -subject_hash`` for the hash itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.client import TLSClient
from harness.reference import ReferenceServer, make_adapter
from harness.reference.bench_cafile import filler_ca_certificates
from harness.reference.capath import CAFILE_MAX_CERTIFICATES, subject_name_hash
from harness.reference.errors import ConfigError, ConfigFileError
from harness.reference.policy import pem_blocks
from harness.reference.x509name import subject_der
from tests.polling import IO_TIMEOUT

ADAPTERS = ("builtin", "pyopenssl")
FILLERS = 10_000


@pytest.fixture(scope="module")
def fillers() -> bytes:
    return filler_ca_certificates(FILLERS)


@pytest.fixture(scope="module")
def big_file(certs, fillers, tmp_path_factory) -> Path:
    """10,000 filler CAs, then ``ca`` last: 10,001 certificates."""
    path = tmp_path_factory.mktemp("cafile") / "big-ca.pem"
    path.write_bytes(fillers + certs["ca"].cert.read_bytes())
    return path


def _adapter(certs, adapter: str, client_ca: Path):
    return make_adapter(
        adapter,
        certificate=str(certs["server"].cert),
        private_key=str(certs["server"].key),
        client_CA=str(client_ca),
        client_check="required",
    )


def _get(server: ReferenceServer, trust: Path, credential: Path):
    client = TLSClient(trust, credential, timeout=IO_TIMEOUT)
    try:
        return client.get(server.url)
    finally:
        client.close()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_ten_thousand_certificate_file(certs, big_file, adapter):
    """The server starts; the last certificate's client is admitted, with the
    verified identity; a client of a CA not in the file is refused."""
    assert big_file.read_bytes().count(b"-----BEGIN CERTIFICATE-----") == FILLERS + 1
    with ReferenceServer(_adapter(certs, adapter, big_file), numthreads=2) as server:
        admitted = _get(server, certs["ca"].cert, certs["localhost"].key_and_chain)
        refused = _get(server, certs["ca"].cert, certs["wrong-ca"].key_and_chain)
    assert admitted.outcome == "ok" and admitted.status == 200, admitted.detail
    assert admitted.environ.get("SSL_CLIENT_VERIFY") == "SUCCESS", admitted.environ
    assert refused.outcome == "rejected", (refused.outcome, refused.detail)


def test_builtin_directory_is_private_and_removed_at_stop(certs, big_file):
    """The builtin adapter's hashed directory (capath.py): one file per certificate,
    mode 0700, gone once the server stops."""
    adapter = _adapter(certs, "builtin", big_file)
    directory = Path(adapter.context._mtls_capath.path)
    with ReferenceServer(adapter, numthreads=2):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert len(os.listdir(directory)) == FILLERS + 1
    assert not directory.exists()


def test_small_file_is_loaded_as_a_file(certs):
    """Up to CAFILE_MAX_CERTIFICATES the stdlib loads the file itself: no directory."""
    adapter = _adapter(certs, "builtin", certs["ca"].cert)
    assert getattr(adapter.context, "_mtls_capath", None) is None


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_corrupt_last_block_is_one_line(certs, fillers, tmp_path, adapter):
    corrupt = (
        b"-----BEGIN CERTIFICATE-----\n"
        + base64.encodebytes(b"\x30\x03\x02\x01\x01 not DER")
        + b"-----END CERTIFICATE-----\n"
    )
    path = tmp_path / "corrupt.pem"
    path.write_bytes(certs["ca"].cert.read_bytes() + fillers + corrupt)
    line = path.read_bytes().count(b"\n") - corrupt.count(b"\n") + 1
    with pytest.raises(ConfigFileError, match=f"corrupt certificate at line {line} ") as caught:
        _adapter(certs, adapter, path)
    assert "\n" not in str(caught.value)


# -- subjects that OpenSSL's name hash canonicalises -------------------------------------------


def _name(*rdns: list[tuple[object, str, _ASN1Type | None]]) -> x509.Name:
    return x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(oid, value, _type=kind)
                    if kind
                    else x509.NameAttribute(oid, value)
                    for oid, value, kind in rdn
                ]
            )
            for rdn in rdns
        ]
    )


CN, ORG, OU = NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME
ODD_SUBJECTS = {
    "case-and-spaces": _name([(ORG, "  Odd   CASE  Org ", None)], [(CN, "MiXeD  Case CA", None)]),
    "bmpstring": _name([(CN, "BMP CA \u00e9\u4e2d", _ASN1Type.BMPString)]),
    "t61string": _name([(CN, "T61 CA", _ASN1Type.T61String)]),
    "utf8-non-ascii": _name([(CN, "Ünïcödé CA", _ASN1Type.UTF8String)]),
    "multi-valued-rdn": _name([(ORG, "Multi", None), (OU, "Valued", None)], [(CN, "RDN CA", None)]),
    "same-subject": _name([(CN, "Twin CA", None)]),
}


def _certificate(subject, issuer, key, issuer_key, *, ca: bool, serial: int) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        ).add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name("client@example.test")]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def odd_cas(tmp_path_factory) -> dict[str, object]:
    """A CA file of filler CAs and one CA per odd subject (two for ``same-subject``,
    the client issued by the second), over CAFILE_MAX_CERTIFICATES; a client per CA."""
    tmp = tmp_path_factory.mktemp("odd")
    pems, clients, cas = [], {}, {}
    for index, (label, subject) in enumerate(ODD_SUBJECTS.items()):
        keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(2)]
        if label == "same-subject":  # a decoy first: both land under one hash (.0, .1)
            pems.append(_pem(_certificate(subject, subject, keys[1], keys[1], ca=True, serial=9)))
        ca = _certificate(subject, subject, keys[0], keys[0], ca=True, serial=index + 1)
        cas[label] = ca
        pems.append(_pem(ca))
        client_key = ec.generate_private_key(ec.SECP256R1())
        leaf_name = _name([(CN, f"client of {label}", None)])
        leaf = _certificate(leaf_name, subject, client_key, keys[0], ca=False, serial=100 + index)
        path = tmp / f"{label}-client.pem"
        path.write_bytes(
            client_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            + _pem(leaf)
        )
        clients[label] = path
    filler_count = CAFILE_MAX_CERTIFICATES + 1 - len(pems) + 10
    bundle = tmp / "odd-ca.pem"
    bundle.write_bytes(filler_ca_certificates(filler_count) + b"".join(pems))
    return {"file": bundle, "clients": clients, "cas": cas}


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_odd_subjects_are_found(certs, odd_cas, adapter):
    with ReferenceServer(_adapter(certs, adapter, odd_cas["file"]), numthreads=2) as server:
        if adapter == "builtin":
            assert server.adapter.context._mtls_capath is not None  # the directory is used
        attempts = {
            label: _get(server, certs["ca"].cert, client)
            for label, client in odd_cas["clients"].items()
        }
    failed = {k: (a.outcome, a.detail) for k, a in attempts.items() if a.outcome != "ok"}
    assert not failed


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
def test_subject_hash_is_openssl_s(odd_cas, tmp_path):
    """subject_name_hash agrees with ``openssl x509 -subject_hash`` (X509_NAME_hash)."""
    for label, ca in odd_cas["cas"].items():
        path = tmp_path / f"{label}.pem"
        path.write_bytes(_pem(ca))
        printed = subprocess.run(
            ["openssl", "x509", "-noout", "-subject_hash", "-in", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        der = ca.public_bytes(serialization.Encoding.DER)
        assert f"{subject_name_hash(subject_der(der)):08x}" == printed, label


# -- PEM bodies read a run of lines at a time (policy._segments) ------------------------------

_LABELS = ("CERTIFICATE", "X509 CRL", "PRIVATE KEY")
_BREAKS = ("\n", "\r\n", "\r")


@st.composite
def _pem_files(draw):
    """(file bytes, expected blocks as (label, BEGIN line, DER, headers), truncated
    block's (label, line) or None), the expectation made from how the file was built."""
    lines: list[str] = []
    expected = []
    for _ in range(draw(st.integers(0, 4))):
        lines += draw(st.lists(st.text(st.sampled_from("ab :#\t"), max_size=12), max_size=2))
        label = draw(st.sampled_from(_LABELS))
        der = draw(st.binary(min_size=1, max_size=120))
        width = draw(st.integers(4, 76))
        pad = draw(st.sampled_from(("", " ", "\t ")))
        headers = draw(st.booleans())
        expected.append((label, len(lines) + 1, der, headers))
        lines.append(f"{pad}-----BEGIN {label}-----")
        if headers:
            lines += ["Proc-Type: 4,ENCRYPTED", ""]
        body = base64.b64encode(der).decode()
        lines += [pad + body[i : i + width] + pad for i in range(0, len(body), width)]
        lines.append(f"-----END {label}-----{pad}")
    truncated = None
    if expected and draw(st.booleans()):  # drop the last END line
        label, line, _, _ = expected.pop()
        lines.pop()
        truncated = (label, line)
    end = draw(st.sampled_from(_BREAKS))  # one kind a file: "\r" + "\n" would be one break
    text = "".join(line + end for line in lines)
    if lines and not draw(st.booleans()):
        text = text[: -len(end)]  # no break after the last line
    return text.encode(), expected, truncated


@settings(max_examples=300, deadline=None)
@given(_pem_files())
def test_pem_blocks_by_runs(case):
    data, expected, truncated = case
    if truncated is not None:
        label, line = truncated
        with pytest.raises(ConfigFileError, match=f"{label!r} begun at line {line} has no END"):
            pem_blocks(data, "f.pem", "client CA")
        return
    blocks = pem_blocks(data, "f.pem", "client CA")
    assert [(b.label, b.line, b.der, b.headers) for b in blocks] == expected


def _outcome(certs, adapter: str, path: Path) -> str:
    try:
        built = _adapter(certs, adapter, path)
    except ConfigError as exc:
        return f"refused: {str(exc).replace(str(path), 'FILE')}"
    with ReferenceServer(built, numthreads=2) as server:
        return _get(server, certs["ca"].cert, certs["localhost"].key_and_chain).outcome


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_block_with_headers_is_as_in_a_small_file(certs, tmp_path, adapter):
    """A CERTIFICATE block with an RFC 1421 header: whatever the back-end makes of it
    in a one-CA file, it makes of it after 300 fillers too (the builtin adapter then
    loads the file, not a directory)."""
    lines = certs["ca"].cert.read_bytes().splitlines(keepends=True)
    with_header = lines[0] + b"Comment: the issuing CA\n\n" + b"".join(lines[1:])
    small, big = tmp_path / "small.pem", tmp_path / "big.pem"
    small.write_bytes(with_header)
    big.write_bytes(filler_ca_certificates(CAFILE_MAX_CERTIFICATES + 44) + with_header)
    assert _outcome(certs, adapter, big) == _outcome(certs, adapter, small)
