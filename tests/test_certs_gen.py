"""certs_gen, checked from the outside: every property is read back from the PEM
files with cryptography, never from certs_gen's own helpers."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import certs_gen

STANDARD_IDS = [
    "ca",
    "other-ca",
    "server",
    "server-wrong-host",
    "server-wrong-ca",
    "localhost",
    "ip",
    "wildcard",
    "wrong-host",
    "wrong-ca",
    "expired",
]
HARD_DN_IDS = [
    "dn-repeated-ou",
    "dn-specials",
    "dn-utf8",
    "dn-control",
    "dn-multi-rdn",
    "dn-email",
    "serial-negative",
    "serial-leading-zero",
    "dn-every-attribute",
    "dn-string-types",
    "not-after-odd",
]
KEY_TYPE_CLIENT_IDS = [
    "key-rsa-2048",
    "key-rsa-3072",
    "key-ecdsa-p384",
    "key-ed25519",
    "key-rsa-pss",
]
KEY_TYPE_SERVER_IDS = [
    "server-rsa-2048",
    "server-rsa-3072",
    "server-ecdsa-p384",
    "server-ed25519",
    "server-rsa-pss",
]
KEY_TYPE_IDS = [*KEY_TYPE_CLIENT_IDS, *KEY_TYPE_SERVER_IDS]
EXTENDED_IDS = [
    *STANDARD_IDS,
    "ipv6",
    "chain",
    "no-client-eku",
    "not-yet-valid",
    "cn-only",
    "revoked",
    "legacy-ca",
    "legacy",
    *HARD_DN_IDS,
    *KEY_TYPE_IDS,
]

# What SPEC section 1 says, written out here independently of certs_gen.profiles.
EXPECTED_SAN = {
    "server": [("DNS", "localhost"), ("IP", "127.0.0.1"), ("IP", "::1")],
    "server-wrong-host": [("DNS", "wrong-host.example")],
    "server-wrong-ca": [("DNS", "localhost"), ("IP", "127.0.0.1"), ("IP", "::1")],
    "localhost": [("DNS", "localhost")],
    "ip": [("IP", "127.0.0.1")],
    "wildcard": [("DNS", "*.localhost")],
    "wrong-host": [("DNS", "wrong-host.example")],
    "wrong-ca": [("DNS", "localhost")],
    "expired": [("DNS", "localhost")],
    "ipv6": [("IP", "::1")],
    "chain": [("DNS", "localhost")],
    "no-client-eku": [("DNS", "localhost")],
    "not-yet-valid": [("DNS", "localhost")],
    "revoked": [("DNS", "localhost")],
    "legacy": [("DNS", "localhost")],
    **{i: [("DNS", "localhost")] for i in KEY_TYPE_CLIENT_IDS},
    **{i: [("DNS", "localhost"), ("IP", "127.0.0.1"), ("IP", "::1")] for i in KEY_TYPE_SERVER_IDS},
}
EXPECTED_ROOT = {
    "server": "ca",
    "server-wrong-host": "ca",
    "server-wrong-ca": "other-ca",
    "wrong-ca": "other-ca",
    "legacy": "legacy-ca",
}
ROOTS = ("ca", "other-ca", "legacy-ca")


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def verifies(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, Exception):
        return False
    return True


def san_of(cert: x509.Certificate) -> list[tuple[str, str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    out = []
    for name in san:
        if isinstance(name, x509.DNSName):
            out.append(("DNS", name.value))
        elif isinstance(name, x509.IPAddress):
            out.append(("IP", str(name.value)))
        else:
            out.append(("other", str(name.value)))
    return out


@pytest.fixture(scope="module")
def ext(extended_certs):
    return extended_certs


def test_manifest_lists_exactly_the_spec_ids(certs, ext):
    for cs, ids in ((certs, STANDARD_IDS), (ext, EXTENDED_IDS)):
        manifest = json.loads(cs.manifest.read_text())
        assert manifest["schema"] == 1
        assert manifest["profile"] == cs.profile
        assert [row["id"] for row in manifest["certs"]] == ids
        assert manifest["generated_at"].endswith("Z")


@pytest.mark.filterwarnings("ignore:Parsed a serial number")
@pytest.mark.parametrize("cred_id", EXTENDED_IDS)
def test_issuer_and_signature(ext, cred_id):
    cred = ext[cred_id]
    cert = load_cert(cred.cert)
    if cred_id in ROOTS:
        assert cred.role == "ca"
        assert verifies(cert, cert), "a root is self-signed"
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        return
    root_id = EXPECTED_ROOT.get(cred_id, "ca")
    root = load_cert(ext[root_id].cert)
    other = load_cert(ext["other-ca" if root_id == "ca" else "ca"].cert)
    if cred_id in ("chain", "key-rsa-pss", "server-rsa-pss"):
        chain = x509.load_pem_x509_certificates(cred.chain.read_bytes())
        assert len(chain) == 1
        assert verifies(cert, chain[0]) and verifies(chain[0], root)
        assert not verifies(cert, root), "chain must go through the intermediate"
    else:
        assert verifies(cert, root)
        assert not verifies(cert, other)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


@pytest.mark.parametrize("cred_id", [i for i in EXTENDED_IDS if i not in (*ROOTS, *HARD_DN_IDS)])
def test_names_and_identities(ext, cred_id):
    cert = load_cert(ext[cred_id].cert)
    cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert orgs == ["mtls-matrix"]
    if cred_id == "cn-only":
        assert cns == ["localhost"]
        with pytest.raises(x509.ExtensionNotFound):
            cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return
    assert cns == [cred_id]
    assert san_of(cert) == EXPECTED_SAN[cred_id]
    # IP identities must be IP-type SANs, never DNS names that look like IPs.
    for kind, value in san_of(cert):
        if kind == "DNS":
            with pytest.raises(ValueError):
                ipaddress.ip_address(value)


# The hard subjects as RFC 4514 strings (cryptography's printer, most specific RDN first), and
# the serials: what each credential exists to carry, written out here independently.
HARD_SUBJECTS = {
    "dn-repeated-ou": "CN=dn-repeated-ou,OU=second unit,OU=client,O=mtls-matrix",
    "dn-specials": r"CN=\ dn-specials a\,b\+c\\d\;e\<f\>g#h\"i\ ,OU=\#client,O=mtls-matrix",
    "dn-utf8": "CN=dn-utf8 \u00e9t\u00e9,OU=client,O=mtls-matrix Z\u00fcrich \u6771\u4eac",
    "dn-control": "CN=dn-control\r\nX-Injected: 1\tend,OU=client,O=mtls-matrix",
    "dn-multi-rdn": "OU=client+CN=dn-multi-rdn,O=mtls-matrix",
    "dn-email": "1.2.840.113549.1.9.1=dn-email@example.test,CN=dn-email,OU=client,O=mtls-matrix",
    "serial-negative": "CN=serial-negative,OU=client,O=mtls-matrix",
    "serial-leading-zero": "CN=serial-leading-zero,OU=client,O=mtls-matrix",
    "dn-every-attribute": (
        "1.2.840.113549.1.9.1=ada@example.test,CN=dn-every-attribute,2.5.4.65=lady,"
        "STREET=Main 1,2.5.4.5=SN-0042,2.5.4.45=x5uid,UID=ada,2.5.4.13=every attribute,"
        "2.5.4.4=Lovelace,2.5.4.42=Ada,2.5.4.43=AL,2.5.4.12=engineer,L=Mitte,ST=Berlin,"
        "C=DE,OU=client,O=mtls-matrix"
    ),
    "dn-string-types": (
        "CN=dn-string-types,2.5.4.12=Universal \U0001f600,ST=BMP \u6771\u4eac,"
        "L=ia5 Mitte,OU=T61 \u00e9t\u00e9,O=mtls-matrix"
    ),
    "not-after-odd": "CN=not-after-odd,OU=client,O=mtls-matrix",
}


@pytest.mark.filterwarnings("ignore:Parsed a serial number")
@pytest.mark.parametrize("cred_id", HARD_DN_IDS)
def test_hard_subjects_and_serials(ext, cred_id):
    cert = load_cert(ext[cred_id].cert)
    assert cert.subject.rfc4514_string() == HARD_SUBJECTS[cred_id]
    assert verifies(cert, load_cert(ext["ca"].cert))
    expected_san = [("DNS", "localhost")]
    if cred_id == "dn-email":
        expected_san.append(("other", "dn-email@example.test"))
    assert san_of(cert) == expected_san
    row = next(r for r in json.loads(ext.manifest.read_text())["certs"] if r["id"] == cred_id)
    if cred_id == "serial-negative":
        assert cert.serial_number == -0x5A17C0DE5A17C0DE
        assert row["serial"] == "-5A17C0DE5A17C0DE"
    elif cred_id == "serial-leading-zero":
        assert row["serial"] == "0F00BA5E0F00BA5E"


@pytest.mark.filterwarnings("ignore:Parsed a serial number")
@pytest.mark.parametrize("cred_id", EXTENDED_IDS)
def test_validity(ext, cred_id):
    cert = load_cert(ext[cred_id].cert)
    now = dt.datetime.now(dt.timezone.utc)
    if cred_id == "expired":
        assert cert.not_valid_after_utc < now
    elif cred_id == "not-yet-valid":
        assert cert.not_valid_before_utc > now
    else:
        assert cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


@pytest.mark.filterwarnings("ignore:Parsed a serial number")
@pytest.mark.parametrize("cred_id", [i for i in EXTENDED_IDS if i not in ROOTS])
def test_eku(ext, cred_id):
    eku = load_cert(ext[cred_id].cert).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku.value
    assert (ExtendedKeyUsageOID.CLIENT_AUTH in eku.value) is (cred_id != "no-client-eku")


# SPEC section 1's key types, by credential; every other one is ECDSA P-256.
KEY_TYPE_OF = {i: i.split("-", 1)[1] for i in KEY_TYPE_IDS}
KEY_CLASSES = {
    "ecdsa-p256": ec.EllipticCurvePrivateKey,
    "ecdsa-p384": ec.EllipticCurvePrivateKey,
    "rsa-2048": rsa.RSAPrivateKey,
    "rsa-3072": rsa.RSAPrivateKey,
    "rsa-pss": rsa.RSAPrivateKey,
    "ed25519": ed25519.Ed25519PrivateKey,
}


@pytest.mark.filterwarnings("ignore:Parsed a serial number")
@pytest.mark.parametrize("cred_id", EXTENDED_IDS)
def test_key_type_read_back_and_in_manifest(ext, cred_id):
    cert = load_cert(ext[cred_id].cert)
    want = KEY_TYPE_OF.get(cred_id, "ecdsa-p256")
    key = cert.public_key()
    if want.startswith("ecdsa"):
        assert key.curve.name == {"ecdsa-p256": "secp256r1", "ecdsa-p384": "secp384r1"}[want]
    elif want in ("rsa-2048", "rsa-3072"):
        assert key.key_size == int(want[4:])
    elif want == "rsa-pss":  # an RSA key whose certificate is signed with RSASSA-PSS
        assert key.key_size == 2048
        assert cert.signature_algorithm_oid.dotted_string == "1.2.840.113549.1.1.10"
    else:
        assert isinstance(key, ed25519.Ed25519PublicKey)
    row = next(r for r in json.loads(ext.manifest.read_text())["certs"] if r["id"] == cred_id)
    assert row["key_type"] == want == ext[cred_id].key_type


@pytest.mark.parametrize("key_type", ["ed25519", "rsa-pss"])
def test_key_type_of_a_whole_set(tmp_path, key_type):
    certs = certs_gen.generate(tmp_path, key_type=key_type)
    assert certs.key_type == key_type == json.loads(certs.manifest.read_text())["key_type"]
    ca = load_cert(certs["ca"].cert)
    for cred in certs:
        cert = load_cert(cred.cert)
        assert cred.key_type == key_type, cred.id
        if cred.issuer == "ca":
            assert verifies(cert, ca), cred.id
        if key_type == "rsa-pss":
            assert cert.signature_algorithm_oid.dotted_string == "1.2.840.113549.1.1.10"
    assert "reused" in certs_gen.generate(tmp_path, key_type=key_type).origin
    again = certs_gen.generate(tmp_path)  # the default key type: not the set that is there
    assert again.origin.startswith("regenerated") and again["ca"].key_type == "ecdsa-p256"


def test_cli_key_type(tmp_path):
    result = run_cli(str(tmp_path / "k"), "--key-type", "rsa-3072")
    assert result.returncode == 0, result.stderr
    assert "rsa-3072" in result.stdout
    bad = run_cli(str(tmp_path / "b"), "--key-type", "dsa")
    assert bad.returncode == 2 and "invalid choice: 'dsa'" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "b").exists()
    with pytest.raises(certs_gen.UnknownKeyTypeError, match="unknown key type 'dsa'"):
        certs_gen.generate(tmp_path / "c", key_type="dsa")


@pytest.mark.filterwarnings("ignore:Parsed a serial number")
@pytest.mark.parametrize("cred_id", EXTENDED_IDS)
def test_key_matches_certificate_and_manifest(ext, cred_id):
    cred = ext[cred_id]
    cert = load_cert(cred.cert)
    key = serialization.load_pem_private_key(cred.key.read_bytes(), password=None)
    assert isinstance(key, KEY_CLASSES[KEY_TYPE_OF.get(cred_id, "ecdsa-p256")])
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert key.public_key().public_bytes(der, spki) == cert.public_key().public_bytes(der, spki)
    digest = hashlib.sha256(cert.public_bytes(der)).hexdigest().upper()
    row = next(r for r in json.loads(ext.manifest.read_text())["certs"] if r["id"] == cred_id)
    assert row["sha256"] == digest
    assert int(row["serial"], 16) == cert.serial_number
    assert row["cert"] == f"{cred_id}.pem"
    if cred.role == "ca":
        assert row["key_and_chain"] is None
    else:
        combined = cred.key_and_chain.read_bytes()
        assert combined.startswith(cred.key.read_bytes())
        certs_in_combined = x509.load_pem_x509_certificates(combined)
        assert certs_in_combined[0] == cert
        assert (len(certs_in_combined) == 2) is (
            cred_id in ("chain", "key-rsa-pss", "server-rsa-pss")
        )
        assert os.stat(cred.key_and_chain).st_mode & 0o077 == 0


def test_reuse_keeps_a_complete_set_and_refuses_a_broken_one(tmp_path):
    first = certs_gen.generate(tmp_path)
    assert first.origin.startswith("generated")
    again = certs_gen.generate(tmp_path)
    assert again["ca"].sha256 == first["ca"].sha256
    assert again.origin.startswith("reused")
    first["wildcard"].cert.write_text("garbage")
    with pytest.raises(certs_gen.OutputDirError, match=r"damaged.*wildcard\.pem"):
        certs_gen.generate(tmp_path)
    assert first["wildcard"].cert.read_text() == "garbage"  # reported, not repaired
    repaired = certs_gen.generate(tmp_path, force=True)
    assert repaired.origin.startswith("regenerated (--force)")
    assert repaired["ca"].sha256 != first["ca"].sha256
    assert load_cert(repaired["wildcard"].cert)  # readable again
    other_profile = certs_gen.generate(tmp_path, profile="extended")
    assert other_profile.origin.startswith("regenerated: it held an intact standard set")
    assert other_profile["ca"].sha256 != repaired["ca"].sha256
    assert "cn-only" in other_profile
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".certs-gen-")]


def test_unknown_id_and_profile_are_clear_errors(certs, tmp_path):
    with pytest.raises(certs_gen.UnknownCredentialError, match="unknown credential id 'nope'"):
        certs["nope"]
    with pytest.raises(KeyError):  # still a KeyError for callers that expect one
        certs["nope"]
    with pytest.raises(certs_gen.UnknownProfileError, match="unknown profile 'huge'"):
        certs_gen.generate(tmp_path, profile="huge")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "certs_gen", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_generates_then_extends(tmp_path):
    out = tmp_path / "x"
    std = run_cli(str(out))
    assert std.returncode == 0, std.stderr
    assert "wildcard" in std.stdout and "DNS:*.localhost" in std.stdout
    assert [r["id"] for r in json.loads((out / "manifest.json").read_text())["certs"]] == (
        STANDARD_IDS
    )
    ext = run_cli(str(out), "--profile", "extended")
    assert ext.returncode == 0, ext.stderr
    assert [r["id"] for r in json.loads((out / "manifest.json").read_text())["certs"]] == (
        EXTENDED_IDS
    )


@pytest.mark.parametrize(
    "target, message",
    [
        ("a-file", "is not a directory"),
        ("a-file/sub", "cannot create output directory"),
    ],
)
def test_cli_bad_output_dir(tmp_path, target, message):
    (tmp_path / "a-file").write_text("x")
    result = run_cli(str(tmp_path / target))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a read-only directory")
def test_cli_unwritable_dir(tmp_path):
    tmp_path.chmod(0o500)
    try:
        result = run_cli(str(tmp_path))
    finally:
        tmp_path.chmod(0o700)
    assert result.returncode == 2 and "not writable" in result.stderr


def test_cli_unknown_profile(tmp_path):
    result = run_cli(str(tmp_path), "--profile", "huge")
    assert result.returncode == 2
    assert "invalid choice: 'huge'" in result.stderr
    assert "Traceback" not in result.stderr
