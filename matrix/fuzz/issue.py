"""Turn a ``CertPlan`` into PEM files issued by the set's ``ca`` (or an intermediate of it).

cryptography's builder writes everything but a negative or zero serial, which it
refuses (RFC 5280 section 4.1.2.2); those go through certs_gen's DER edit
(``certs_gen.build.with_serial``), as certs_gen's ``serial-negative`` does. Keys are
made once per key type and run (certs_gen.keys; ``rsa-1024``, below OpenSSL's default
security level, is made here only): a plan varies the key's *type*, and making an RSA
3072 key per example would spend the budget on key generation.
"""

from __future__ import annotations

import ipaddress
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs_gen.build import KEY_USAGE_FLAGS, Signer, intermediate, with_serial
from certs_gen.keys import PrivateKey, generate_key, sign_certificate

from .plan import ATTRIBUTES, CertPlan

_EKU = {
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "anyExtendedKeyUsage": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
}


@dataclass(frozen=True)
class Issued:
    """One generated credential on disk: the leaf (PEM), its key + chain file for the
    client, and the intermediates the client sends (PEM blocks, possibly none)."""

    cert: Path
    key_and_chain: Path
    chain: tuple[str, ...]
    pem: str


class Issuer:
    """``ca`` of a certs_gen set, with keys and intermediates made on first use."""

    def __init__(self, ca_cert: Path, ca_key: Path) -> None:
        cert = x509.load_pem_x509_certificate(ca_cert.read_bytes())
        key = serialization.load_pem_private_key(ca_key.read_bytes(), None)
        self.ca = Signer(cert, key)
        self._keys: dict[str, PrivateKey] = {}
        self._intermediates: dict[str, tuple[Signer, bytes]] = {}

    def key(self, key_type: str) -> PrivateKey:
        if key_type not in self._keys:
            if key_type == "rsa-1024":
                self._keys[key_type] = rsa.generate_private_key(65537, 1024)
            else:
                self._keys[key_type] = generate_key(key_type)
        return self._keys[key_type]

    def signer(self, plan: CertPlan) -> tuple[Signer, tuple[bytes, ...]]:
        """Who signs the leaf: ``ca``, or (chains, and every rsa-pss leaf: PSS needs an RSA
        signer) an intermediate of ``ca`` of the leaf's key type."""
        kind = plan.key_type if plan.key_type in ("rsa-pss",) else "ecdsa-p256"
        if not plan.via_intermediate and plan.key_type != "rsa-pss":
            return self.ca, ()
        if kind not in self._intermediates:
            self._intermediates[kind] = intermediate(self.ca, f"fuzz {kind}", kind)
        signer, pem = self._intermediates[kind]
        return signer, (pem,)

    def issue(self, plan: CertPlan, out_dir: Path, name: str = "client") -> Issued:
        signer, chain = self.signer(plan)
        key = self.key(plan.key_type)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject_name(plan))
            .issuer_name(signer.cert.subject)
            .public_key(key.public_key())
            .serial_number(plan.serial if plan.serial > 0 else 1)
            .not_valid_before(plan.not_before)
            .not_valid_after(plan.not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.key.public_key()),
                False,
            )
        )
        for extension, critical in extensions(plan):
            builder = builder.add_extension(extension, critical)
        cert = sign_certificate(builder, signer.key, signer.pss)
        der = cert.public_bytes(serialization.Encoding.DER)
        if plan.serial <= 0:
            der = with_serial(der, plan.serial, signer)
        leaf = _pem(der)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        cert_file = out_dir / f"{name}.pem"
        cert_file.write_bytes(leaf)
        both = out_dir / f"{name}.key-and-chain.pem"
        both.write_bytes(key_pem + leaf + b"".join(chain))
        both.chmod(0o600)
        return Issued(cert_file, both, tuple(c.decode() for c in chain), leaf.decode())


def _pem(der: bytes) -> bytes:
    with warnings.catch_warnings():  # a negative or zero serial is the plan's point
        warnings.filterwarnings("ignore", message="Parsed a serial number")
        return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def subject_name(plan: CertPlan) -> x509.Name:
    return x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(
                        x509.ObjectIdentifier(ATTRIBUTES[a.name]),
                        a.value,
                        _type=_ASN1Type[a.string_type],
                    )
                    for a in rdn
                ]
            )
            for rdn in plan.subject
        ]
    )


def extensions(plan: CertPlan) -> list[tuple[x509.ExtensionType, bool]]:
    ext = plan.extensions
    out: list[tuple[x509.ExtensionType, bool]] = []
    if ext.basic_constraints is not None:
        ca = ext.basic_constraints.startswith("CA:TRUE")
        out.append((x509.BasicConstraints(ca, None), ext.basic_constraints.endswith("critical")))
    if ext.key_usage is not None:
        flags = dict.fromkeys(KEY_USAGE_FLAGS, False)
        flags.update(dict.fromkeys(ext.key_usage, True))
        out.append((x509.KeyUsage(**flags), True))
    if ext.eku is not None:
        out.append((x509.ExtendedKeyUsage([_EKU[e] for e in ext.eku]), False))
    if plan.san:
        out.append((x509.SubjectAlternativeName([_general_name(*e) for e in plan.san]), False))
    if ext.name_constraints is not None:
        subtree = [x509.DNSName(ext.name_constraints)]
        out.append((x509.NameConstraints(permitted_subtrees=subtree, excluded_subtrees=None), True))
    return out


def _general_name(kind: str, value: str) -> x509.GeneralName:
    if kind == "DNS":
        return x509.DNSName(value)
    if kind == "email":
        return x509.RFC822Name(value)
    return x509.IPAddress(ipaddress.ip_address(value))
