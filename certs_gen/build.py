"""Turn ``CertSpec`` rows into keys, certificates and CRLs.

trustme makes everything it can express (roots, intermediates, leaves with any
SAN and validity window). What is outside trustme's API is made with
cryptography's builder, signed with the issuing CA's key: a leaf whose EKU lacks
clientAuth, a leaf without subjectAltName, an older-style CA (basicConstraints
not critical, no key identifiers) with its leaves, and a CA's CRL (RFC 5280
section 5, with CRL number and authority key identifier) listing its revoked
leaves.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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
            if spec.legacy:
                signer = _legacy_ca(spec)
                cas[spec.id] = signer
                out[spec.id] = Material(_pem(signer.cert), _key_pem(signer.key))
                continue
            ca = trustme.CA(organization_name=ORGANIZATION, organization_unit_name=spec.id)
            cas[spec.id] = ca
            out[spec.id] = Material(ca.cert_pem.bytes(), ca.private_key_pem.bytes())
            continue
        if spec.issuer not in cas:
            raise ValueError(f"{spec.id}: issuer {spec.issuer!r} must be declared before it")
        signer = cas[spec.issuer]
        if isinstance(signer, Signer) or spec.legacy:
            out[spec.id] = _build_variant(spec, _signer(signer))
            continue
        if spec.via_intermediate:
            signer = trustme.CA(
                parent_cert=signer,
                organization_name=ORGANIZATION,
                organization_unit_name=f"{spec.issuer} intermediate",
            )
        if spec.client_eku and spec.san:
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
    key: ec.EllipticCurvePrivateKey


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
    key = ec.generate_private_key(ec.SECP256R1())
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
        .sign(key, hashes.SHA256())
    )
    return Signer(cert, key)


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
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _build_variant(spec: CertSpec, ca: Signer) -> Material:
    ca_cert, ca_key = ca.cert, ca.key
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, spec.role),
            x509.NameAttribute(NameOID.COMMON_NAME, spec.cn or spec.id),
        ]
    )
    eku = [ExtendedKeyUsageOID.SERVER_AUTH]
    if spec.client_eku:
        eku.insert(0, ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
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
    cert = builder.sign(ca_key, hashes.SHA256())
    return Material(_pem(cert), _key_pem(key))


def _general_name(identity: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(identity))
    except ValueError:
        return x509.DNSName(identity)
