"""Turn ``CertSpec`` rows into keys, certificates and CRLs.

trustme makes everything it can express (roots, intermediates, leaves with any
SAN and validity window). What is outside trustme's API is made with
cryptography's builder, signed with the issuing CA's key: a leaf whose EKU lacks
clientAuth, a leaf without subjectAltName, an older-style CA (basicConstraints
not critical, no key identifiers) with its leaves, and a CA's CRL (RFC 5280
section 5, with CRL number and authority key identifier) listing its revoked
leaves.

A negative serial is outside cryptography's builder too (it refuses one, as RFC
5280 section 4.1.2.2 asks), yet real certificates carry them and OpenSSL accepts
them, so servers must print them: ``with_serial`` builds the certificate with a
placeholder serial, swaps the serial INTEGER inside the DER to-be-signed part
and signs that again with the CA key. No maintained library writes a
certificate with an arbitrary serial, hence the few lines of DER here.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
from dataclasses import dataclass

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .keys import DEFAULT_KEY_TYPE, PrivateKey, generate_key, sign_bytes, sign_certificate, sign_crl
from .profiles import ORGANIZATION, VALID, CertSpec


@dataclass(frozen=True)
class Material:
    """PEM bytes for one credential, ready to be written."""

    cert: bytes
    key: bytes
    intermediates: tuple[bytes, ...] = ()
    crl: bytes | None = None  # a CA's CRL (PEM), when one of its leaves is revoked


def build(specs: tuple[CertSpec, ...]) -> dict[str, Material]:
    cas: dict[str, trustme.CA | Signer] = {}
    out: dict[str, Material] = {}
    revoked: dict[str, list[int]] = {}
    for spec in specs:
        if spec.role == "ca":
            if spec.legacy or spec.key_type != DEFAULT_KEY_TYPE:
                signer = _legacy_ca(spec) if spec.legacy else _root_ca(spec)
                cas[spec.id] = signer
                out[spec.id] = Material(_cert_pem(signer.cert), _key_pem(signer.key))
                continue
            ca = trustme.CA(organization_name=ORGANIZATION, organization_unit_name=spec.id)
            cas[spec.id] = ca
            out[spec.id] = Material(ca.cert_pem.bytes(), ca.private_key_pem.bytes())
            continue
        if spec.issuer not in cas:
            raise ValueError(f"{spec.id}: issuer {spec.issuer!r} must be declared before it")
        signer = cas[spec.issuer]
        plain = spec.client_eku and spec.san and spec.subject is None and spec.serial is None
        if (
            isinstance(signer, trustme.CA)
            and plain
            and not spec.legacy
            and spec.key_type == DEFAULT_KEY_TYPE
        ):
            if spec.via_intermediate:
                signer = trustme.CA(
                    parent_cert=signer,
                    organization_name=ORGANIZATION,
                    organization_unit_name=f"{spec.issuer} intermediate",
                )
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
            out[spec.id] = _build_variant(spec, _signer(signer))
        if spec.revoked:
            serial = x509.load_pem_x509_certificate(out[spec.id].cert).serial_number
            revoked.setdefault(spec.issuer, []).append(serial)
    for ca_id, serials in revoked.items():
        crl = _crl(_signer(cas[ca_id]), serials)
        out[ca_id] = dataclasses.replace(out[ca_id], crl=crl)
    return out


@dataclass(frozen=True)
class Signer:
    """A CA made here rather than by trustme: its certificate and key."""

    cert: x509.Certificate
    key: PrivateKey
    pss: bool = False  # signs with RSASSA-PSS (an rsa-pss CA)


def _signer(ca: trustme.CA | Signer) -> Signer:
    if isinstance(ca, Signer):
        return ca
    return Signer(
        x509.load_pem_x509_certificate(ca.cert_pem.bytes()),
        serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None),
    )


def _legacy_ca(spec: CertSpec) -> Signer:
    """A root as older tooling made them: basicConstraints present but not critical,
    and neither subjectKeyIdentifier nor authorityKeyIdentifier (RFC 5280 section
    4.2.1.9 says MUST be critical; 4.2.1.1/4.2.1.2 say MUST carry key identifiers)."""
    key = generate_key(spec.key_type)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, spec.id),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(spec.validity[0])
        .not_valid_after(spec.validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    pss = spec.key_type == "rsa-pss"
    return Signer(sign_certificate(cert, key, pss), key, pss)


def _root_ca(spec: CertSpec) -> Signer:
    """A root like trustme's (O, OU=id; basicConstraints critical, key identifiers) holding
    a key of ``spec.key_type``, which trustme cannot make (it knows RSA and P-256 only)."""
    key = generate_key(spec.key_type)
    pss = spec.key_type == "rsa-pss"
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, spec.id),
        ]
    )
    builder = _ca_builder(name, name, key, key, spec.validity)
    return Signer(sign_certificate(builder, key, pss), key, pss)


def intermediate(
    parent: Signer, unit: str, key_type: str, validity: tuple = VALID
) -> tuple[Signer, bytes]:
    """An intermediate CA (O, OU=``unit``) under ``parent`` holding a ``key_type`` key, and
    its PEM; an ``rsa-pss`` one signs with PSS whatever the root holds."""
    key = generate_key(key_type)
    pss = key_type == "rsa-pss"
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
        ]
    )
    builder = _ca_builder(name, parent.cert.subject, key, parent.key, validity, path_length=0)
    cert = sign_certificate(builder, parent.key, parent.pss)
    return Signer(cert, key, pss), _cert_pem(cert)


def _ca_builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: PrivateKey,
    issuer_key: PrivateKey,
    validity: tuple,
    path_length: int | None = None,
) -> x509.CertificateBuilder:
    usage = dict.fromkeys(KEY_USAGE_FLAGS, False)
    usage.update(digital_signature=True, key_cert_sign=True, crl_sign=True)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )


# x509.KeyUsage's keyword arguments, in RFC 5280 section 4.2.1.3 bit order
KEY_USAGE_FLAGS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def _crl(ca: Signer, serials: list[int]) -> bytes:
    """A CRL valid for as long as the set's certificates, revoking ``serials``."""
    this_update, next_update = VALID
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(1), critical=False)
    )
    try:
        ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    except x509.ExtensionNotFound:
        pass
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(this_update)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return sign_crl(builder, ca.key, ca.pss).public_bytes(serialization.Encoding.PEM)


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: PrivateKey) -> bytes:
    """SEC 1 / PKCS #1 PEM as before; PKCS #8 for Ed25519, which has no traditional form."""
    form = serialization.PrivateFormat.TraditionalOpenSSL
    if isinstance(key, ed25519.Ed25519PrivateKey):
        form = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption())


