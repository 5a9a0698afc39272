"""Turn ``CertSpec`` rows into keys and certificates.

trustme makes everything it can express (roots, intermediates, leaves with any
SAN and validity window). Variants outside trustme's API (a leaf whose EKU lacks
clientAuth, a leaf without subjectAltName, a given subject DN or serial) are
signed with cryptography's builder using the trustme CA's key.

A negative serial is outside cryptography's builder too (it refuses one, as RFC
5280 section 4.1.2.2 asks), yet real certificates carry them and OpenSSL accepts
them, so servers must print them: ``_with_serial`` builds the certificate with a
placeholder serial, swaps the serial INTEGER inside the DER to-be-signed part
and signs that again with the CA key. No maintained library writes a
certificate with an arbitrary serial, hence the few lines of DER here.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .profiles import ORGANIZATION, CertSpec


@dataclass(frozen=True)
class Material:
    """PEM bytes for one credential, ready to be written."""

    cert: bytes
    key: bytes
    intermediates: tuple[bytes, ...] = ()


def build(specs: tuple[CertSpec, ...]) -> dict[str, Material]:
    cas: dict[str, trustme.CA] = {}
    out: dict[str, Material] = {}
    for spec in specs:
        if spec.role == "ca":
            ca = trustme.CA(organization_name=ORGANIZATION, organization_unit_name=spec.id)
            cas[spec.id] = ca
            out[spec.id] = Material(ca.cert_pem.bytes(), ca.private_key_pem.bytes())
            continue
        if spec.issuer not in cas:
            raise ValueError(f"{spec.id}: issuer {spec.issuer!r} must be declared before it")
        signer = cas[spec.issuer]
        if spec.via_intermediate:
            signer = trustme.CA(
                parent_cert=signer,
                organization_name=ORGANIZATION,
                organization_unit_name=f"{spec.issuer} intermediate",
            )
        if spec.client_eku and spec.san and spec.subject is None and spec.serial is None:
            leaf = signer.issue_cert(
                *spec.identities,
                common_name=spec.cn,
                organization_name=ORGANIZATION,
                organization_unit_name=spec.role,
                not_before=spec.validity[0],
                not_after=spec.validity[1],
            )
            pems = [blob.bytes() for blob in leaf.cert_chain_pems]
            out[spec.id] = Material(pems[0], leaf.private_key_pem.bytes(), tuple(pems[1:]))
        else:
            out[spec.id] = _build_variant(spec, signer)
    return out


def _build_variant(spec: CertSpec, ca: trustme.CA) -> Material:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    rdns = spec.subject or (
        (("O", ORGANIZATION),),
        (("OU", spec.role),),
        (("CN", spec.cn or spec.id),),
    )
    subject = x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(_ATTRIBUTES[a], v) for a, v in rdn])
            for rdn in rdns
        ]
    )
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    eku = [ExtendedKeyUsageOID.SERVER_AUTH]
    if spec.client_eku:
        eku.insert(0, ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(
            spec.serial if spec.serial and spec.serial > 0 else x509.random_serial_number()
        )
        .not_valid_before(spec.validity[0])
        .not_valid_after(spec.validity[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    )
    if spec.san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(i) for i in spec.identities]), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    der = cert.public_bytes(serialization.Encoding.DER)
    if spec.serial is not None and spec.serial <= 0:
        der = _with_serial(der, spec.serial, ca_key)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return Material(_pem(der), key_pem)


def _general_name(identity: str) -> x509.GeneralName:
    if "@" in identity:
        return x509.RFC822Name(identity)
    try:
        return x509.IPAddress(ipaddress.ip_address(identity))
    except ValueError:
        return x509.DNSName(identity)


_ATTRIBUTES = {
    "C": NameOID.COUNTRY_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
    "UID": NameOID.USER_ID,
    "emailAddress": NameOID.EMAIL_ADDRESS,
}


def _with_serial(cert_der: bytes, serial: int, ca_key: ec.EllipticCurvePrivateKey) -> bytes:
    """``cert_der`` with its serial replaced by ``serial`` and signed again by ``ca_key``.

    Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
    and TBSCertificate ::= SEQUENCE { [0] version, serialNumber INTEGER, ... } (RFC 5280
    section 4.1); the signature algorithm stays ecdsa-with-SHA256, the CA key's.
    """
    cert_body = _children(_content(cert_der))
    tbs_parts = _children(_content(cert_body[0]))
    length = (serial.bit_length() + 8) // 8  # two's complement, minimal (X.690 section 8.3.2)
    tbs_parts[1] = _tlv(0x02, serial.to_bytes(length, "big", signed=True))
    tbs = _tlv(0x30, b"".join(tbs_parts))
    signature = ca_key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return _tlv(0x30, tbs + cert_body[1] + _tlv(0x03, b"\x00" + signature))


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _header(der: bytes, at: int) -> tuple[int, int]:
    """(offset of the content, length of the content) of the DER element at ``at``."""
    first = der[at + 1]
    if first < 0x80:
        return at + 2, first
    count = first & 0x7F
    return at + 2 + count, int.from_bytes(der[at + 2 : at + 2 + count], "big")


def _content(der: bytes) -> bytes:
    start, length = _header(der, 0)
    return der[start : start + length]


def _children(content: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(content):
        start, length = _header(content, at)
        out.append(content[at : start + length])
        at = start + length
    return out


def _pem(der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"
