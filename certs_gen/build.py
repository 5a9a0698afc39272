"""Turn ``CertSpec`` rows into keys and certificates.

trustme makes everything it can express (roots, intermediates, leaves with any
SAN and validity window). Two variants are outside trustme's API: a leaf whose
EKU lacks clientAuth and a leaf without subjectAltName; those are signed with
cryptography's builder using the trustme CA's key.
"""

from __future__ import annotations

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
            out[spec.id] = _build_variant(spec, signer)
    return out


def _build_variant(spec: CertSpec, ca: trustme.CA) -> Material:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, spec.role),
            x509.NameAttribute(NameOID.COMMON_NAME, spec.cn or spec.id),
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
        .serial_number(x509.random_serial_number())
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
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return Material(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def _general_name(identity: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(identity))
    except ValueError:
        return x509.DNSName(identity)