def _build_variant(spec: CertSpec, ca: Signer) -> Material:
    intermediates: tuple[bytes, ...] = ()
    if spec.via_intermediate or (spec.key_type == "rsa-pss" and not ca.pss):
        unit = f"{spec.issuer} {spec.key_type} intermediate"
        ca, pem = intermediate(ca, unit, spec.key_type, spec.validity)
        intermediates = (pem,)
    ca_cert, ca_key = ca.cert, ca.key
    key = generate_key(spec.key_type)
    rdns = spec.subject or (
        (("O", ORGANIZATION),),
        (("OU", spec.role),),
        (("CN", spec.cn or spec.id),),
    )
    subject = x509.Name(
        [x509.RelativeDistinguishedName([_attribute(*a) for a in rdn]) for rdn in rdns]
    )
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
    if not spec.legacy:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        ).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    if spec.san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(i) for i in spec.identities]), critical=False
        )
    cert = sign_certificate(builder, ca_key, ca.pss)
    der = cert.public_bytes(serialization.Encoding.DER)
    if spec.serial is not None and spec.serial <= 0:
        der = with_serial(der, spec.serial, ca)
    return Material(_pem(der), _key_pem(key), intermediates)


def _general_name(identity: str) -> x509.GeneralName:
    if "@" in identity:
        return x509.RFC822Name(identity)
    try:
        return x509.IPAddress(ipaddress.ip_address(identity))
    except ValueError:
        return x509.DNSName(identity)


# OpenSSL's short names (OBJ_nid2sn) for the attributes a CertSpec subject may use.
_ATTRIBUTES = {
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "street": NameOID.STREET_ADDRESS,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
    "title": NameOID.TITLE,
    "initials": NameOID.INITIALS,
    "GN": NameOID.GIVEN_NAME,
    "SN": NameOID.SURNAME,
    "description": x509.ObjectIdentifier("2.5.4.13"),
    "UID": NameOID.USER_ID,
    "x500UniqueIdentifier": NameOID.X500_UNIQUE_IDENTIFIER,
    "serialNumber": NameOID.SERIAL_NUMBER,
    "pseudonym": NameOID.PSEUDONYM,
    "DC": NameOID.DOMAIN_COMPONENT,
    "emailAddress": NameOID.EMAIL_ADDRESS,
}


def _attribute(name: str, value: str, string_type: str | None = None) -> x509.NameAttribute:
    if string_type is None:
        return x509.NameAttribute(_ATTRIBUTES[name], value)
    return x509.NameAttribute(_ATTRIBUTES[name], value, _type=_ASN1Type[string_type])


def with_serial(cert_der: bytes, serial: int, ca: Signer) -> bytes:
    """``cert_der`` with its serial replaced by ``serial`` and signed again by ``ca``.

    Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
    and TBSCertificate ::= SEQUENCE { [0] version, serialNumber INTEGER, ... } (RFC 5280
    section 4.1); the signature algorithm stays the one the CA key signed with.
    """
    cert_body = _children(_content(cert_der))
    tbs_parts = _children(_content(cert_body[0]))
    # Two's complement in the fewest octets (X.690 section 8.3.2): -128 is one octet, 0x80.
    magnitude = serial if serial >= 0 else -serial - 1
    length = (magnitude.bit_length() + 8) // 8
    tbs_parts[1] = _tlv(0x02, serial.to_bytes(length, "big", signed=True))
    tbs = _tlv(0x30, b"".join(tbs_parts))
    signature = sign_bytes(tbs, ca.key, ca.pss)
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
